"""`sensor_stuck` and `sensor_dropout`: a sensor that reports the same value where the vehicle's
state says it must vary, or that stops reporting while the rest of the vehicle reports.

Owns: which signals are watched (and for which powertrain), when a vehicle moves, and the two
rules. One alarm per (vehicle, signal): the fault string names the signal, `sensor_stuck:<VSS
path>` and `sensor_dropout:<VSS path>` (one active alarm per (vehicle, fault) would otherwise let
one stuck tyre sensor hide another); `evidence["signal"]` carries the path too.

- Moving: at least two of three independent witnesses agree, so one stuck or missing sensor
  cannot fake or hide motion: speed above `moving_kmh`, the odometer advancing since its previous
  reading, and the GPS fix moving faster than `moving_kmh` since the previous fix.
- Stuck: while moving, every reading of the signal equals the one before (bit for bit) for
  `stuck_s` of moving time. Each signal's `stuck_s` is long enough for a healthy sensor to move by
  more than its resolution while driving (a TPMS pressure warms by several kPa, an OBD speed on
  cruise control may hold an integer km/h for minutes); values that legitimately hold still while
  driving (pad wear, flags, gear) are not watched. Clears after `clear_rows` changing readings.
  A regulated temperature (coolant) also has physics: below its regulated value with the engine
  running it must warm, above it with the engine off it must cool, so a reading unchanged over
  `regulated_stuck_s` of such time is stuck too, even on a car that then drives little.
- Dropout: while moving and while at least `min_other_signals` other watched signals report, the
  signal has not been read for `dropout_s` of such time, having been read earlier in the window
  (a signal the vehicle never reports is not a dropout: the model may not have it; one the window
  never saw gives no finding). Clears once it reports again for `clear_s`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors.persistence import (
    NS_PER_S,
    Persistence,
    Transitions,
    first_rows,
    latest_index,
    previous_index,
)
from analytics.detectors.streaks import flag_changes, judged_flag_changes, judged_rows, stacked_flag_changes
from analytics.detectors.vehicle_state import LAT, LON, ODOMETER, SPEED, moving_rows
from analytics.findings import Finding, Severity

ENGINE_SPEED = "Vehicle.Powertrain.CombustionEngine.Speed"
STUCK = "sensor_stuck"
DROPOUT = "sensor_dropout"
THRESHOLDS_VERSION = "sensors-2"
ANY, COMBUSTION, ELECTRIC = "any", "combustion", "electric"


@dataclass(frozen=True)
class WatchedSignal:
    path: str
    powertrain: str = ANY  # which vehicles have it: any, combustion or electric
    stuck_s: float = 600.0  # moving time with an unchanged reading that means stuck
    # A temperature the engine regulates to about this: above it with the engine off it must fall,
    # below it with the engine running it must rise; unchanged over `regulated_stuck_s` of such
    # time means stuck too (a coolant sensor holds still for long while the thermostat works).
    regulated_c: float | None = None


_TYRES = tuple(
    f"Vehicle.Chassis.Axle.Row{r}.Wheel.{side}.Tire.Pressure" for r in (1, 2) for side in ("Left", "Right")
)
WATCHED: tuple[WatchedSignal, ...] = (
    WatchedSignal(SPEED, ANY, 600.0),
    WatchedSignal(LAT, ANY, 300.0),
    WatchedSignal(LON, ANY, 300.0),
    WatchedSignal("Vehicle.CurrentLocation.Heading", ANY, 600.0),
    WatchedSignal(ODOMETER, ANY, 300.0),
    WatchedSignal("Vehicle.Acceleration.Longitudinal", ANY, 300.0),
    WatchedSignal("Vehicle.Acceleration.Lateral", ANY, 300.0),
    WatchedSignal("Vehicle.Acceleration.Vertical", ANY, 300.0),
    WatchedSignal("Vehicle.LowVoltageBattery.CurrentVoltage", ANY, 600.0),
    WatchedSignal("Vehicle.Powertrain.CombustionEngine.Speed", COMBUSTION, 300.0),
    WatchedSignal(
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature", COMBUSTION, 1800.0, regulated_c=70.0
    ),
    WatchedSignal("Vehicle.Powertrain.FuelSystem.RelativeLevel", COMBUSTION, 1800.0),
    WatchedSignal("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", ELECTRIC, 1800.0),
    *(WatchedSignal(path, ANY, 900.0) for path in _TYRES),
)
SIGNALS: tuple[str, ...] = tuple(dict.fromkeys([*(w.path for w in WATCHED), SPEED, ODOMETER, LAT, LON]))
WINDOW_S = 21_600.0  # six hours: the longest stuck_s of moving time for a vehicle that drives little


@dataclass(frozen=True)
class SensorThresholds:
    version: str = THRESHOLDS_VERSION
    watched: tuple[WatchedSignal, ...] = WATCHED
    moving_kmh: float = 5.0
    stuck_severity: Severity = Severity.MINOR
    stuck_min_rows: int = 30
    stuck_clear_rows: int = 3
    dropout_s: float = 300.0
    dropout_fresh_s: float = 90.0  # read within this much moving time: reporting
    dropout_clear_s: float = 120.0
    dropout_severity: Severity = Severity.MINOR
    min_other_signals: int = 2
    gap_cap_s: float = 10.0  # moving time counts at most this much between two moving rows
    # Engine off, a coolant 20 °C or more above even a hot day's air cools by well over 1 °C (one
    # OBD step) in a few minutes; engine running, a cold one warms by several degrees a minute.
    # Parked vehicles are sampled less often, hence the longer gap.
    regulated_stuck_s: float = 900.0
    regulated_min_rows: int = 10
    regulated_gap_cap_s: float = 120.0


def detect_sensor_stuck(
    cols: TelemetryColumns, params: VehicleParams, thresholds: SensorThresholds = SensorThresholds()
) -> list[Finding]:
    th = thresholds
    vehicle, ts = cols.vehicle, cols.ts_ns
    moving = moving_rows(cols, th.moving_kmh)
    after = ~first_rows(vehicle)  # rows with an earlier row of the same vehicle
    has = _powertrain_rows(params, vehicle)
    moving_has = {k: moving & v for k, v in has.items()}
    level = int(th.stuck_severity)
    found: dict[str, tuple[np.ndarray, Transitions]] = {}  # per signal: its rows and transitions there
    # A signal read on every row of the vehicles that have it is judged on the rows where such a
    # vehicle moves and has an earlier row (so the row before is its previous reading), which depend
    # only on the powertrain: those signals go through the streak rule together.
    everywhere: dict[str, list[WatchedSignal]] = {}
    for w in th.watched:  # a loop over signals; each pass is vectorised over vehicles and time
        present = ~np.isnan(cols.column(w.path))
        if not present.any():
            continue
        if (present | ~has[w.powertrain]).all():
            everywhere.setdefault(w.powertrain, []).append(w)
            continue
        x = cols.column(w.path)  # each reading against the vehicle's reading before it
        prev = previous_index(vehicle, present)
        rows = np.flatnonzero(present & (prev >= 0) & moving_has[w.powertrain])
        judged = judged_rows(vehicle[rows], ts[rows], th.gap_cap_s)
        found[w.path] = (
            rows,
            judged_flag_changes(judged, x[rows] == x[prev[rows]], level, _stuck_rule(w, th)),
        )
    for powertrain, group in everywhere.items():
        rows = np.flatnonzero(after & moving_has[powertrain])
        unchanged = np.empty((len(group), rows.shape[0]), dtype=bool)
        repeated = np.zeros(cols.n_rows, dtype=bool)
        for k, w in enumerate(group):
            x = cols.column(w.path)
            np.equal(x[1:], x[:-1], out=repeated[1:])  # each row against the row before
            np.take(repeated, rows, out=unchanged[k])
        judged = judged_rows(vehicle[rows], ts[rows], th.gap_cap_s)
        stacked = stacked_flag_changes(judged, unchanged, level, [_stuck_rule(w, th) for w in group])
        found.update((w.path, (rows, tr)) for w, tr in zip(group, stacked, strict=True))
    out: list[Finding] = []
    for w in th.watched:
        if w.path not in found:
            continue
        x = cols.column(w.path)
        rows, tr = found[w.path]
        rows_levels = [(rows.take(tr.row), tr.level, tr.since_ns)]
        if w.regulated_c is not None:
            rows_levels.append(_regulated_changes(cols, params, w, th, x))
        fault = f"{STUCK}:{w.path}"
        cleared = f"The {w.path} sensor's readings vary again."
        raised = (
            f"The {w.path} sensor reports the same value while the vehicle drives: check "
            "the sensor and its wiring; alarms that rely on it are unreliable meanwhile."
        )
        for r, lv, sn in rows_levels:
            at = zip(vehicle.take(r).tolist(), x.take(r).tolist(), ts.take(r).tolist(), strict=True)
            for (v, value, at_ns), lvl, since in zip(at, lv.tolist(), sn.tolist(), strict=True):
                evidence = {
                    "signal": w.path,
                    "value": value,
                    "stuck_for_moving_s": w.stuck_s,
                    "thresholds_version": th.version,
                }
                out.append(_finding(cols.vehicle_ids[v], fault, lvl, at_ns, since, evidence, cleared, raised))
    return out


def _stuck_rule(w: WatchedSignal, th: SensorThresholds) -> Persistence:
    return Persistence(w.stuck_s, th.stuck_min_rows, 0.0, th.stuck_clear_rows, gap_cap_s=th.gap_cap_s)


def _regulated_changes(
    cols: TelemetryColumns, params: VehicleParams, w: WatchedSignal, th: SensorThresholds, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stuck rule on the rows where a regulated temperature must move: engine off and above
    the regulated value (cooling), or engine running and below it (warming); over the rows that
    carry a reading, each against the one before. (rows, levels, since) transitions in the
    columns' row space."""
    vehicle, ts = cols.vehicle, cols.ts_ns
    present = ~np.isnan(x)
    read = None if present.all() else np.flatnonzero(present)
    rows = slice(None) if read is None else read
    xr, vr, tr_ns = x[rows], vehicle[rows], ts[rows]
    unchanged = np.zeros(xr.shape[0], dtype=bool)
    np.equal(xr[1:], xr[:-1], out=unchanged[1:])
    rpm = cols.column(ENGINE_SPEED)[rows]
    speed = cols.column(SPEED)[rows]
    combustion = ~params.is_ev[vr] if vr.size else np.zeros(0, dtype=bool)
    regulated = float(w.regulated_c or 0.0)
    with np.errstate(invalid="ignore"):
        cooling = (rpm == 0) & ~(speed > 0) & (xr >= regulated)
        warming = (rpm > 0) & (xr < regulated)
    judged = (cooling | warming) & ~first_rows(vr) & combustion
    rule = Persistence(
        th.regulated_stuck_s,
        th.regulated_min_rows,
        0.0,
        th.stuck_clear_rows,
        gap_cap_s=th.regulated_gap_cap_s,
    )
    tr = flag_changes(vr, tr_ns, judged, judged & unchanged, int(th.stuck_severity), rule)
    row = tr.row if read is None else read[tr.row]
    return row, tr.level, tr.since_ns


