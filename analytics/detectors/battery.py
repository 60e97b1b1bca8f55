"""`battery_12v_failing`: the 12 V battery cannot hold or deliver its charge, judged from the
resting voltage with the engine off and the voltage dip at each engine start.

Owns: the rest and cranking rules and their thresholds (lead-acid figures, ../shared/REFERENCE.md:
at rest >= 12.6 V is full, < 12.4 V partly discharged, < 12.0 V failing; a start needs >= 10 V and
about 9 V causes faults). Leaves the running voltage to `analytics.detectors.charging` and the
alarm's life to `analytics.alarms`.

- Rest: the vehicle is off (combustion: engine speed 0; electric: standing still with the 12 V bus
  below what its DC-DC converter holds) and has been for `settle_s`, so the alternator's surface
  charge and the modules still awake after a drive no longer move the reading. The first row of a
  vehicle's data counts as "on", so a window never assumes a rest it did not see.
- Early rest: off for `early_settle_s` but not yet `settle_s` (a delivery van that never parks
  long). Surface charge only raises a reading, and the loads still awake after switch-off (tens
  of amperes through a healthy battery's few milliohms) lower it by at most about
  `early_load_margin_v`. So an early reading below a threshold less that margin is evidence of a
  weak battery too (bad at the same level); an early reading is never evidence of a good one.
- Cranking (combustion only; an EV's 12 V battery never cranks): the lowest voltage within
  `crank_window_s` of each engine start (engine speed going from 0 to running). At 1 Hz the dip is
  often missed; a missed dip reads high, so it can hide a weak battery but never invent one.
Rest readings and starts form one stream of readings, each bad at a level (rest: MINOR partly
discharged, MAJOR failing; cranking: MAJOR below 10 V, CRITICAL below 9 V), good, or in the band
between (neither). Raised after `persistence.raise_rows` bad readings in a row spanning
`raise_s` (each gap counted at most `gap_cap_s`), cleared after as many good ones; one stream,
so a good rest and a weak start never hold two opposite alarms that flap, and the state at a row
depends only on the readings before it (a trailing window agrees with a whole run).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors.persistence import (
    NS_PER_S,
    Persistence,
    first_rows,
    latest_index,
    previous_index,
)
from analytics.detectors.streaks import rule_changes
from analytics.findings import Finding, FindingState, Severity

FAULT = "battery_12v_failing"
THRESHOLDS_VERSION = "battery-2"
VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"
ENGINE_RPM = "Vehicle.Powertrain.CombustionEngine.Speed"
SPEED = "Vehicle.Speed"
SIGNALS: tuple[str, ...] = (VOLTAGE, ENGINE_RPM, SPEED)
WINDOW_S = 86_400.0  # a day: an overnight rest and the day's starts


@dataclass(frozen=True)
class BatteryThresholds:
    version: str = THRESHOLDS_VERSION
    settle_s: float = 600.0  # engine off this long before a reading counts as resting
    early_settle_s: float = 60.0  # off this long: a low reading already counts (with the margin)
    early_load_margin_v: float = 0.2  # what after-run loads can take off a healthy battery's reading
    partly_discharged_v: float = 12.4  # rest below: MINOR
    failing_v: float = 12.0  # rest below: MAJOR
    rest_ok_v: float = 12.45  # rest at or above: healthy (the band between is neither)
    crank_min_v: float = 10.0  # cranking dip below: MAJOR
    crank_fault_v: float = 9.0  # cranking dip below: CRITICAL (modules brown out)
    crank_ok_v: float = 10.2  # dip at or above: a healthy start
    crank_window_s: float = 3.0
    standing_kmh: float = 0.5
    ev_dcdc_on_v: float = 13.2  # an EV's 12 V bus at or above this is being supplied, not resting
    persistence: Persistence = field(default_factory=lambda: Persistence(60.0, 3, 60.0, 3, gap_cap_s=60.0))


def detect_battery_12v_failing(
    cols: TelemetryColumns, params: VehicleParams, thresholds: BatteryThresholds = BatteryThresholds()
) -> list[Finding]:
    th = thresholds
    vehicle, ts = cols.vehicle, cols.ts_ns
    volts, rpm, speed = cols.column(VOLTAGE), cols.column(ENGINE_RPM), cols.column(SPEED)
    is_ev = params.is_ev[vehicle] if vehicle.size else np.zeros(0, dtype=bool)
    standing = speed <= th.standing_kmh
    off = np.where(is_ev, standing & (volts < th.ev_dcdc_on_v), (rpm == 0) & ~(speed > th.standing_kmh))
    on = ~off | first_rows(vehicle)
    last_on = latest_index(vehicle, on)
    off_ns = np.where(off & ~np.isnan(volts), ts - ts[np.maximum(last_on, 0)], -1)
    resting = off_ns >= int(th.settle_s * NS_PER_S)
    early = ~resting & (off_ns >= int(th.early_settle_s * NS_PER_S))
    margin = th.early_load_margin_v
    dip = _cranking_dips(cols, rpm, volts, is_ev, th.crank_window_s)
    started = ~np.isnan(dip)
    # One stream of readings: rest readings and starts, each bad at some level, good, or neither.
    level = np.select(
        [
            started & (dip < th.crank_fault_v),
            started & (dip < th.crank_min_v),
            (resting & (volts < th.failing_v)) | (early & (volts < th.failing_v - margin)),
            (resting & (volts < th.partly_discharged_v))
            | (early & (volts < th.partly_discharged_v - margin)),
        ],
        [int(Severity.CRITICAL), int(Severity.MAJOR), int(Severity.MAJOR), int(Severity.MINOR)],
        0,
    )
    good = (started & (dip >= th.crank_ok_v)) | (resting & (volts >= th.rest_ok_v))
    reading = np.where(started, dip, volts)
    tr = rule_changes(vehicle, ts, level, good, th.persistence, varying=reading)
    out = []
    for row, lvl, since in zip(tr.row, tr.level, tr.since_ns, strict=True):
        vid = cols.vehicle_ids[int(vehicle[row])]
        if lvl == 0:
            out.append(
                Finding(
                    vid, FAULT, FindingState.CLEAR, int(ts[row]), Severity.WARNING, int(since),
                    "The 12 V battery holds its charge again at rest and on starting.",
                    {"signal": VOLTAGE, "volts": _round(volts[row]), "thresholds_version": th.version},
                )
            )
        elif not started[row]:
            out.append(
                Finding(
                    vid, FAULT, FindingState.RAISE, int(ts[row]), Severity(int(lvl)), int(since),
                    "The 12 V battery's resting voltage is low with the engine off: test and charge or "
                    "replace the battery before it fails to start the vehicle.",
                    {
                        "signal": VOLTAGE,
                        "rule": "resting_voltage",
                        "volts": _round(volts[row]),
                        "partly_discharged_below_v": th.partly_discharged_v,
                        "failing_below_v": th.failing_v,
                        "settle_s": th.settle_s,
                        "early_reading": bool(early[row]),
                        "early_load_margin_v": th.early_load_margin_v,
                        "thresholds_version": th.version,
                    },
                )
            )
        else:
            out.append(
                Finding(
                    vid, FAULT, FindingState.RAISE, int(ts[row]), Severity(int(lvl)), int(since),
                    "The 12 V battery's voltage collapses when the engine cranks: load-test and "
                    "replace the battery before it fails to start the vehicle.",
                    {
                        "signal": VOLTAGE,
                        "rule": "cranking_dip",
                        "dip_volts": _round(dip[row]),
                        "crank_min_v": th.crank_min_v,
                        "crank_fault_v": th.crank_fault_v,
                        "thresholds_version": th.version,
                    },
                )
            )
    return out


def _cranking_dips(
    cols: TelemetryColumns, rpm: np.ndarray, volts: np.ndarray, is_ev: np.ndarray, window_s: float
) -> np.ndarray:
    """Per row: at each combustion engine start (engine speed > 0 after a reading of 0), the lowest
    voltage of the vehicle within `window_s` either side; NaN elsewhere."""
    vehicle, ts = cols.vehicle, cols.ts_ns
    n = ts.shape[0]
    dip = np.full(n, np.nan)
    has_rpm = ~np.isnan(rpm)
    prev = previous_index(vehicle, has_rpm)
    start = has_rpm & (rpm > 0) & (prev >= 0) & ~is_ev
    start[start] = rpm[prev[start]] == 0
    rows = np.flatnonzero(start)
    if rows.size == 0:
        return dip
    # (vehicle, ms) keys are sorted like the rows; each start's window is one slice of them.
    t0 = int(ts.min())
    span_ms = (int(ts.max()) - t0) // 1_000_000 + 1
    key = vehicle.astype(np.int64) * (span_ms + 2 * int(window_s * 1000) + 1) + (ts - t0) // 1_000_000
    w_ms = int(window_s * 1000)
    lo = np.searchsorted(key, key[rows] - w_ms, side="left")
    hi = np.searchsorted(key, key[rows] + w_ms, side="right")
    v = np.append(np.where(np.isnan(volts), np.inf, volts), np.inf)
    bounds = np.empty(2 * rows.size, dtype=np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    lowest = np.minimum.reduceat(v, bounds)[0::2]
    dip[rows] = np.where(np.isfinite(lowest), lowest, np.nan)
    return dip


def _round(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 3)
