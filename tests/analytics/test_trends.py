"""The shared wear-detector kernels: rolling lines and the raise/clear state changes, pinned."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.detectors.trends import rolling_line, state_changes, window_start

S = 10**9


def test_rolling_line_fits_each_vehicles_trailing_window_only() -> None:
    vehicle = np.array([0, 0, 0, 0, 1, 1, 1])
    t_s = np.array([0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0])
    y = np.array([10.0, 8.0, np.nan, 4.0, 1.0, 1.0, 1.0])
    start = window_start(vehicle, t_s, 2.0)
    assert start.tolist() == [0, 0, 0, 1, 4, 4, 4]
    line = rolling_line(start, t_s, y)
    assert line.n.tolist() == [1, 2, 2, 2, 1, 2, 3]
    assert line.slope[3] == pytest.approx(-2.0) and line.level[3] == pytest.approx(4.0)
    assert line.span_x[3] == pytest.approx(2.0)
    assert line.slope[6] == 0.0 and line.slope_se[6] == 0.0
    assert np.isnan(line.slope[0]) and np.isnan(line.slope_se[1])  # one row; two rows: no spread estimate


def test_state_changes_raise_after_sustain_escalate_and_clear_after_hold() -> None:
    t = np.arange(12) * 10 * S
    severity = np.array([0, 0, 3, 3, 3, 4, 0, 3, 0, 0, 0, 0])
    vehicle = np.zeros(12, dtype=np.int64)
    ch = state_changes(vehicle, t, np.ones(12, bool), severity, sustain_s=20.0, hold_s=30.0)
    # The 10 s of absence at the start never meet the 30 s hold: no first state until the raise at
    # row 4 (bad since row 2, 20 s), escalated at row 5, kept through the dip at row 6, cleared at
    # row 11 (absent since row 8, 30 s).
    assert ch.row.tolist() == [4, 5, 11]
    assert ch.level.tolist() == [3, 4, 0]
    assert ch.since_ns.tolist() == [20 * S, 20 * S, 80 * S]


def test_unjudged_rows_are_skipped_and_each_vehicle_starts_unknown() -> None:
    t = np.tile(np.arange(5) * 10 * S, 2)
    vehicle = np.repeat([0, 1], 5)
    judged = np.array([True, False, True, True, True, True, True, True, True, True])
    severity = np.array([0, 4, 0, 0, 0, 2, 2, 2, 2, 2])
    ch = state_changes(vehicle, t, judged, severity, sustain_s=10.0, hold_s=20.0)
    assert list(zip(ch.row.tolist(), ch.level.tolist(), strict=True)) == [(2, 0), (6, 2)]