def detect_sensor_dropout(
    cols: TelemetryColumns, params: VehicleParams, thresholds: SensorThresholds = SensorThresholds()
) -> list[Finding]:
    th = thresholds
    vehicle, ts = cols.vehicle, cols.ts_ns
    moving = moving_rows(cols, th.moving_kmh)
    present_by = {w.path: ~np.isnan(cols.column(w.path)) for w in th.watched}
    reporting = np.zeros(cols.n_rows, dtype=np.int16)  # how many watched signals each row carries
    for present in present_by.values():
        reporting += present
    rule = Persistence(0.0, 1, th.dropout_clear_s, 2, gap_cap_s=th.gap_cap_s)
    has = _powertrain_rows(params, vehicle)
    moving_has = {k: moving & v for k, v in has.items()}
    # A signal read on every row of the vehicles that have it is never unread: its judged rows are
    # all fresh, and they depend only on the powertrain, so every such signal of a powertrain has
    # the same state changes.
    everywhere: dict[str, Transitions] = {}
    out: list[Finding] = []
    for w in th.watched:  # a loop over signals; each pass is vectorised over vehicles and time
        present = present_by[w.path]
        if not present.any():
            continue
        last_read: np.ndarray | None = None
        if (present | ~has[w.powertrain]).all():
            tr = everywhere.get(w.powertrain)
            if tr is None:
                judged = (reporting - 1 >= th.min_other_signals) & moving_has[w.powertrain]
                never = np.zeros(cols.n_rows, dtype=bool)
                tr = flag_changes(vehicle, ts, judged, never, int(th.dropout_severity), rule)
                everywhere[w.powertrain] = tr
        else:
            judged = (reporting - present >= th.min_other_signals) & moving_has[w.powertrain]
            last_read = latest_index(vehicle, present)
            judged &= last_read >= 0
            age_s = _unread_time_s(vehicle, ts, judged, present, th.gap_cap_s)
            bad = judged & (age_s > th.dropout_s)
            good = judged & (age_s <= th.dropout_fresh_s)
            tr = flag_changes(vehicle, ts, bad | good, bad, int(th.dropout_severity), rule)
        fault = f"{DROPOUT}:{w.path}"
        cleared = f"The {w.path} sensor reports again."
        raised = (
            f"The {w.path} sensor has stopped reporting while the rest of the vehicle "
            "reports: check the sensor, its wiring and its bus connection."
        )
        r = tr.row
        at_ns = ts.take(r).tolist()
        read_ns = at_ns if last_read is None else ts.take(last_read.take(r)).tolist()
        unread = [0.0] * r.shape[0] if last_read is None else [round(a, 1) for a in age_s.take(r).tolist()]
        at = zip(vehicle.take(r).tolist(), at_ns, read_ns, unread, strict=True)
        for (v, t_ns, read, unread_s), lvl, since in zip(
            at, tr.level.tolist(), tr.since_ns.tolist(), strict=True
        ):
            evidence = {
                "signal": w.path,
                "last_read_ns": read,
                "unread_moving_s": unread_s,
                "dropout_after_moving_s": th.dropout_s,
                "thresholds_version": th.version,
            }
            out.append(_finding(cols.vehicle_ids[v], fault, lvl, t_ns, since, evidence, cleared, raised))
    return out


