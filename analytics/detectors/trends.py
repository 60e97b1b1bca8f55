"""Trends over trailing windows and the raise/clear rules of the wear detectors (tyres, brakes).

Owns: a rolling least-squares line per row (`rolling_line`: over the same vehicle's rows in the
trailing `window_s`, from cumulative sums, so one pass over all vehicles and rows) and turning a
per-row condition into a vehicle's state changes (`state_changes`: raise after the condition has
held `sustain_s`, clear after it has been absent `hold_s`, severity only escalating within an
episode). Leaves to each detector what its rows mean.

A row is judged only when the trend has its whole window of history in the data handed in (the
vehicle's first row is at least `window_s` older), so a row judged in two overlapping runs gets the
same value in both: re-running on a later trailing window repeats the same states.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NS_PER_S = 1_000_000_000


def first_index(vehicle: np.ndarray) -> np.ndarray:
    """For each row, the index of its vehicle's first row (rows sorted by vehicle)."""
    n = vehicle.shape[0]
    start = np.ones(n, dtype=bool)
    start[1:] = vehicle[1:] != vehicle[:-1]
    return np.maximum.accumulate(np.where(start, np.arange(n), 0)) if n else np.zeros(0, dtype=np.int64)


def nan_to_num(x: float, *, nan: float) -> float:
    """`np.nan_to_num(x, nan=nan)` for one float, without an array: NaN as `nan`, an infinity as
    the largest finite float of its sign (for ranking a few values by key)."""
    if math.isnan(x):
        return nan
    return math.copysign(sys.float_info.max, x) if math.isinf(x) else x


