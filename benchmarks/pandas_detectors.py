"""The fault detectors written in plain pandas: the baseline `fleet bench analytics` measures the
kernels against, and checks that both raise the same alarms.

Owns: a straightforward pandas version of each telemetry detector of `analytics.suite` (12 V
battery, charging, coolant, stuck and dropped-out sensors, tyre leak, pad wear), with the same
rules and the thresholds imported from the detector modules: one DataFrame, `groupby(vehicle)`
with `shift`/`ffill`/`cumsum` for previous readings and streaks, `groupby().rolling()` over time
windows for minima and trends (`benchmarks.pandas_rules`). No loop over rows or vehicles (the
loops are over signals and wheels, as a pandas user would write them), and nothing slowed down on
purpose. Each transition is `(vehicle_id, fault, detail, state, severity, at_ns)`; detail is the
wheel for tyres and pads (the fault names the signal for sensors), as the kernels' findings do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.columns import TelemetryColumns, VehicleParams, code_signal
from analytics.detectors import battery, brakes, charging, coolant, sensors, tyres
from analytics.detectors.persistence import Persistence
from analytics.detectors.tyres import compensate_kpa
from analytics.detectors.vehicle_state import LAT, LON, M_PER_DEG, ODOMETER, SPEED
from analytics.findings import Severity
from benchmarks.pandas_rules import (
    NS_PER_S,
    line_from_sums,
    persistence_changes,
    previous_present,
    report_at,
    rolling_sums,
    sustain_hold_changes,
)
from contract.signals import WHEELS

Transition = tuple[str, str, str, str, int, int]  # vehicle_id, fault, detail, state, severity, at_ns


def frame_of(cols: TelemetryColumns, params: VehicleParams) -> pd.DataFrame:
    """The columns as one DataFrame (a RangeIndex: row positions), with each row's powertrain."""
    frame = pd.DataFrame({"vehicle": cols.vehicle, "ts_ns": cols.ts_ns, **cols.values})
    frame["is_ev"] = params.is_ev[cols.vehicle]
    return frame


def detect_all(cols: TelemetryColumns, params: VehicleParams) -> list[Transition]:
    """Every detector's transitions over the columns."""
    frame = frame_of(cols, params)
    out: list[Transition] = []
    for detect in (
        battery_12v,
        charging_fault,
        thermostat,
        sensor_stuck,
        sensor_dropout,
        tyre_leak,
        pad_wear,
    ):
        out += detect(frame, cols, params)
    return out


def _column(frame: pd.DataFrame, path: str) -> pd.Series:
    return frame[path] if path in frame else pd.Series(np.nan, index=frame.index)


def _as_transitions(
    frame: pd.DataFrame, cols: TelemetryColumns, changes: pd.DataFrame, fault: str, detail: str = ""
) -> list[Transition]:
    vehicles = frame["vehicle"].to_numpy()[changes.index]
    at = frame["ts_ns"].to_numpy()[changes.index]
    return [
        (cols.vehicle_ids[v], fault, detail, "raise" if lv else "clear", int(lv), int(t))
        for v, lv, t in zip(vehicles, changes["level"], at, strict=True)
    ]


def _engine_turning(frame: pd.DataFrame, rpm: pd.Series) -> pd.Series:
    prev = previous_present(frame, rpm)
    return rpm.notna() & (rpm > 0) & (prev.isna() | (rpm != prev))


def battery_12v(frame: pd.DataFrame, cols: TelemetryColumns, params: VehicleParams) -> list[Transition]:
    th = battery.BatteryThresholds()
    volts, rpm, speed = (
        _column(frame, battery.VOLTAGE),
        _column(frame, battery.ENGINE_RPM),
        _column(frame, SPEED),
    )
    is_ev, vehicle = frame["is_ev"], frame["vehicle"]
    off = (is_ev & (speed <= th.standing_kmh) & (volts < th.ev_dcdc_on_v)) | (
        ~is_ev & (rpm == 0) & ~(speed > th.standing_kmh)
    )
    on = ~off | (vehicle != vehicle.shift())
    last_on_ns = frame["ts_ns"].where(on).groupby(vehicle).ffill()
    off_ns = frame["ts_ns"] - last_on_ns
    resting = off & (off_ns >= int(th.settle_s * NS_PER_S)) & volts.notna()
    early = off & ~resting & (off_ns >= int(th.early_settle_s * NS_PER_S)) & volts.notna()
    margin = th.early_load_margin_v
    prev_rpm = previous_present(frame, rpm)
    start = rpm.notna() & (rpm > 0) & prev_rpm.notna() & ~is_ev & (prev_rpm == 0)
    dip = _window_min(frame, volts, th.crank_window_s).where(start)
    started = dip.notna()
    level = pd.Series(
        np.select(
            [started & (dip < th.crank_fault_v), started & (dip < th.crank_min_v),
             (resting & (volts < th.failing_v)) | (early & (volts < th.failing_v - margin)),
             (resting & (volts < th.partly_discharged_v))
             | (early & (volts < th.partly_discharged_v - margin))],
            [int(Severity.CRITICAL), int(Severity.MAJOR), int(Severity.MAJOR), int(Severity.MINOR)],
            0,
        ),
        index=frame.index,
    )  # fmt: skip
    good = (started & (dip >= th.crank_ok_v)) | (resting & (volts >= th.rest_ok_v))
    reading = dip.where(started, volts)
    changes = persistence_changes(frame, level, good, th.persistence, reading)
    return _as_transitions(frame, cols, changes, battery.FAULT)


