"""The suite runs each detector on pieces of whole vehicles: the same findings as on all rows at
once; and the rolling lines evaluated at chosen rows, sharing sums across wheels, are the lines
over every row."""

from __future__ import annotations

import numpy as np
import pytest

import analytics.suite as suite
from analytics.detectors import battery, brakes, charging, coolant, sensors, tyres
from analytics.detectors.trends import SharedX, rolling_line, rolling_lines, window_start
from tests.analytics.simulated import simulate, standard_scenarios

WHOLE = {
    "battery_12v_failing": battery.detect_battery_12v_failing,
    "charging_fault": charging.detect_charging_fault,
    "thermostat_stuck": coolant.detect_thermostat_stuck,
    "sensor_stuck": sensors.detect_sensor_stuck,
    "sensor_dropout": sensors.detect_sensor_dropout,
    "tyre_slow_leak": tyres.detect_tyre_slow_leak,
    "brake_pad_wear": brakes.detect_brake_pad_wear,
}


def test_pieces_of_whole_vehicles_find_what_all_rows_find(monkeypatch: pytest.MonkeyPatch) -> None:
    detectors = suite.default_detectors()
    signals = sorted({s for d in detectors for s in d.signals})
    run = simulate(standard_scenarios(1, duration_s=1800.0, vehicles=(60, 60))[0], signals)
    monkeypatch.setattr(suite, "CHUNK_ROWS", 3_000)  # many pieces
    assert len(list(run.columns.vehicle_chunks(3_000))) > 5
    raised = 0
    for d in detectors:
        pieces = sorted(d.detect(run.columns, run.params), key=repr)
        whole = sorted(WHOLE[d.fault](run.columns, run.params), key=repr)
        assert pieces == whole, d.fault
        raised += sum(f.state == "raise" for f in whole)
    assert raised > 0


def test_rolling_lines_at_rows_and_shared_sums_are_the_full_lines() -> None:
    rng = np.random.default_rng(3)
    n = 400
    vehicle = np.sort(rng.integers(0, 4, n))
    t = np.cumsum(rng.integers(1, 30, n)).astype(np.float64)
    start = window_start(vehicle, t, 300.0)
    shared = SharedX()
    gaps = rng.random(n) < 0.1
    for wheel in range(3):  # the same x, other y; the first two with the same gaps (sums reused)
        y = np.where(gaps if wheel < 2 else rng.random(n) < 0.1, np.nan, rng.normal(size=n))
        full = rolling_line(start, t, y)
        at = np.flatnonzero(rng.random(n) < 0.6)
        (line,) = rolling_lines(t, y, ((start, at),), shared)
        for name in ("n", "span_x", "level", "slope", "slope_se"):
            np.testing.assert_array_equal(getattr(line, name), getattr(full, name)[at], err_msg=name)