def _powertrain_rows(params: VehicleParams, vehicle: np.ndarray) -> dict[str, np.ndarray]:
    """Per powertrain a watched signal may be for: the rows of vehicles that have it."""
    is_ev = params.is_ev[vehicle] if vehicle.size else np.zeros(0, dtype=bool)
    return {COMBUSTION: ~is_ev, ELECTRIC: is_ev, ANY: np.ones(vehicle.shape[0], dtype=bool)}


def _unread_time_s(
    vehicle: np.ndarray, ts_ns: np.ndarray, judged: np.ndarray, present: np.ndarray, gap_cap_s: float
) -> np.ndarray:
    """Per judged row: the judged time (gaps capped) since the signal was last read on a judged
    row, or since the vehicle's first judged row; NaN on rows not judged."""
    out = np.full(ts_ns.shape[0], np.nan)
    rows = np.flatnonzero(judged)
    if rows.size == 0:
        return out
    v, t = vehicle[rows], ts_ns[rows]
    step = np.zeros(rows.size, dtype=np.int64)
    step[1:] = np.minimum(np.diff(t), int(gap_cap_s * NS_PER_S))
    first = first_rows(v)
    step[first] = 0
    clock = np.cumsum(step)
    anchor = latest_index(v, present[rows] | first)
    out[rows] = (clock - clock[anchor]) / NS_PER_S
    return out


def _finding(
    vid: str, fault: str, level: int, at_ns: int, since_ns: int, evidence: dict, cleared: str, raised: str
) -> Finding:
    """A CLEAR (level 0) or a RAISE at `level`, with the explanation that fits."""
    return Finding.at_level(vid, fault, level, at_ns, since_ns, raised if level else cleared, evidence)
