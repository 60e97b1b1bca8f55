"""The wheels' lines at once (`analytics.detectors.wheel_lines`) are `rolling_line` on each wheel, bit
for bit, at the rows asked for; the per-wheel history scans are the 1-D ones on each row."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.detectors import trends
from analytics.detectors.wheel_lines import (
    forward_fill,
    latest_index,
    slope_se,
    wheel_lines,
    wheel_sums,
    y_squared_sums,
)


@st.composite
def fleets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Vehicles, times relative to each vehicle's first row, 1-4 series with gaps (the same gaps in
    every series, or each its own), the rows to evaluate and a window."""
    n = draw(st.integers(1, 80))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    vehicle = np.sort(rng.integers(0, 4, n))
    t = np.cumsum(rng.integers(0, 40, n)).astype(np.float64)
    t -= t[trends.first_index(vehicle)]
    wheels = draw(st.integers(1, 4))
    y = rng.normal(200.0, 5.0, (wheels, n)) + rng.normal(0.0, 0.01, n) * t
    same_gaps = draw(st.booleans())
    gaps = rng.random((1 if same_gaps else wheels, n)) < draw(st.sampled_from([0.0, 0.1, 0.5]))
    y[np.broadcast_to(gaps, y.shape)] = np.nan
    at = np.flatnonzero(rng.random(n) < 0.7)
    return vehicle, t, y, at, float(draw(st.sampled_from([30.0, 300.0, 3000.0])))


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_wheel_lines_are_each_wheels_rolling_line(case: tuple) -> None:  # noqa: ANN001
    vehicle, t, y, at, window_s = case
    start = trends.window_start(vehicle, t, window_s)
    sums = wheel_sums(t, y)
    lines = wheel_lines(sums, start.take(at), at)
    syy = y_squared_sums(sums)
    for w in range(y.shape[0]):
        full = trends.rolling_line(start, t, y[w])
        xw = w if lines.n.shape[0] > 1 else 0
        np.testing.assert_array_equal(lines.n[xw], full.n[at])
        np.testing.assert_array_equal(lines.span_x[xw], full.span_x[at])
        np.testing.assert_array_equal(lines.level[w], full.level[at])
        np.testing.assert_array_equal(lines.slope[w], full.slope[at])
        se = slope_se(lines, syy, np.full(at.size, w), np.arange(at.size))
        np.testing.assert_array_equal(se, full.slope_se[at])


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_history_scans_are_the_one_dimensional_ones_per_wheel(case: tuple) -> None:  # noqa: ANN001
    vehicle, _, y, _, _ = case
    present = ~np.isnan(y)
    last, filled = latest_index(vehicle, present), forward_fill(vehicle, y)
    for w in range(y.shape[0]):
        np.testing.assert_array_equal(last[w], trends.latest_index(vehicle, present[w]))
        np.testing.assert_array_equal(filled[w], trends.forward_fill(vehicle, y[w]))