def forward_fill(vehicle: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the newest earlier value of the same vehicle (NaN when none)."""
    have = ~np.isnan(values)
    if have.all():
        return values
    last = latest_index(vehicle, have)
    return np.where(last >= 0, values.take(last), np.nan)


def latest_index(vehicle: np.ndarray, present: np.ndarray) -> np.ndarray:
    """For each row, the newest row up to and including it, same vehicle, where `present` holds
    (-1 when none)."""
    n = present.shape[0]
    last = np.where(present, np.arange(n), -1)
    if n:
        np.maximum.accumulate(last, out=last)
    ok = vehicle.take(last) == vehicle  # (a -1 wraps around; the next line drops it)
    ok &= last >= 0
    return np.where(ok, last, -1)


@dataclass(frozen=True)
class Line:
    """Per row: the least-squares line y = level + slope * (x - x_row) through the valid rows of the
    trailing window, with its support (`n` rows, `span_x` of x covered) and the slope's standard
    error (NaN below 3 rows or with no spread in x)."""

    n: np.ndarray
    span_x: np.ndarray
    level: np.ndarray
    slope: np.ndarray
    slope_se: np.ndarray


def window_start(
    vehicle: np.ndarray, t_s: np.ndarray, window_s: float, rows: np.ndarray | None = None
) -> np.ndarray:
    """For each row (or each of `rows`: a binary search each, so only where needed), the first row
    of the same vehicle with t >= t_row - window_s (t per vehicle ascending; t_s relative to the
    vehicle's first row keeps the key exact)."""
    if vehicle.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    stride = float(np.max(t_s)) + 2.0 * window_s + 1.0
    key = vehicle.astype(np.float64) * stride + t_s
    return np.searchsorted(key, (key if rows is None else key.take(rows)) - window_s, side="left")


def window_start_where(
    vehicle: np.ndarray, t_s: np.ndarray, window_s: float, where: np.ndarray
) -> np.ndarray:
    """`window_start` at the rows where `where` holds, 0 elsewhere (for lines judged only there)."""
    rows = np.flatnonzero(where)
    start = np.zeros(vehicle.shape[0], dtype=np.int64)
    start[rows] = window_start(vehicle, t_s, window_s, rows)
    return start


def rolling_line(start: np.ndarray, x: np.ndarray, y: np.ndarray) -> Line:
    """Least squares of y on x over rows `start[i]..i` (NaN y or x rows left out), at every row.
    x and y should be small numbers (relative to the vehicle's first row) so the cumulative sums
    stay exact."""
    return rolling_lines(x, y, ((start, np.arange(x.shape[0])),))[0]


class SharedX:
    """What `rolling_lines` keeps between calls over the same x with another y (a vehicle's four
    wheels share time or distance): the x-only sums for the last mask of valid rows, and those
    sums gathered at the last rows asked for, reused only when mask and rows are equal."""

    def __init__(self) -> None:
        self.ok: np.ndarray | None = None
        self.xs = np.zeros(0)
        self.sums: tuple[np.ndarray, ...] = ()
        self.nxt = np.zeros(0, dtype=np.int64)
        self.gathered: dict[int, tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]] = {}


def rolling_lines(
    x: np.ndarray,
    y: np.ndarray,
    windows: Sequence[tuple[np.ndarray, np.ndarray]],
    shared: SharedX | None = None,
) -> list[Line]:
    """`rolling_line` for several windows over the same x and y, each `(start, at)` evaluated only
    at the rows `at` (a Line of len(at)): the cumulative sums are built once and shared (across
    calls too, through `shared`, for the parts that depend on x only), and rows a detector never
    judges cost nothing. The same arithmetic as over every row, so the same bits."""
    sh = shared if shared is not None else SharedX()
    ok = ~(np.isnan(x) | np.isnan(y))
    n_rows = x.shape[0]
    if sh.ok is None or not np.array_equal(sh.ok, ok):
        sh.ok, sh.xs, sh.gathered = ok, np.where(ok, x, 0.0), {}
        sh.sums = tuple(_cumulative(part) for part in (ok, sh.xs, sh.xs * sh.xs))
        sh.nxt = _next_valid(ok)
    ys = np.where(ok, y, 0.0)
    y_sums = tuple(_cumulative(part) for part in (ys, sh.xs * ys, ys * ys))
    lines = []
    for k, (start, at) in enumerate(windows):
        s, after = start.take(at), at + 1
        known = sh.gathered.get(k)
        if known is None or known[0] is not start or not np.array_equal(known[1], at):
            n, sx, sxx = (c.take(after) - c.take(s) for c in sh.sums)  # 1-D takes: the fastest gather
            xa = x.take(at)
            # x covered: from the window's first valid x to this row's x (x ascending per vehicle).
            found = sh.nxt.take(s)
            span = np.where(found <= at, xa - x.take(np.minimum(found, max(n_rows - 1, 0))), 0.0)
            known = (start, at, (n, sx, sxx, xa, span))
            sh.gathered[k] = known
        n, sx, sxx, xa, span = known[2]
        sy, sxy, syy = (c.take(after) - c.take(s) for c in y_sums)
        with np.errstate(invalid="ignore", divide="ignore"):
            mx, my = sx / n, sy / n
            vxx = np.maximum(sxx - sx * mx, 0.0)
            cxy = sxy - sx * my
            vyy = np.maximum(syy - sy * my, 0.0)
            slope = np.where(vxx > 0, cxy / vxx, np.nan)
            resid = np.maximum(vyy - slope * cxy, 0.0)
            se = np.where(n > 2, np.sqrt(resid / (n - 2) / vxx), np.nan)
            level = my + slope * (xa - mx)
        lines.append(Line(n, span, level, slope, se))
    return lines


def _cumulative(part: np.ndarray) -> np.ndarray:
    """Cumulative sum with a leading 0: the sum over rows a..b is c[b + 1] - c[a]."""
    c = np.empty(part.shape[0] + 1)
    c[0] = 0.0
    np.cumsum(part, out=c[1:])
    return c


def _next_valid(ok: np.ndarray) -> np.ndarray:
    """For each row, the first row at or after it where `ok` holds (len(ok) when none)."""
    n = ok.shape[0]
    nxt = np.full(n + 1, n, dtype=np.int64)
    pos = np.where(ok, np.arange(n), n)
    nxt[:n] = np.minimum.accumulate(pos[::-1])[::-1]
    return nxt


@dataclass(frozen=True)
class Changes:
    """A vehicle's state changes, in (vehicle, time) order: `row` where it changed, `level` 0 =
    clear else the severity, `since_ns` when the condition (or its absence) began. Each vehicle's
    first state in the data counts as a change."""

    row: np.ndarray
    level: np.ndarray
    since_ns: np.ndarray


def state_changes(
    vehicle: np.ndarray,
    ts_ns: np.ndarray,
    judged: np.ndarray,
    severity: np.ndarray,
    sustain_s: float,
    hold_s: float,
) -> Changes:
    """From per-row `severity` (0 = condition absent) on `judged` rows: raised once the condition
    has held over judged rows spanning `sustain_s`, clear once its absence has spanned `hold_s`,
    otherwise the previous state (hysteresis). Severity escalates within an episode, never drops."""
    rows = np.flatnonzero(judged)
    v, t, lv = vehicle[rows], ts_ns[rows], severity[rows].astype(np.int64)
    m = rows.shape[0]
    if m == 0:
        z = np.zeros(0, dtype=np.int64)
        return Changes(z, z, z)
    c = lv > 0
    pos = np.arange(m)
    new_vehicle = np.ones(m, dtype=bool)
    new_vehicle[1:] = v[1:] != v[:-1]
    if not c.any():  # absent throughout (most pieces): each vehicle turns clear once it has held
        first_row = np.maximum.accumulate(np.where(new_vehicle, pos, 0))
        held = t - t[first_row] >= int(hold_s * NS_PER_S)
        turns = held.copy()
        turns[1:] &= new_vehicle[1:] | ~held[:-1]  # held only grows within a vehicle
        return Changes(rows[turns], np.zeros(int(turns.sum()), dtype=np.int64), t[first_row[turns]])
    brk = new_vehicle.copy()
    brk[1:] |= c[1:] != c[:-1]
    run_start = np.maximum.accumulate(np.where(brk, pos, 0))
    held_ns = t - t[run_start]
    code = np.where(
        c & (held_ns >= int(sustain_s * NS_PER_S)),
        lv,
        np.where(~c & (held_ns >= int(hold_s * NS_PER_S)), 0, -1),
    )
    vstart = np.maximum.accumulate(np.where(new_vehicle, pos, 0))
    last = np.maximum.accumulate(np.where(code >= 0, pos, -1))
    known = last >= vstart
    state = np.where(known, code[np.maximum(last, 0)], -1)
    since = np.where(known, t[run_start[np.maximum(last, 0)]], 0)
    raised = state > 0
    prev_raised = np.zeros(m, dtype=bool)
    prev_raised[1:] = raised[:-1]
    episode = np.cumsum(raised & (new_vehicle | ~prev_raised))
    top = np.maximum.accumulate(episode * 16 + np.where(raised, state, 0)) - episode * 16
    level = np.where(raised, top, state)
    prev_level = np.full(m, -1, dtype=np.int64)
    prev_level[1:] = level[:-1]
    prev_level[new_vehicle] = -1
    changed = (level >= 0) & (level != prev_level)
    return Changes(rows[changed], level[changed], since[changed])


def report_rows(changes: Changes, vehicle: np.ndarray, judged: np.ndarray) -> np.ndarray:
    """The row each change is reported at: its own, except that a vehicle whose only change is its
    first state, clear, is reported at its last judged row (nothing changed: the state at the
    window's end). A first state that is raised keeps the instant its raise rule was satisfied."""
    rows = changes.row.copy()
    if rows.size == 0:
        return rows
    v = vehicle[rows]
    alone = np.ones(rows.size, dtype=bool)
    alone[1:] &= v[1:] != v[:-1]
    alone[:-1] &= v[:-1] != v[1:]
    last = np.full(int(vehicle.max()) + 1, -1, dtype=np.int64)
    judged_rows = np.flatnonzero(judged)
    last[vehicle[judged_rows]] = judged_rows  # later rows overwrite earlier ones
    move = alone & (changes.level == 0)
    rows[move] = last[v[move]]
    return rows
