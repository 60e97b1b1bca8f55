"""`charging_fault`: the alternator (or an EV's DC-DC converter) does not charge the 12 V battery,
judged from the running voltage.

Owns: the running-voltage rule and its thresholds. A charging system holds 13.7-14.7 V while the
engine runs (../shared/REFERENCE.md); a battery is only charged when the bus is above its own open-
circuit voltage (about 12.6-12.8 V) by a margin, so a bus below `not_charging_v` for `raise_s` of
running means nothing charges it (smart alternators let the voltage sag for seconds while coasting,
which the persistence absorbs). Below `draining_v` the system runs on a battery already drained:
the vehicle may stall. The car's own monitor (P0562, system voltage low) is the DTC detectors'
business; this one needs only the voltage.

Running: a combustion engine turning (its speed wandering as a running engine's does) for
`start_settle_s` since it started (the cranking dip and the first seconds of regulation are left
out; a vehicle's first row counts as a start); an electric vehicle driving above `ev_moving_kmh`
(its DC-DC converter must supply the 12 V bus then), by two of three witnesses (speed, odometer,
GPS: `vehicle_state.moving_rows`), so that a speed sensor stuck at a driving speed does not make a
parked EV's resting voltage look like a charging system that fails. A voltage flat-lined for the
whole streak is not taken as evidence (a stuck sensor is `sensor_stuck`'s business).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors.persistence import (
    NS_PER_S,
    Persistence,
    latest_index,
    previous_index,
)
from analytics.detectors.streaks import rule_changes
from analytics.detectors.vehicle_state import LAT, LON, ODOMETER, engine_turning, moving_rows
from analytics.findings import Finding, FindingState, Severity

FAULT = "charging_fault"
THRESHOLDS_VERSION = "charging-2"
VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"
ENGINE_RPM = "Vehicle.Powertrain.CombustionEngine.Speed"
SPEED = "Vehicle.Speed"
SIGNALS: tuple[str, ...] = (VOLTAGE, ENGINE_RPM, SPEED, ODOMETER, LAT, LON)
WINDOW_S = 3_600.0


@dataclass(frozen=True)
class ChargingThresholds:
    version: str = THRESHOLDS_VERSION
    not_charging_v: float = 13.0  # running below: MAJOR (charging band 13.7-14.7 V)
    draining_v: float = 12.0  # running below: CRITICAL (the battery is failing under the load)
    charging_ok_v: float = 13.5  # running at or above: charging (the band between is neither)
    start_settle_s: float = 10.0
    ev_moving_kmh: float = 5.0
    persistence: Persistence = field(default_factory=lambda: Persistence(60.0, 5, 60.0, 5, gap_cap_s=10.0))


def detect_charging_fault(
    cols: TelemetryColumns, params: VehicleParams, thresholds: ChargingThresholds = ChargingThresholds()
) -> list[Finding]:
    th = thresholds
    vehicle, ts = cols.vehicle, cols.ts_ns
    volts, rpm = cols.column(VOLTAGE), cols.column(ENGINE_RPM)
    is_ev = params.is_ev[vehicle] if vehicle.size else np.zeros(0, dtype=bool)
    ev_driving = is_ev & moving_rows(cols, th.ev_moving_kmh) if is_ev.any() else np.zeros_like(is_ev)
    running = running_rows(vehicle, ts, rpm, ev_driving, is_ev, th.start_settle_s)
    judged = running & ~np.isnan(volts)
    level = np.where(
        judged & (volts < th.draining_v),
        int(Severity.CRITICAL),
        np.where(judged & (volts < th.not_charging_v), int(Severity.MAJOR), 0),
    )
    tr = rule_changes(vehicle, ts, level, judged & (volts >= th.charging_ok_v), th.persistence, varying=volts)
    out = []
    for row, lvl, since in zip(tr.row, tr.level, tr.since_ns, strict=True):
        vid = cols.vehicle_ids[int(vehicle[row])]
        evidence = {
            "signal": VOLTAGE,
            "volts": round(float(volts[row]), 3),
            "not_charging_below_v": th.not_charging_v,
            "draining_below_v": th.draining_v,
            "sustain_s": th.persistence.raise_s,
            "thresholds_version": th.version,
        }
        if lvl == 0:
            out.append(
                Finding(
                    vid,
                    FAULT,
                    FindingState.CLEAR,
                    int(ts[row]),
                    Severity.WARNING,
                    int(since),
                    "The charging system holds the 12 V bus in its charging band again.",
                    evidence,
                )
            )
        else:
            out.append(
                Finding(
                    vid,
                    FAULT,
                    FindingState.RAISE,
                    int(ts[row]),
                    Severity(int(lvl)),
                    int(since),
                    "The 12 V system voltage stays below the charging band while the vehicle runs: "
                    "check the alternator (or DC-DC converter), its belt and wiring.",
                    evidence,
                )
            )
    return out


def running_rows(
    vehicle: np.ndarray,
    ts_ns: np.ndarray,
    rpm: np.ndarray,
    ev_driving: np.ndarray,
    is_ev: np.ndarray,
    start_settle_s: float,
) -> np.ndarray:
    """Rows where the charging system must be working: a combustion engine turning (`engine_turning`)
    for at least `start_settle_s` since it started, or an electric vehicle driving (`ev_driving`)."""
    has_rpm = ~np.isnan(rpm)
    prev = previous_index(vehicle, has_rpm)
    start = has_rpm & (rpm > 0) & ((prev < 0) | (rpm[np.maximum(prev, 0)] == 0))
    last_start = latest_index(vehicle, start)
    settled = (last_start >= 0) & (ts_ns - ts_ns[np.maximum(last_start, 0)] >= int(start_settle_s * NS_PER_S))
    ice = engine_turning(vehicle, rpm) & settled & ~is_ev
    return ice | ev_driving