def _window_min(frame: pd.DataFrame, values: pd.Series, half_s: float) -> pd.Series:
    """The lowest value of the same vehicle within `half_s` either side of each row (on whole
    milliseconds, as the kernel keys them): a trailing rolling minimum, and one over reversed time."""
    ms = frame["ts_ns"] // 1_000_000
    window = f"{int(half_s * 1000)}ms"
    back = pd.DataFrame({"v": values, "vehicle": frame["vehicle"], "t": pd.to_datetime(ms, unit="ms")})
    trailing = back.groupby("vehicle").rolling(window, on="t", closed="both")["v"].min().to_numpy()
    rev = back.iloc[::-1].assign(t=pd.to_datetime(ms.max() - ms.iloc[::-1], unit="ms"))
    leading_by_group = rev.groupby("vehicle").rolling(window, on="t", closed="both")["v"].min().to_numpy()
    # Groups come out by vehicle, each in the reversed frame's order: put them back by row.
    rows = rev.index.to_numpy()[np.argsort(rev["vehicle"].to_numpy(), kind="stable")]
    leading = np.empty(len(frame))
    leading[rows] = leading_by_group
    return pd.Series(np.fmin(trailing, leading), index=frame.index)


def charging_fault(frame: pd.DataFrame, cols: TelemetryColumns, params: VehicleParams) -> list[Transition]:
    th = charging.ChargingThresholds()
    volts, rpm = _column(frame, charging.VOLTAGE), _column(frame, charging.ENGINE_RPM)
    vehicle, ts, is_ev = frame["vehicle"], frame["ts_ns"], frame["is_ev"]
    prev = previous_present(frame, rpm)
    start = rpm.notna() & (rpm > 0) & (prev.isna() | (prev == 0))
    last_start_ns = ts.where(start).groupby(vehicle).ffill()
    settled = last_start_ns.notna() & (ts - last_start_ns >= int(th.start_settle_s * NS_PER_S))
    running = (_engine_turning(frame, rpm) & settled & ~is_ev) | (is_ev & moving(frame, th.ev_moving_kmh))
    judged = running & volts.notna()
    level = pd.Series(
        np.where(judged & (volts < th.draining_v), 4, np.where(judged & (volts < th.not_charging_v), 3, 0)),
        index=frame.index,
    )
    changes = persistence_changes(frame, level, judged & (volts >= th.charging_ok_v), th.persistence, volts)
    return _as_transitions(frame, cols, changes, charging.FAULT)


def thermostat(frame: pd.DataFrame, cols: TelemetryColumns, params: VehicleParams) -> list[Transition]:
    th = coolant.CoolantThresholds()
    temp, rpm = _column(frame, coolant.COOLANT), _column(frame, coolant.ENGINE_RPM)
    stored = _column(frame, code_signal(coolant.OVER_TEMPERATURE_CODE)) == 1.0
    judged = ~frame["is_ev"] & _engine_turning(frame, rpm) & temp.notna()
    level = pd.Series(
        np.where(
            judged & (temp > th.boiling_c), 4, np.where(judged & ((temp > th.overheat_c) | stored), 3, 0)
        ),
        index=frame.index,
    )
    good = judged & (temp >= th.band_low_c) & (temp <= th.band_high_c) & ~stored
    changes = persistence_changes(frame, level, good, th.persistence, temp)
    return _as_transitions(frame, cols, changes, coolant.FAULT)


