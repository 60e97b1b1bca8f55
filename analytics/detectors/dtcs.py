"""Alarms from the trouble codes vehicles report (contract.dtc): each stored code is an alarm while
the vehicle reports it, and clears when its report no longer holds it (the car's own monitor has
healed it over its drive cycles, or a workshop cleared it).

Owns: reading a vehicle's timeline of whole code sets into RAISE/CLEAR findings; misfire codes
(P0300 random, P0301-P0312 by cylinder: a misfire cannot be seen in 1 Hz engine speed, so the
codes are the evidence) become one `misfire` alarm naming the cylinders; every other code is an
alarm `dtc:<code>` with its SAE J2012 class and a severity. Pure: the timeline comes in as data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from analytics.findings import Finding, FindingState, Severity

MISFIRE = re.compile(r"P03(0[0-9]|1[0-2])")
THRESHOLDS_VERSION = "dtc-2026-12-01"
KNOWN: dict[str, tuple[Severity, str]] = {
    "P0217": (Severity.CRITICAL, "engine over temperature: stop when safe and let the engine cool"),
    "P0562": (Severity.MAJOR, "system voltage low: the charging system does not keep the battery up"),
    "P0606": (Severity.MAJOR, "control module processor fault: often a software fault of the ECU"),
    "P0128": (Severity.MINOR, "coolant below thermostat regulating temperature"),
    "P0420": (Severity.MINOR, "catalyst efficiency below threshold"),
    "C1A00": (Severity.MAJOR, "brake pad wear indicator: the pads are at their limit"),
}
GONE = "no longer reported by the vehicle"
CLASS_NAMES = {"P": "powertrain", "C": "chassis", "B": "body", "U": "network"}


@dataclass(frozen=True)
class DtcReportRow:
    """One report: a vehicle's whole set of stored codes at `ts_ns` (its clock), and the ECU
    software that ran (ECU -> version), as `dtc_reports` holds it."""

    vehicle_id: str
    ts_ns: int
    codes: tuple[str, ...]
    software: dict[str, str] = field(default_factory=dict)


def code_class(code: str) -> str:
    """`P0301` -> "powertrain, generic": SAE J2012's letter, and 0 (or 2, 3 for P) = generic."""
    generic = code[1] == "0" or (code[0] == "P" and code[1] in "23")
    return f"{CLASS_NAMES.get(code[0], 'unknown')}, {'generic' if generic else 'manufacturer'}"


def severity_of(code: str) -> Severity:
    if code in KNOWN:
        return KNOWN[code][0]
    return Severity.MINOR if code[0] == "B" or code[1] != "0" else Severity.MAJOR


def detect_dtc_alarms(reports: Sequence[DtcReportRow]) -> list[Finding]:
    """Findings from each vehicle's reports (any order): a RAISE for every code of its first report
    and whenever a code (or another misfire cylinder) appears, a CLEAR when a code is gone. The
    reports should start with the vehicle's last report before the job's window, so that a code
    cleared at the window's start is seen to clear; repeated RAISEs are the alarm lifecycle's to
    ignore."""
    by_vehicle: dict[str, list[DtcReportRow]] = {}
    for report in reports:
        by_vehicle.setdefault(report.vehicle_id, []).append(report)
    findings: list[Finding] = []
    for vehicle_id, timeline in sorted(by_vehicle.items()):
        timeline.sort(key=lambda r: r.ts_ns)
        before: dict[str, Finding] = {}
        for report in timeline:
            now = _faults(vehicle_id, report)
            for fault in sorted(before.keys() - now.keys()):
                cleared = Finding(vehicle_id, fault, FindingState.CLEAR, report.ts_ns, explanation=GONE)
                findings.append(cleared)
            new = [f for f in sorted(now) if f not in before or _misfire_changed(before[f], now[f])]
            findings.extend(now[f] for f in new)
            before = now
    return findings


def _misfire_changed(old: Finding, new: Finding) -> bool:
    return old.fault == "misfire" and old.evidence.get("codes") != new.evidence.get("codes")


def _faults(vehicle_id: str, report: DtcReportRow) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    misfires = sorted(c for c in report.codes if MISFIRE.fullmatch(c))
    if misfires:
        cylinders = sorted(int(c[3:]) for c in misfires if c != "P0300")
        where = f"cylinder {', '.join(map(str, cylinders))}" if cylinders else "random cylinders (P0300)"
        out["misfire"] = Finding(
            vehicle_id, "misfire", FindingState.RAISE, report.ts_ns, Severity.MAJOR, report.ts_ns,
            f"The engine misfires ({where}): check plugs, coils and injectors before the catalyst suffers.",
            {"codes": misfires, "cylinders": cylinders, "software": report.software},
        )  # fmt: skip
    for code in report.codes:
        if code in misfires:
            continue
        meaning = KNOWN.get(code, (None, "reported by the vehicle's own monitor"))[1]
        out[f"dtc:{code}"] = Finding(
            vehicle_id, f"dtc:{code}", FindingState.RAISE, report.ts_ns, severity_of(code), report.ts_ns,
            f"Trouble code {code} ({code_class(code)}): {meaning}.",
            {"code": code, "class": code_class(code), "software": report.software},
        )  # fmt: skip
    return out
