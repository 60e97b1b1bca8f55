"""Properties every electrical, coolant and sensor detector keeps (hypothesis): a constant healthy
signal raises nothing; shifting time shifts `at_ns` and nothing else; a run on a prefix of the
data concludes what the whole run concluded by then; a trailing window ends in the same state."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.detectors import battery, charging, coolant, sensors
from analytics.findings import FindingState
from tests.analytics.electrical_data import (
    COOLANT,
    RPM,
    SPEED,
    TYRE_FL,
    VOLTAGE,
    Detector,
    final_states,
    random_fleet,
    rows,
    shift_finding,
    shifted,
)

DETECTORS: dict[str, Detector] = {
    "battery": battery.detect_battery_12v_failing,
    "charging": charging.detect_charging_fault,
    "coolant": coolant.detect_thermostat_stuck,
    "stuck": sensors.detect_sensor_stuck,
    "dropout": sensors.detect_sensor_dropout,
}
SEEDS = st.integers(0, 2**32 - 1)
NAMES = st.sampled_from(sorted(DETECTORS))


@settings(max_examples=60, deadline=None)
@given(name=NAMES, seed=SEEDS, shift_s=st.integers(-(10**8), 10**8))
def test_shifting_time_shifts_the_findings_and_nothing_else(name: str, seed: int, shift_s: int) -> None:
    cols, params = random_fleet(seed)
    detect = DETECTORS[name]
    shift_ns = shift_s * 1_000_000_000 + 7
    expected = [shift_finding(f, shift_ns) for f in detect(cols, params)]
    assert detect(shifted(cols, shift_ns), params) == expected


@settings(max_examples=60, deadline=None)
@given(name=NAMES, seed=SEEDS, split=st.floats(0.0, 1.0), window=st.floats(0.05, 1.0))
def test_a_prefix_run_then_a_trailing_window_agree_with_one_run(
    name: str, seed: int, split: float, window: float
) -> None:
    cols, params = random_fleet(seed)
    detect = DETECTORS[name]
    whole = detect(cols, params)
    t0, t1 = int(cols.ts_ns.min()), int(cols.ts_ns.max())
    cut = t0 + int((t1 - t0) * split)
    # Kernels are causal: the first run finds exactly what the whole run found before the cut.
    assert detect(rows(cols, cols.ts_ns < cut), params) == [f for f in whole if f.at_ns < cut]
    # A trailing window sees streaks shorter, never longer: wherever it concludes, it ends in the
    # whole run's final state.
    start = t1 - int((t1 - t0) * window)
    tail = final_states(detect(rows(cols, cols.ts_ns >= start), params))
    full = final_states(whole)
    assert {k: full[k] for k in tail} == tail


def _constant(seed: int, path: str, value: float) -> tuple:
    cols, params = random_fleet(seed)
    vals = dict(cols.values)
    present = ~np.isnan(vals.get(path, np.full(cols.n_rows, np.nan)))
    vals[path] = np.where(present | (path == VOLTAGE), value, np.nan)
    return type(cols)(cols.vehicle_ids, cols.vehicle, cols.ts_ns, vals), params


HEALTHY: dict[str, tuple[Callable, str, tuple[float, float]]] = {
    "battery": (battery.detect_battery_12v_failing, VOLTAGE, (12.45, 16.0)),
    "charging": (charging.detect_charging_fault, VOLTAGE, (13.5, 14.7)),
    "coolant": (coolant.detect_thermostat_stuck, COOLANT, (70.0, 100.0)),
}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(HEALTHY)), seed=SEEDS, u=st.floats(0.0, 1.0))
def test_a_constant_healthy_signal_raises_nothing(name: str, seed: int, u: float) -> None:
    detect, path, (lo, hi) = HEALTHY[name]
    cols, params = _constant(seed, path, lo + u * (hi - lo))
    assert [f for f in detect(cols, params) if f.state == FindingState.RAISE] == []


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS)
def test_healthy_sensors_raise_nothing_and_a_parked_constant_is_not_stuck(seed: int) -> None:
    cols, params = random_fleet(seed)
    vals = dict(cols.values)
    rng = np.random.default_rng(seed)
    for path in (TYRE_FL, VOLTAGE, RPM):  # undo the random stuck and missing stretches
        if path in vals:
            ok = ~np.isnan(vals[RPM] if path == RPM else vals[SPEED])
            vals[path] = np.where(ok, 100 + rng.normal(0, 1, cols.n_rows), np.nan)
    vals[TYRE_FL] = np.where(vals[SPEED] > 0, vals[TYRE_FL], 240.0)  # flat while parked
    healthy = type(cols)(cols.vehicle_ids, cols.vehicle, cols.ts_ns, vals)
    for detect in (sensors.detect_sensor_stuck, sensors.detect_sensor_dropout):
        assert [f for f in detect(healthy, params) if f.state == FindingState.RAISE] == []