def moving(frame: pd.DataFrame, moving_kmh: float) -> pd.Series:
    """Two of three witnesses: speed, the odometer advancing, the GPS fix moving."""
    by_speed = _column(frame, SPEED) > moving_kmh
    odo = _column(frame, ODOMETER)
    prev_odo = previous_present(frame, odo)
    by_odo = odo.notna() & prev_odo.notna() & (odo > prev_odo)
    lat, lon = _column(frame, LAT), _column(frame, LON)
    fix = lat.notna() & lon.notna()
    prev_lat, prev_lon = previous_present(frame, lat.where(fix)), previous_present(frame, lon.where(fix))
    prev_ns = previous_present(frame, frame["ts_ns"].where(fix).astype(np.float64))
    dy_m = (lat - prev_lat) * M_PER_DEG
    dx_m = (lon - prev_lon) * M_PER_DEG * np.cos(np.radians(lat))
    dt_s = np.maximum((frame["ts_ns"] - prev_ns) / NS_PER_S, 1e-3)
    by_gps = fix & prev_lat.notna() & (np.hypot(dx_m, dy_m) / dt_s * 3.6 > moving_kmh)
    return by_speed.astype(np.int8) + by_odo + by_gps >= 2


def _has(frame: pd.DataFrame, powertrain: str) -> pd.Series:
    if powertrain == sensors.COMBUSTION:
        return ~frame["is_ev"]
    if powertrain == sensors.ELECTRIC:
        return frame["is_ev"]
    return pd.Series(True, index=frame.index)


def sensor_stuck(frame: pd.DataFrame, cols: TelemetryColumns, params: VehicleParams) -> list[Transition]:
    th = sensors.SensorThresholds()
    move = moving(frame, th.moving_kmh)
    out: list[Transition] = []
    for w in th.watched:
        x = _column(frame, w.path)
        present = x.notna()
        if not present.any():
            continue
        read = frame.loc[present, ["vehicle", "ts_ns"]]
        xr = x[present]
        judged = (
            (read["vehicle"] == read["vehicle"].shift()) & move[present] & _has(frame, w.powertrain)[present]
        )
        same = judged & (xr == xr.shift())
        rule = Persistence(w.stuck_s, th.stuck_min_rows, 0.0, th.stuck_clear_rows, gap_cap_s=th.gap_cap_s)
        level = pd.Series(np.where(same, int(th.stuck_severity), 0), index=read.index)
        changes = persistence_changes(read, level, judged & ~same, rule)
        out += _as_transitions(frame, cols, changes, f"{sensors.STUCK}:{w.path}")
        if w.regulated_c is not None:  # must warm while running below it, cool while off above it
            rpm = _column(frame, sensors.ENGINE_SPEED)[present]
            speed = _column(frame, sensors.SPEED)[present]
            cooling = (rpm == 0) & ~(speed > 0) & (xr >= w.regulated_c)
            warming = (rpm > 0) & (xr < w.regulated_c)
            judged = (
                (read["vehicle"] == read["vehicle"].shift()) & (cooling | warming) & ~frame["is_ev"][present]
            )
            same = judged & (xr == xr.shift())
            rule = Persistence(
                th.regulated_stuck_s,
                th.regulated_min_rows,
                0.0,
                th.stuck_clear_rows,
                gap_cap_s=th.regulated_gap_cap_s,
            )
            level = pd.Series(np.where(same, int(th.stuck_severity), 0), index=read.index)
            changes = persistence_changes(read, level, judged & ~same, rule)
            out += _as_transitions(frame, cols, changes, f"{sensors.STUCK}:{w.path}")
    return out


def sensor_dropout(frame: pd.DataFrame, cols: TelemetryColumns, params: VehicleParams) -> list[Transition]:
    th = sensors.SensorThresholds()
    move = moving(frame, th.moving_kmh)
    vehicle = frame["vehicle"]
    present_by = {w.path: _column(frame, w.path).notna() for w in th.watched}
    reporting = pd.DataFrame(present_by).sum(axis=1)
    rule = Persistence(0.0, 1, th.dropout_clear_s, 2, gap_cap_s=th.gap_cap_s)
    out: list[Transition] = []
    for w in th.watched:
        present = present_by[w.path]
        if not present.any():
            continue
        seen = present.astype(np.int64).groupby(vehicle).cumsum() > 0
        judged = move & (reporting - present >= th.min_other_signals) & seen & _has(frame, w.powertrain)
        sub = frame.loc[judged, ["vehicle", "ts_ns"]]
        first = sub["vehicle"] != sub["vehicle"].shift()
        clock = sub["ts_ns"].diff().clip(upper=th.gap_cap_s * NS_PER_S).where(~first, 0.0).cumsum()
        anchor = clock.where(present[judged] | first).groupby(sub["vehicle"]).ffill()
        age_s = ((clock - anchor) / NS_PER_S).reindex(frame.index)
        bad = judged & (age_s > th.dropout_s)
        good = judged & (age_s <= th.dropout_fresh_s)
        level = pd.Series(np.where(bad, int(th.dropout_severity), 0), index=frame.index)
        out += _as_transitions(
            frame, cols, persistence_changes(frame, level, good, rule), f"{sensors.DROPOUT}:{w.path}"
        )
    return out


