"""`thermostat_stuck`: the engine runs hotter than its thermostat and fan allow, sustained (a
thermostat stuck closed), judged from the coolant temperature while the engine runs.

Owns: the over-temperature rule and its thresholds. A thermostat opens at about 85-95 °C and the
electric fan holds the coolant below about 105 °C even in hot, slow traffic, whatever the ambient
temperature; a pressurised (about 1 bar) glycol mix boils near 125 °C. So: above `overheat_c` for
`raise_s` of running is MAJOR, above `boiling_c` CRITICAL. It clears only after the coolant has been
back in the regulated band (`band_low_c`..`band_high_c`, i.e. warmed up and regulating) for
`clear_s` of running: a cold engine warming up proves nothing, and a stuck-closed engine passes
through the band in a few minutes on its way up, so the hold is longer than that. Readings with
the engine off (heat soak), or with an engine speed that does not wander as a turning engine's
does (a stuck sensor), are not judged.

The car's own over-temperature monitor is evidence too: while it has P0217 stored
(`analytics.code_state`), a running engine counts as over temperature (MAJOR) and not as back in
the band. The monitor sees every second of the engine's life at its own threshold, so a car that
crosses 110 °C only briefly before each stop, too briefly for `raise_s`, is still found on its
next drive; and the alarm does not clear while the car itself still reports the fault. The code
also stays a `dtc:P0217` alarm of its own (the DTC detectors'): this one is the diagnosis.
Electric vehicles have no engine coolant signal and get no finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams, code_signal
from analytics.detectors.persistence import Persistence
from analytics.detectors.streaks import rule_changes
from analytics.detectors.vehicle_state import engine_turning
from analytics.findings import Finding, FindingState, Severity

FAULT = "thermostat_stuck"
THRESHOLDS_VERSION = "coolant-2"
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
ENGINE_RPM = "Vehicle.Powertrain.CombustionEngine.Speed"
OVER_TEMPERATURE_CODE = "P0217"
SIGNALS: tuple[str, ...] = (COOLANT, ENGINE_RPM, code_signal(OVER_TEMPERATURE_CODE))
WINDOW_S = 14_400.0  # a few drives: enough running time to see the band held for clear_s


@dataclass(frozen=True)
class CoolantThresholds:
    version: str = THRESHOLDS_VERSION
    overheat_c: float = 110.0  # running above: MAJOR
    boiling_c: float = 120.0  # running above: CRITICAL
    band_low_c: float = 70.0  # warmed up from here
    band_high_c: float = 100.0  # regulated up to here (100-110 °C is neither)
    persistence: Persistence = field(default_factory=lambda: Persistence(120.0, 5, 600.0, 10, gap_cap_s=10.0))


def detect_thermostat_stuck(
    cols: TelemetryColumns, params: VehicleParams, thresholds: CoolantThresholds = CoolantThresholds()
) -> list[Finding]:
    th = thresholds
    vehicle, ts = cols.vehicle, cols.ts_ns
    coolant, rpm = cols.column(COOLANT), cols.column(ENGINE_RPM)
    code_stored = cols.column(code_signal(OVER_TEMPERATURE_CODE)) == 1.0
    is_ev = params.is_ev[vehicle] if vehicle.size else np.zeros(0, dtype=bool)
    judged = ~is_ev & engine_turning(vehicle, rpm) & ~np.isnan(coolant)
    level = np.where(
        judged & (coolant > th.boiling_c),
        int(Severity.CRITICAL),
        np.where(judged & ((coolant > th.overheat_c) | code_stored), int(Severity.MAJOR), 0),
    )
    good = judged & (coolant >= th.band_low_c) & (coolant <= th.band_high_c) & ~code_stored
    tr = rule_changes(vehicle, ts, level, good, th.persistence, varying=coolant)
    out = []
    for row, lvl, since in zip(tr.row, tr.level, tr.since_ns, strict=True):
        vid = cols.vehicle_ids[int(vehicle[row])]
        evidence = {
            "signal": COOLANT,
            "coolant_c": round(float(coolant[row]), 2),
            "code_stored": {OVER_TEMPERATURE_CODE: bool(code_stored[row])},
            "overheat_above_c": th.overheat_c,
            "boiling_above_c": th.boiling_c,
            "band_c": [th.band_low_c, th.band_high_c],
            "thresholds_version": th.version,
        }
        if lvl == 0:
            out.append(
                Finding(
                    vid, FAULT, FindingState.CLEAR, int(ts[row]), Severity.WARNING, int(since),
                    "The engine coolant stays in its regulated band again.",
                    evidence,
                )
            )
        else:
            out.append(
                Finding(
                    vid, FAULT, FindingState.RAISE, int(ts[row]), Severity(int(lvl)), int(since),
                    "The engine runs above its regulated coolant temperature: check the thermostat "
                    "(stuck closed), coolant level, fan and water pump before the engine is damaged.",
                    evidence,
                )
            )
    return out
