"""The in-memory simulator harness: columns in the kernels' shape, true time, every fault kind."""

from __future__ import annotations

import numpy as np

from simulators.scenario import FAULT_KINDS
from tests.analytics.simulated import (
    PAD_WEARS,
    TYRE_PRESSURES,
    TYRE_TEMPERATURES,
    simulate,
    standard_scenarios,
)


def test_standard_scenarios_differ_and_carry_every_fault_kind() -> None:
    scenarios = standard_scenarios(3)
    assert len({s.seed for s in scenarios}) == 3
    assert all(100 <= s.vehicles <= 300 for s in scenarios)
    for s in scenarios:
        assert {f.kind for f in s.faults} == set(FAULT_KINDS)
    assert standard_scenarios(3) == scenarios  # reproducible
    leaks = [f.params["rate_kpa_per_h"] for s in scenarios for f in s.faults if f.kind == "tyre_slow_leak"]
    assert len(set(leaks)) == len(leaks)


def test_a_run_gives_sorted_columns_in_true_time_with_truth_and_params() -> None:
    scenario = standard_scenarios(1, duration_s=600.0, vehicles=(100, 100))[0]
    wanted = [*TYRE_PRESSURES, *TYRE_TEMPERATURES, *PAD_WEARS, "Vehicle.Speed"]
    run = simulate(scenario, wanted)
    cols = run.columns
    cols.check()
    assert set(cols.values) == set(wanted)
    assert all(v.dtype == np.float64 for v in cols.values.values())
    assert len(cols.vehicle_ids) == 100 and run.params.tyre_placard_kpa.shape == (100,)
    # True time: every row sits on the run's sampling grid, 1 s apart from the start.
    offsets = cols.ts_ns - run.start_ts_ns
    assert (offsets % 1_000_000_000 == 0).all() and offsets.min() >= 1e9 and offsets.max() <= 600e9
    b = cols.bounds()
    per_vehicle = np.diff(b)
    # Driving vehicles sample every second; parked ones every 30 s; none is silent.
    assert per_vehicle.min() >= 600 // 30 and per_vehicle.max() == 600
    # Tyre temperature comes with the pressure, in whole degrees, near ambient or above.
    temp = cols.values[TYRE_TEMPERATURES[0]]
    assert np.array_equal(np.isnan(temp), np.isnan(cols.values[TYRE_PRESSURES[0]]))
    ok = temp[~np.isnan(temp)]
    assert (ok == np.round(ok)).all() and ok.min() >= np.floor(scenario.ambient_c) - 1
    kinds = {f["kind"] for f in run.truth["faults"]}
    assert kinds == set(FAULT_KINDS)
    assert run.ts_ns_at(0.0) == run.truth["start_ts_ns"]
    assert all(0 < t <= 600 for t, _, _ in run.dtc_history)


def test_signals_default_to_everything_sampled() -> None:
    scenario = standard_scenarios(1, duration_s=60.0, vehicles=(100, 100))[0]
    run = simulate(scenario, steps=30)
    assert "Vehicle.CurrentLocation.Latitude" in run.columns.values
    assert run.columns.ts_ns.max() - run.start_ts_ns == 30 * 10**9
