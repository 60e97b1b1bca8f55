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

from dataclasses import asdict, dataclass

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors.trends import (
    NS_PER_S,
    SharedX,
    first_index,
    forward_fill,
    report_rows,
    rolling_lines,
    state_changes,
    window_start,
    window_start_where,
)
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
    start = window_start_where(veh, t_s, th.window_s, t_s >= th.window_s)  # where a rate can be judged
    odo = forward_fill(veh, cols.column(ODOMETER))
    km = odo - odo[first]  # NaN before the vehicle's first odometer reading
    limit_pct, warn_pct = th.pct_at_mm(th.limit_mm), th.pct_at_mm(th.warn_remaining_mm)
    # Per wheel, one row array each (not (4, n) arrays, which are page-faulted in on every call).
    severity: list[np.ndarray] = []
    judged: list[np.ndarray] = []
    wear: list[np.ndarray] = []
    rate: list[np.ndarray] = []  # percent per km
    to_limit_km: list[np.ndarray] = []
    shared = SharedX()  # the wheels' lines share the distance
    for w in range(4):  # four wheels, each vectorised over every vehicle and row
        pct = cols.column(PAD_WEAR[w])
        valid = ~np.isnan(pct)
        at = np.flatnonzero(valid & (t_s >= th.window_s))  # the rate needs its whole window
        (line,) = rolling_lines(km, pct, ((start, at),), shared)
        rate_known = np.zeros(n, dtype=bool)
        rate_known[at] = line.n >= th.min_rows  # no distance: no wear
        with np.errstate(invalid="ignore", divide="ignore"):
            wearing_at = (
                rate_known[at]
                & (line.span_x >= th.min_km)
                & (line.slope > 0)
                & (line.slope * line.span_x >= th.min_rise_pct)
            )
        wearing = np.zeros(n, dtype=bool)
        wearing[at] = wearing_at
        slope = np.full(n, np.nan)
        slope[at] = line.slope
        with np.errstate(invalid="ignore", divide="ignore"):
            km_left = np.where(wearing, np.maximum(limit_pct - pct, 0.0) / slope, np.nan)
        due = wearing & (km_left <= th.due_km)
        worn = valid & (pct >= limit_pct)
        low = valid & (pct >= warn_pct)
        # The level rules judge every reading; the rate rule only with its whole window of history.
        judged.append(worn | low | due | rate_known)
        severity.append(np.where(worn, int(Severity.MAJOR), np.where(low | due, int(Severity.MINOR), 0)))
        wear.append(pct)
        rate.append(np.where(wearing, slope, np.nan))
        to_limit_km.append(km_left)
    any_judged = np.logical_or.reduce(judged)
    changes = state_changes(veh, cols.ts_ns, any_judged, np.maximum.reduce(severity), th.sustain_s, th.hold_s)
    rows = report_rows(changes, veh, any_judged)
    pace_km_per_s = _window_pace(window_start(veh, t_s, th.window_s, rows), rows, t_s, km)
    return [  # one iteration per finding, not per sample
        _finding(cols, th, int(r), int(lv), int(since), severity, wear, rate, to_limit_km, odo, pace_km_per_s)
        for r, lv, since in zip(rows, changes.level, changes.since_ns, strict=True)
    ]


def _window_pace(start: np.ndarray, rows: np.ndarray, t_s: np.ndarray, km: np.ndarray) -> dict[int, float]:
    """Kilometres per second driven over the trailing window of each of `rows` (the window's pace)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        pace = (km.take(rows) - km.take(start)) / (t_s.take(rows) - t_s.take(start))
    return dict(zip(rows.tolist(), pace.tolist(), strict=True))


def _finding(
    cols: TelemetryColumns,
    th: PadWearThresholds,
    row: int,
    level: int,
    since_ns: int,
    severity: list[np.ndarray],
    wear: list[np.ndarray],
    rate: list[np.ndarray],
    to_limit_km: list[np.ndarray],
    odo: np.ndarray,
    pace_km_per_s: dict[int, float],
) -> Finding:
    vid = cols.vehicle_ids[int(cols.vehicle[row])]
    at_ns = int(cols.ts_ns[row])
    # The wheel to name: the worst severity at this row, then the most worn pad.
    wears = np.array([x[row] for x in wear])
    w = int(np.lexsort((-np.nan_to_num(wears, nan=-1.0), -np.array([x[row] for x in severity])))[0])
    pct = float(wear[w][row])
    mm = th.new_pad_mm * (1.0 - pct / 100.0)
    km_left = float(to_limit_km[w][row])
    pace = float(pace_km_per_s[row])
    eta_s = km_left / pace if np.isfinite(km_left) and np.isfinite(pace) and pace > 0 else None
    per_km = float(rate[w][row])
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
        "thresholds": asdict(th),
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
