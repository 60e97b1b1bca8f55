"""Rolling least-squares lines of several series over one x at once (a vehicle's four wheels over
time or distance): the 2-D form of `analytics.detectors.trends.rolling_line` that the wear
detectors run on, and the per-wheel history scans they share.

Owns: the cumulative sums of every series in one pass each (rows of a (wheels, rows) array; the
x-only sums once when every series has the same valid rows), the lines evaluated only at the rows
a detector judges, and the slope's standard error only where a detector asks for it (its sums of
y² are then built). The arithmetic is `rolling_line`'s, element for element, so the same bits;
`tests/analytics/test_wheel_lines.py` checks that against it. Leaves what a line means to each
detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WheelSums:
    """Cumulative sums (a leading 0 column: the sum over rows a..b is c[:, b + 1] - c[:, a]) of the
    valid rows (x and y both known) of each series: count, x and x² (one row when every series
    has the same valid rows, else one per series), y and xy; `nxt`: each row's first valid row at
    or after it (n when none), in the count's shape; `ys`: y with invalid rows 0."""

    x: np.ndarray
    count: np.ndarray
    sx: np.ndarray
    sxx: np.ndarray
    nxt: np.ndarray
    ys: np.ndarray
    sy: np.ndarray
    sxy: np.ndarray


@dataclass(frozen=True)
class WheelLines:
    """Each series' line at rows `at` (columns): y = level + slope * (x - x_row) through the valid
    rows of the row's trailing window, its support (`n` rows, `span_x` of x covered) and the
    terms its standard error needs. The x-only ones have one row when the sums share them."""

    at: np.ndarray
    start: np.ndarray
    n: np.ndarray
    span_x: np.ndarray
    level: np.ndarray
    slope: np.ndarray
    sy: np.ndarray
    my: np.ndarray
    vxx: np.ndarray
    cxy: np.ndarray


def wheel_sums(x: np.ndarray, y: np.ndarray) -> WheelSums:
    """The sums of y (series, rows) over x (rows). x should be small numbers (relative to each
    vehicle's first row) so that the sums stay exact."""
    ok = ~(np.isnan(x) | np.isnan(y))
    shared = ok[:1] if bool((ok == ok[:1]).all()) else ok
    xs = np.where(shared, x, 0.0)
    ys = np.where(ok, y, 0.0)
    return WheelSums(
        x, _cumulative(shared), _cumulative(xs), _cumulative(xs * xs), _next_valid(shared), ys,
        _cumulative(ys), _cumulative(xs * ys),
    )  # fmt: skip


def wheel_lines(sums: WheelSums, start: np.ndarray, at: np.ndarray) -> WheelLines:
    """The lines at rows `at`, each over rows `start[k]..at[k]` (start per row of `at`)."""
    after = at + 1
    n, sx, sxx, sy, sxy = (c.take(after, axis=1) - c.take(start, axis=1) for c in _all(sums))
    x = sums.x
    xa = x.take(at)
    # x covered: from the window's first valid x to this row's x (x ascending per vehicle).
    found = sums.nxt.take(start, axis=1)
    span = np.where(found <= at, xa - x.take(np.minimum(found, max(x.shape[0] - 1, 0))), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = sx / n, sy / n
        vxx = np.maximum(sxx - sx * mx, 0.0)
        cxy = sxy - sx * my
        slope = np.where(vxx > 0, cxy / vxx, np.nan)
        level = my + slope * (xa - mx)
    return WheelLines(at, start, n, span, level, slope, sy, my, vxx, cxy)


def y_squared_sums(sums: WheelSums) -> np.ndarray:
    """The cumulative sums of y² the standard errors need (built only when one is asked for)."""
    return _cumulative(sums.ys * sums.ys)


def slope_se(lines: WheelLines, syy_sums: np.ndarray, series: np.ndarray, col: np.ndarray) -> np.ndarray:
    """The slope's standard error of the lines at entries (series[i], col[i]) (NaN below 3 rows
    or with no spread in x), the arithmetic of `rolling_line` at those entries only."""
    syy = syy_sums[series, lines.at[col] + 1] - syy_sums[series, lines.start[col]]
    xs = series if lines.n.shape[0] > 1 else np.zeros_like(series)
    n, vxx = lines.n[xs, col], lines.vxx[xs, col]
    sy, my, slope, cxy = (a[series, col] for a in (lines.sy, lines.my, lines.slope, lines.cxy))
    with np.errstate(invalid="ignore", divide="ignore"):
        vyy = np.maximum(syy - sy * my, 0.0)
        resid = np.maximum(vyy - slope * cxy, 0.0)
        return np.where(n > 2, np.sqrt(resid / (n - 2) / vxx), np.nan)


def latest_index(vehicle: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per series and row: the newest row up to and including it, same vehicle, where `present`
    holds (-1 when none); `trends.latest_index` on each row of a 2-D `present`."""
    last = np.where(present, np.arange(present.shape[1]), -1)
    if last.size:
        np.maximum.accumulate(last, axis=1, out=last)
    ok = vehicle.take(last) == vehicle  # (a -1 wraps around; the next line drops it)
    ok &= last >= 0
    return np.where(ok, last, -1)


def take_rows(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[s, index[s, i]] for each series s (a -1 index wraps around: mask it afterwards)."""
    offsets = (np.arange(values.shape[0]) * values.shape[1])[:, None]
    return values.ravel().take(index + offsets)


def forward_fill(vehicle: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the newest earlier value of the same series and vehicle (NaN when none)."""
    have = ~np.isnan(values)
    if have.all():
        return values
    last = latest_index(vehicle, have)
    return np.where(last >= 0, take_rows(values, last), np.nan)


def _all(sums: WheelSums) -> tuple[np.ndarray, ...]:
    return (sums.count, sums.sx, sums.sxx, sums.sy, sums.sxy)


def _cumulative(part: np.ndarray) -> np.ndarray:
    """Cumulative sums along the rows with a leading 0 column."""
    c = np.empty((part.shape[0], part.shape[1] + 1))
    c[:, 0] = 0.0
    np.cumsum(part, axis=1, out=c[:, 1:])
    return c


def _next_valid(ok: np.ndarray) -> np.ndarray:
    """Per series and row, the first row at or after it where `ok` holds (n when none)."""
    k, n = ok.shape
    nxt = np.full((k, n + 1), n, dtype=np.int64)
    pos = np.where(ok, np.arange(n), n)
    nxt[:, :n] = np.minimum.accumulate(pos[:, ::-1], axis=1)[:, ::-1]
    return nxt
