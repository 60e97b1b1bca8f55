"""The rules shared by the pandas baseline's detectors (`benchmarks.pandas_detectors`): persistence
(raise after a condition held, clear after its absence held, severity escalating within an
episode), the wear detectors' sustain/hold state and rolling least-squares lines, written the way
one would in pandas: groupby with shift, cumsum, cumcount and cummax, and groupby().rolling() over
time windows.

Owns: only the baseline. The semantics are `analytics.detectors.persistence` (markers and
transitions, row by row) and `analytics.detectors.trends`; the kernels are what the product runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.detectors.persistence import Persistence

NS_PER_S = 1_000_000_000


def previous_present(frame: pd.DataFrame, values: pd.Series) -> pd.Series:
    """Each row's newest earlier reading of the same vehicle (NaN when none)."""
    return values.groupby(frame["vehicle"]).ffill().groupby(frame["vehicle"]).shift()


def streak_rule(
    frame: pd.DataFrame,
    judged: pd.Series,
    member: pd.Series,
    need_s: float,
    need_rows: int,
    gap_cap_s: float,
    varying: pd.Series | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Over the judged rows: where the streak of member rows a row belongs to has `need_rows` rows
    spanning `need_s` of capped time (and one change of value with `varying`); and each judged
    row's streak start (ns)."""
    sub = frame.loc[judged, ["vehicle", "ts_ns"]]
    m = member[judged]
    new = (sub["vehicle"] != sub["vehicle"].shift()) | (m != m.shift())
    streak = new.cumsum()
    step = sub["ts_ns"].diff().clip(upper=gap_cap_s * NS_PER_S).where(~new, 0.0)
    duration_ns = step.groupby(streak).cumsum()
    count = streak.groupby(streak).cumcount() + 1
    ok = m & (count >= need_rows) & (duration_ns >= int(need_s * NS_PER_S))
    if varying is not None:
        x = varying[judged]
        changed = ((x != x.shift()) & ~new).astype(np.int64)
        ok &= changed.groupby(streak).cumsum() >= 1
    start = sub["ts_ns"].groupby(streak).transform("first")
    return ok.reindex(frame.index, fill_value=False), start


def persistence_changes(
    frame: pd.DataFrame,
    level: pd.Series,
    good: pd.Series,
    rule: Persistence,
    varying: pd.Series | None = None,
) -> pd.DataFrame:
    """State changes (index: row; columns level, since_ns) of one persistence rule: raise markers
    per severity level, clear markers, the newest marker holds, severity escalates per episode."""
    bad = level.where(~good, 0)
    raise_level = pd.Series(0, index=frame.index)
    since = pd.Series(np.nan, index=frame.index)
    for lv in sorted(bad[bad > 0].unique()):
        member = bad >= lv
        ok, start = streak_rule(
            frame, member | good, member, rule.raise_s, rule.raise_rows, rule.gap_cap_s, varying
        )
        raise_level[ok] = lv
        fresh = ok & since.isna()
        since[fresh] = start[fresh[fresh].index]
    clear, start = streak_rule(frame, (bad > 0) | good, good, rule.clear_s, rule.clear_rows, rule.gap_cap_s)
    since[clear] = start[clear[clear].index]
    code = raise_level.where(raise_level > 0, np.where(clear, 0, -1))
    marks = frame.loc[code >= 0, ["vehicle"]].assign(code=code[code >= 0], since_ns=since[code >= 0])
    return _escalating_changes(marks)


def _escalating_changes(marks: pd.DataFrame) -> pd.DataFrame:
    """From rows with a known state (`code`: 0 clear, > 0 raised at that severity): the rows where
    the state changes, severity never dropping within a raised episode."""
    raised = marks["code"] > 0
    prev_raised = raised.groupby(marks["vehicle"]).shift(fill_value=False).astype(bool)
    episode = (raised & ~prev_raised).cumsum()
    level = marks["code"].where(~raised, marks["code"].groupby(episode).cummax())
    prev_level = level.groupby(marks["vehicle"]).shift()
    changed = prev_level.isna() | (level != prev_level)
    return pd.DataFrame({"level": level[changed].astype(np.int64), "since_ns": marks["since_ns"][changed]})


def sustain_hold_changes(
    frame: pd.DataFrame, judged: pd.Series, severity: pd.Series, sustain_s: float, hold_s: float
) -> pd.DataFrame:
    """The wear detectors' state (`analytics.detectors.trends.state_changes`): raised once the
    condition has held `sustain_s` over judged rows, clear once its absence has held `hold_s`."""
    sub = frame.loc[judged, ["vehicle", "ts_ns"]]
    lv = severity[judged]
    bad = lv > 0
    new = (sub["vehicle"] != sub["vehicle"].shift()) | (bad != bad.shift())
    run_start = sub["ts_ns"].groupby(new.cumsum()).transform("first")
    held = sub["ts_ns"] - run_start
    code = pd.Series(
        np.where(
            bad & (held >= int(sustain_s * NS_PER_S)),
            lv,
            np.where(~bad & (held >= int(hold_s * NS_PER_S)), 0, -1),
        ),
        index=sub.index,
    )
    marks = sub[["vehicle"]].assign(code=code, since_ns=run_start)[code >= 0]
    return _escalating_changes(marks)


def report_at(changes: pd.DataFrame, frame: pd.DataFrame, judged: pd.Series) -> pd.Series:
    """Each change's report row (`trends.report_rows`): its own, but a vehicle whose only change is
    a clear first state is reported at its last judged row."""
    vehicle = frame["vehicle"][changes.index]
    alone = vehicle.map(vehicle.value_counts()) == 1
    last_judged = frame.index[judged].to_series().groupby(frame["vehicle"][judged]).last()
    move = alone & (changes["level"] == 0)
    rows = changes.index.to_series()
    rows[move] = vehicle[move].map(last_judged)
    return rows


def rolling_sums(frame: pd.DataFrame, x: pd.Series, y: pd.Series, window_s: float) -> pd.DataFrame:
    """Per row, over the same vehicle's rows in the trailing `window_s` (both ends closed): the
    count, sums for least squares of y on x, and the first valid row of the window."""
    ok = x.notna() & y.notna()
    xs, ys = x.where(ok, 0.0), y.where(ok, 0.0)
    parts = pd.DataFrame(
        {
            "n": ok.astype(np.float64),
            "sx": xs,
            "sy": ys,
            "sxx": xs * xs,
            "sxy": xs * ys,
            "syy": ys * ys,
            "first_valid": pd.Series(np.arange(len(frame), dtype=np.float64), index=frame.index).where(ok),
        }
    )
    parts["time"] = pd.to_datetime(frame["ts_ns"], unit="ns")
    parts["vehicle"] = frame["vehicle"]
    roll = parts.groupby("vehicle").rolling(f"{int(window_s)}s", on="time", closed="both")
    sums = roll[["n", "sx", "sy", "sxx", "sxy", "syy"]].sum()
    sums["first_valid"] = roll["first_valid"].min()
    # Groups come out by vehicle, each in its row order: the frame's own order (sorted by vehicle).
    return sums.set_index(frame.index)


def line_from_sums(sums: pd.DataFrame, x: pd.Series) -> pd.DataFrame:
    """Least-squares line per row from `rolling_sums`: n, span of x covered, level at the row's x,
    slope, and the slope's standard error."""
    n, sx, sy = sums["n"], sums["sx"], sums["sy"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = sx / n, sy / n
        vxx = np.maximum(sums["sxx"] - sx * mx, 0.0)
        cxy = sums["sxy"] - sx * my
        vyy = np.maximum(sums["syy"] - sy * my, 0.0)
        slope = (cxy / vxx).where(vxx > 0)
        resid = np.maximum(vyy - slope * cxy, 0.0)
        se = np.sqrt(resid / (n - 2) / vxx).where(n > 2)
    first = sums["first_valid"]
    x_first = pd.Series(x.to_numpy()[first.fillna(0).astype(np.int64)], index=x.index)
    span = (x - x_first).where(first.notna(), 0.0)
    return pd.DataFrame(
        {"n": n, "span_x": span, "level": my + slope * (x - mx), "slope": slope, "slope_se": se}
    )