def tyre_leak(frame: pd.DataFrame, cols: TelemetryColumns, params: VehicleParams) -> list[Transition]:
    th = tyres.TyreLeakThresholds()
    vehicle = frame["vehicle"]
    t_s = (frame["ts_ns"] - frame["ts_ns"].groupby(vehicle).transform("first")) / NS_PER_S
    placard = pd.Series(params.tyre_placard_kpa[cols.vehicle].astype(np.float64), index=frame.index)
    severity, judged, level = {}, {}, {}
    for w in range(4):
        p, temp = _column(frame, tyres.PRESSURE[w]), _column(frame, tyres.TEMPERATURE[w])
        pc = pd.Series(compensate_kpa(p.to_numpy(), temp.to_numpy(), th.reference_c), index=frame.index)
        early = pc.where(t_s < th.window_s).groupby(vehicle).transform("median")
        ref = placard.fillna(early)
        plausible = pc.notna() & ~_stuck_suspect(frame, t_s, p, temp, th)
        y = (pc - ref).where(plausible)
        # The fitted drop must also exceed what the whole-degree temperature readings can fake.
        quantum = pd.Series(tyres.quantum_drop_kpa(th, pc.to_numpy(), temp.to_numpy()), index=frame.index)
        lvl = pd.Series(np.nan, index=frame.index)
        kpa_per_h = pd.Series(np.nan, index=frame.index)
        leak_any = pd.Series(False, index=frame.index)
        conclusive = pd.Series(False, index=frame.index)
        for window_s in (th.window_s, th.short_window_s, th.slow_window_s):
            line = line_from_sums(rolling_sums(frame, t_s, y, window_s), t_s)
            ok = plausible & (t_s >= window_s) & (line["n"] >= th.min_rows)
            ok &= (line["span_x"] >= th.min_span_fraction * window_s) & line["slope"].notna()
            rate = -line["slope"] * 3600.0
            drop = rate * line["span_x"] / 3600.0
            leaking = ok & (rate >= th.min_leak_kpa_per_h) & (drop >= th.min_drop_kpa) & (drop >= quantum)
            leaking &= -line["slope"] / line["slope_se"] >= th.min_t_stat
            leaking &= (drop - quantum) / (line["slope_se"] * line["span_x"]) >= th.quantum_t_stat
            conclusive |= ok if window_s == th.window_s else leaking
            lvl = lvl.where(lvl.notna() | ~ok, ref + line["level"])
            kpa_per_h = kpa_per_h.where(~(leaking & ~leak_any), rate)
            kpa_per_h = kpa_per_h.where(kpa_per_h.notna() | ~ok, rate)
            leak_any |= leaking
        under = conclusive & (lvl <= (1.0 - th.under_placard_fraction) * ref)
        severity[w] = pd.Series(np.where(under, 4, np.where(leak_any, 3, 0)), index=frame.index)
        judged[w], level[w] = conclusive, lvl
    sev = pd.DataFrame(severity)
    any_judged = pd.DataFrame(judged).any(axis=1)
    changes = sustain_hold_changes(frame, any_judged, sev.max(axis=1), th.sustain_s, th.hold_s)
    rows = report_at(changes, frame, any_judged).to_numpy()
    # The wheel to name: the worst severity at the row, then the lowest pressure.
    order = pd.DataFrame(
        {"sev": sev.to_numpy()[rows].ravel(), "kpa": pd.DataFrame(level).to_numpy()[rows].ravel()}
    )
    order["kpa"] = order["kpa"].fillna(np.inf)
    order["finding"] = np.repeat(np.arange(rows.size), 4)
    order["wheel"] = np.tile(np.arange(4), rows.size)
    wheel = order.sort_values(["finding", "sev", "kpa"], ascending=[True, False, True], kind="stable")
    wheel = wheel.groupby("finding")["wheel"].first().to_numpy()
    return _named(frame, cols, rows, changes["level"].to_numpy(), tyres.FAULT, wheel)


