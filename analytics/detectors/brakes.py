"""`brake_pad_wear`: pads worn to their limit, nearly there, or wearing so fast they soon will be.

Owns: reading VSS `...Brake.PadWear` (percent: 0 = new, 100 = worn down to the backing plate) as
thickness, `mm = new_pad_mm * (1 - pct / 100)`, with the 11 mm new / 2 mm limit of a passenger
car's front pads (the usual wear-indicator point; the simulator's C1A00 fires below 2.0 mm, which
is 81.8%); the wear rate per wheel (least squares of PadWear on the odometer,
`Vehicle.TraveledDistance`, over a trailing window); and the projected distance to the limit.
Severity:
- MAJOR: worn to the limit (thickness <= `limit_mm`): replace the pads now.
- MINOR: within `warn_remaining_mm` of new-pad-zero thickness (<= 3 mm, the common "replace soon"
  point), or a measured wear rate that reaches the limit within `due_km`.
A wear rate counts only when the fitted rise over the window is at least `min_rise_pct` (PadWear
is reported in whole percent, and a reading that toggles between two neighbours must not look
like wear) over at least `min_km`. Each rule must hold `sustain_s`; the alarm clears after none
has held for `hold_s` (new pads read near 0%).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors.trends import (
    NS_PER_S,
    first_index,
    forward_fill,
    nan_to_num,
    report_rows,
    state_changes,
    window_start,
)
from analytics.detectors.wheel_lines import WheelLines, wheel_lines, wheel_sums
from analytics.detectors.wheel_lines import forward_fill as forward_fill_wheels
from analytics.findings import Finding, Severity
from contract.signals import WHEELS, wheel_paths

FAULT = "brake_pad_wear"
THRESHOLDS_VERSION = "brake_pad_wear/1"
PAD_WEAR = wheel_paths("Brake.PadWear")
ODOMETER = "Vehicle.TraveledDistance"
SIGNALS: tuple[str, ...] = (*PAD_WEAR, ODOMETER)


@dataclass(frozen=True)
class PadWearThresholds:
    version: str = THRESHOLDS_VERSION
    new_pad_mm: float = 11.0
    limit_mm: float = 2.0
    warn_remaining_mm: float = 3.0
    window_s: float = 3600.0  # trailing window of the wear rate
    min_rows: int = 10
    min_km: float = 2.0
    min_rise_pct: float = 2.5
    due_km: float = 1000.0
    sustain_s: float = 60.0
    hold_s: float = 1800.0

    def pct_at_mm(self, mm: float) -> float:
        return 100.0 * (1.0 - mm / self.new_pad_mm)


WINDOW_S = PadWearThresholds().window_s + PadWearThresholds().hold_s


def detect_brake_pad_wear(
    cols: TelemetryColumns, params: VehicleParams, thresholds: PadWearThresholds = PadWearThresholds()
) -> list[Finding]:
    """The detector contract (analytics.detectors): transitions of `brake_pad_wear` per vehicle."""
    th = thresholds
    n = cols.n_rows
    if n == 0:
        return []
    veh = cols.vehicle.astype(np.int64)
    first = first_index(veh)
    t_s = (cols.ts_ns - cols.ts_ns[first]) / NS_PER_S
    odo = forward_fill(veh, cols.column(ODOMETER))
    km = odo - odo[first]  # NaN before the vehicle's first odometer reading
    limit_pct, warn_pct = th.pct_at_mm(th.limit_mm), th.pct_at_mm(th.warn_remaining_mm)
    # The four wheels as rows of (4, n) arrays: each step below runs once for all of them.
    pct = np.stack([cols.column(path) for path in PAD_WEAR])
    valid = ~np.isnan(pct)
    with np.errstate(invalid="ignore"):
        worn = valid & (pct >= limit_pct)
        low = valid & (pct >= warn_pct)
    # The level rules judge every reading; the rate rule only with its whole window of history.
    any_judged = (worn | low).any(axis=0)
    row_severity = np.where(worn, int(Severity.MAJOR), np.where(low, int(Severity.MINOR), 0)).max(axis=0)
    at = np.flatnonzero(t_s >= th.window_s)
    start = window_start(veh, t_s, th.window_s, at)
    used = valid & ~np.isnan(km)  # the readings a rate is fitted to: with a distance
    rate_known = valid.take(at, axis=1) & (_counts(used, start, at) >= th.min_rows)  # no distance: no wear
    # PadWear moves in whole percent, rarely: in most windows every reading is the same, the fitted
    # rise is 0 and nothing wears. The lines are fitted only where some wheel's readings change.
    fitted = np.flatnonzero(_counts(_changes(veh, pct, used), start + 1, at).any(axis=0))
    wearing = np.zeros((4, at.size), dtype=bool)
    due = np.zeros((4, at.size), dtype=bool)
    slope = np.full((4, at.size), np.nan)
    if fitted.size:
        line = _lines_of_vehicles(veh, km, pct, start[fitted], at[fitted])
        with np.errstate(invalid="ignore"):
            w = rate_known.take(fitted, axis=1) & (line.span_x >= th.min_km) & (line.slope > 0)
            w &= line.slope * line.span_x >= th.min_rise_pct
        wearing[:, fitted], slope[:, fitted] = w, line.slope
        with np.errstate(invalid="ignore", divide="ignore"):
            left_km = np.maximum(limit_pct - pct.take(at[fitted], axis=1), 0.0) / line.slope
        due[:, fitted] = w & (left_km <= th.due_km)
    any_judged[at] |= rate_known.any(axis=0)
    row_severity[at] = np.maximum(row_severity[at], np.where(due, int(Severity.MINOR), 0).max(axis=0))
    changes = state_changes(veh, cols.ts_ns, any_judged, row_severity, th.sustain_s, th.hold_s)
    rows = report_rows(changes, veh, any_judged)
    pace_km_per_s = _window_pace(window_start(veh, t_s, th.window_s, rows), rows, t_s, km)
    # The evidence, at the reported rows only (a row before the rate's window has no rate).
    col = np.searchsorted(at, rows)
    has_rate = col < at.size
    has_rate[has_rate] = at[col[has_rate]] == rows[has_rate]
    col[~has_rate] = at.size  # the column appended below: no rate
    wear = pct.take(rows, axis=1)
    slope_r = np.column_stack((slope, np.full(4, np.nan))).take(col, axis=1)
    wearing_r = np.column_stack((wearing, np.zeros(4, dtype=bool))).take(col, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        km_left = np.where(wearing_r, np.maximum(limit_pct - wear, 0.0) / slope_r, np.nan)
    severity = np.where(
        worn.take(rows, axis=1),
        int(Severity.MAJOR),
        np.where(low.take(rows, axis=1) | (wearing_r & (km_left <= th.due_km)), int(Severity.MINOR), 0),
    )
    rate = np.where(wearing_r, slope_r, np.nan)
    thresholds_dict = _thresholds_dict(th)
    return [  # one iteration per finding, not per sample
        _finding(
            cols,
            th,
            thresholds_dict,
            int(r),
            int(lv),
            int(since),
            severity[:, i],
            wear[:, i],
            rate[:, i],
            km_left[:, i],
            odo,
            pace_km_per_s,
        )
        for i, (r, lv, since) in enumerate(zip(rows, changes.level, changes.since_ns, strict=True))
    ]


def _lines_of_vehicles(
    veh: np.ndarray, km: np.ndarray, pct: np.ndarray, start: np.ndarray, at: np.ndarray
) -> WheelLines:
    """The lines at rows `at` (each from its `start`, a row of the same vehicle), with the sums
    over those vehicles' rows only: a few of the piece's, as if they were a piece of their own."""
    vehicles = np.unique(veh[at])
    lo = np.searchsorted(veh, vehicles, side="left")
    size = np.searchsorted(veh, vehicles, side="right") - lo
    shift = lo - (np.cumsum(size) - size)  # a kept row's index minus its position among the kept
    rows = np.repeat(shift, size) + np.arange(int(size.sum()))
    at_shift = shift[np.searchsorted(vehicles, veh[at])]
    return wheel_lines(wheel_sums(km[rows], pct.take(rows, axis=1)), start - at_shift, at - at_shift)


def _counts(flags: np.ndarray, start: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per wheel, how many of rows start[k]..at[k] are flagged (integer prefix sums: exact)."""
    c = np.zeros((flags.shape[0], flags.shape[1] + 1), dtype=np.int32)
    np.cumsum(flags, axis=1, dtype=np.int32, out=c[:, 1:])
    return c.take(at + 1, axis=1) - c.take(start, axis=1)