def _named(
    frame: pd.DataFrame,
    cols: TelemetryColumns,
    rows: np.ndarray,
    levels: np.ndarray,
    fault: str,
    wheel: np.ndarray,
) -> list[Transition]:
    vehicles, at = frame["vehicle"].to_numpy()[rows], frame["ts_ns"].to_numpy()[rows]
    return [
        (cols.vehicle_ids[v], fault, WHEELS[w], "raise" if lv else "clear", int(lv), int(t))
        for v, lv, t, w in zip(vehicles, levels, at, wheel, strict=True)
    ]


def _stuck_suspect(
    frame: pd.DataFrame, t_s: pd.Series, p: pd.Series, temp: pd.Series, th: tyres.TyreLeakThresholds
) -> pd.Series:
    """Raw pressure flat while the tyre's temperature moved (or flat long without a temperature)."""
    vehicle = frame["vehicle"]
    valid = p.notna()
    changed = valid & (p != previous_present(frame, p))
    temp_ff = temp.groupby(vehicle).ffill()
    at_change = temp_ff.fillna(np.inf).where(changed).groupby(vehicle).ffill().replace(np.inf, np.nan)
    seen_change = changed.astype(np.int64).groupby(vehicle).cumsum() > 0
    d_temp = (temp_ff - at_change).abs().fillna(-1.0).clip(upper=999.0)
    d_max = d_temp.groupby(changed.cumsum()).cummax()
    flat_s = t_s - t_s.where(changed).groupby(vehicle).ffill()
    no_temp = temp_ff.isna()
    return (
        valid
        & seen_change
        & ((d_max >= th.stuck_temperature_change_c) | (no_temp & (flat_s >= th.stuck_without_temperature_s)))
    )


def pad_wear(frame: pd.DataFrame, cols: TelemetryColumns, params: VehicleParams) -> list[Transition]:
    th = brakes.PadWearThresholds()
    vehicle = frame["vehicle"]
    t_s = (frame["ts_ns"] - frame["ts_ns"].groupby(vehicle).transform("first")) / NS_PER_S
    odo = _column(frame, ODOMETER).groupby(vehicle).ffill()
    km = odo - odo.where(vehicle != vehicle.shift()).groupby(vehicle).ffill()  # NaN before the first reading
    limit_pct, warn_pct = th.pct_at_mm(th.limit_mm), th.pct_at_mm(th.warn_remaining_mm)
    severity, judged, wear = {}, {}, {}
    for w in range(4):
        pct = _column(frame, brakes.PAD_WEAR[w])
        valid = pct.notna()
        line = line_from_sums(rolling_sums(frame, km, pct, th.window_s), km)
        rate_known = valid & (t_s >= th.window_s) & (line["n"] >= th.min_rows)
        wearing = rate_known & (line["span_x"] >= th.min_km) & (line["slope"] > 0)
        wearing &= line["slope"] * line["span_x"] >= th.min_rise_pct
        km_left = (np.maximum(limit_pct - pct, 0.0) / line["slope"]).where(wearing)
        due = wearing & (km_left <= th.due_km)
        worn = valid & (pct >= limit_pct)
        low = valid & (pct >= warn_pct)
        judged[w] = worn | low | due | rate_known
        severity[w] = pd.Series(np.where(worn, 3, np.where(low | due, 2, 0)), index=frame.index)
        wear[w] = pct
    sev = pd.DataFrame(severity)
    any_judged = pd.DataFrame(judged).any(axis=1)
    changes = sustain_hold_changes(frame, any_judged, sev.max(axis=1), th.sustain_s, th.hold_s)
    rows = report_at(changes, frame, any_judged).to_numpy()
    # The wheel to name: the worst severity at the row, then the most worn pad.
    order = pd.DataFrame(
        {"sev": sev.to_numpy()[rows].ravel(), "pct": pd.DataFrame(wear).to_numpy()[rows].ravel()}
    )
    order["pct"] = order["pct"].fillna(-1.0)
    order["finding"] = np.repeat(np.arange(rows.size), 4)
    order["wheel"] = np.tile(np.arange(4), rows.size)
    wheel = order.sort_values(["finding", "sev", "pct"], ascending=[True, False, False], kind="stable")
    wheel = wheel.groupby("finding")["wheel"].first().to_numpy()
    return _named(frame, cols, rows, changes["level"].to_numpy(), brakes.FAULT, wheel)