def _changes(veh: np.ndarray, pct: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Per wheel, the readings used that differ from the vehicle's previous reading used (or have
    none before them): a window without one after its first row has one value throughout."""
    prev = np.full(pct.shape, np.nan)
    prev[:, 1:] = forward_fill_wheels(veh, np.where(used, pct, np.nan))[:, :-1]
    return used & ~(pct == prev)


def _window_pace(start: np.ndarray, rows: np.ndarray, t_s: np.ndarray, km: np.ndarray) -> dict[int, float]:
    """Kilometres per second driven over the trailing window of each of `rows` (the window's pace)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        pace = (km.take(rows) - km.take(start)) / (t_s.take(rows) - t_s.take(start))
    return dict(zip(rows.tolist(), pace.tolist(), strict=True))


@functools.lru_cache(maxsize=8)
def _thresholds_dict(th: PadWearThresholds) -> dict:
    """The thresholds as the evidence carries them (each finding gets its own copy)."""
    return asdict(th)


def _finding(
    cols: TelemetryColumns,
    th: PadWearThresholds,
    thresholds: dict,
    row: int,
    level: int,
    since_ns: int,
    severity: np.ndarray,
    wear: np.ndarray,
    rate: np.ndarray,
    to_limit_km: np.ndarray,
    odo: np.ndarray,
    pace_km_per_s: dict[int, float],
) -> Finding:
    """The finding at `row`, with each wheel's severity, wear, rate and distance left there."""
    vid = cols.vehicle_ids[int(cols.vehicle[row])]
    at_ns = int(cols.ts_ns[row])
    # The wheel to name: the worst severity at this row, then the most worn pad, then the first.
    sev, wears = severity.tolist(), wear.tolist()
    w = min(range(4), key=lambda k: (-sev[k], -nan_to_num(wears[k], nan=-1.0)))
    pct = float(wears[w])
    mm = th.new_pad_mm * (1.0 - pct / 100.0)
    km_left = float(to_limit_km[w])
    pace = float(pace_km_per_s[row])
    eta_s = km_left / pace if np.isfinite(km_left) and np.isfinite(pace) and pace > 0 else None
    per_km = float(rate[w])
    evidence = {
        "signal": PAD_WEAR[w],
        "wheel": WHEELS[w],
        "pad_wear_pct": pct,
        "pad_mm_estimate": round(mm, 2),
        "limit_pct": round(th.pct_at_mm(th.limit_mm), 2),
        "limit_mm": th.limit_mm,
        "wear_rate_pct_per_1000_km": None if np.isnan(per_km) else round(per_km * 1000.0, 2),
        "projected_km_to_limit": None if np.isnan(km_left) else round(km_left, 1),
        "projected_time_to_limit_s_at_window_pace": None if eta_s is None else round(eta_s, 1),
        "odometer_km": None if np.isnan(odo[row]) else round(float(odo[row]), 1),
        "thresholds": dict(thresholds),
    }
    if level == 0:
        text = "Brake pads have wear left and are wearing at a normal rate."
    elif pct >= th.pct_at_mm(th.limit_mm):
        text = (
            f"The {WHEELS[w]} brake pad is worn to its limit (about {mm:.1f} mm left, {pct:.0f}% worn): "
            "replace the pads on that axle before further driving."
        )
    else:
        eta = ""
        if np.isfinite(km_left):
            eta = f"; at its current wear rate it reaches the limit in about {km_left:.0f} km"
        text = (
            f"The {WHEELS[w]} brake pad is {pct:.0f}% worn (about {mm:.1f} mm left){eta}: book a pad "
            "replacement."
        )
    return Finding.at_level(vid, FAULT, level, at_ns, since_ns, text, evidence)
