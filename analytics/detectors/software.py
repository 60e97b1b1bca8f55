"""The fleet-level firmware detector: a trouble code whose rate depends on an ECU's software version.

For every (ECU, version, code) it compares the share of vehicles that reported the code while
running that version with the share among vehicles that ran other versions of the same ECU: a
one-sided Fisher exact test (scipy), Bonferroni-corrected over the combinations that could be
significant at all (Tarone's refinement: a code that the version's vehicles could not show more
often than the others even if every one of them reported it costs the family no error, so it is
not counted), and a rate at least `min_rate_ratio` times the others'. A version found guilty gets
a `SoftwareIssue` naming the version to leave and, if any vehicle runs a newer version of that ECU
that never reported the code, the version that cures it: the input the OTA remedy needs. Each
vehicle that still runs the guilty version gets a `firmware_bug` alarm (raised even before it
reports the code itself: the fleet has shown the risk); one that moved off it gets a CLEAR at the
time it reported its new software. Pure: reports and inventories come in as data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import fisher_exact, hypergeom

from analytics.detectors.dtcs import DtcReportRow
from analytics.findings import Finding, FindingState, Severity

THRESHOLDS_VERSION = "software-2026-12-02"


@dataclass(frozen=True)
class SoftwareThresholds:
    alpha: float = 1e-3  # family-wise error rate over every (ECU, version, code) tried
    min_rate_ratio: float = 5.0  # the version's reporting share over the other versions'
    min_reporting: int = 2  # vehicles on the version that reported the code


@dataclass(frozen=True)
class SoftwareIssue:
    ecu: str
    version: str
    code: str
    cure_version: str | None
    vehicles_on: int  # vehicles that ran the version
    reporting_on: int  # ... and reported the code while on it
    vehicles_off: int  # vehicles that ran another version of the ECU
    reporting_off: int
    p_value: float
    found_ns: int  # the newest report the finding rests on


@dataclass(frozen=True)
class Inventory:
    """What software each vehicle ran: every (ECU, version) it ever reported, and what it runs now
    with the time it reported that (ns)."""

    ran: Mapping[str, frozenset[tuple[str, str]]]
    current: Mapping[str, Mapping[str, tuple[str, int]]]  # vehicle -> ECU -> (version, reported_ns)


def find_software_issues(
    reports: Sequence[DtcReportRow],
    inventory: Inventory,
    thresholds: SoftwareThresholds = SoftwareThresholds(),
) -> list[SoftwareIssue]:
    ran: dict[str, set[tuple[str, str]]] = {v: set(pairs) for v, pairs in inventory.ran.items()}
    reported: dict[tuple[str, str, str], set[str]] = {}  # (ecu, version, code) -> vehicles
    for r in reports:
        for ecu, version in r.software.items():
            ran.setdefault(r.vehicle_id, set()).add((ecu, version))
            for code in r.codes:
                reported.setdefault((ecu, version, code), set()).add(r.vehicle_id)
    on_version: dict[tuple[str, str], set[str]] = {}
    for vehicle, pairs in ran.items():
        for pair in pairs:
            on_version.setdefault(pair, set()).add(vehicle)
    newest_ns = max((r.ts_ns for r in reports), default=0)
    candidates = [key for key, vehicles in reported.items() if len(vehicles) >= thresholds.min_reporting]
    tables = {}
    for ecu, version, code in sorted(candidates):
        on = on_version.get((ecu, version), set())
        off = {v for (e, ver), vs in on_version.items() if e == ecu and ver != version for v in vs} - on
        if not on or not off:
            continue
        k_on = len(reported[(ecu, version, code)] & on)
        k_off = len({v for (e, ver, c), vs in reported.items() if e == ecu and c == code and ver != version
                     for v in vs} & off)  # fmt: skip
        tables[(ecu, version, code)] = (len(on), k_on, len(off), k_off)
    tests = _tarone_count(tables, thresholds.alpha)
    issues = []
    for (ecu, version, code), (n_on, k_on, n_off, k_off) in tables.items():
        _, p = fisher_exact([[k_on, n_on - k_on], [k_off, n_off - k_off]], alternative="greater")
        rate_on, rate_off = k_on / n_on, k_off / n_off
        if p * tests > thresholds.alpha or rate_on < thresholds.min_rate_ratio * rate_off:
            continue
        cure = _cure(ecu, version, code, on_version, reported)
        issues.append(SoftwareIssue(ecu, version, code, cure, n_on, k_on, n_off, k_off, float(p), newest_ns))
    return issues


def _tarone_count(tables: Mapping[tuple[str, str, str], tuple[int, int, int, int]], alpha: float) -> int:
    """How many tests the family-wise `alpha` is divided by (Tarone 1990): the smallest m such that
    at most m of the tables could reach a p-value of alpha / m with their margins (every vehicle
    that reported the code on the version, as far as there are such vehicles), at least 1."""
    p_min = sorted(
        float(hypergeom.sf(min(k_on + k_off, n_on) - 1, n_on + n_off, k_on + k_off, n_on))
        for n_on, k_on, n_off, k_off in tables.values()
    )
    for m in range(1, len(p_min) + 1):
        if sum(p <= alpha / m for p in p_min) <= m:
            return m
    return max(len(p_min), 1)


def _cure(
    ecu: str,
    version: str,
    code: str,
    on_version: Mapping[tuple[str, str], set[str]],
    reported: Mapping[tuple[str, str, str], set[str]],
) -> str | None:
    """The newest version of the ECU, newer than `version`, that some vehicle runs and under which
    no vehicle reported the code."""
    clean = [
        ver for (e, ver), vehicles in on_version.items()
        if e == ecu and vehicles and _order(ver) > _order(version) and not reported.get((ecu, ver, code))
    ]  # fmt: skip
    return max(clean, key=_order) if clean else None


def _order(version: str) -> tuple[tuple[int, str], ...]:
    """Numeric parts compare as numbers (4.10 > 4.9); others as text."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in version.replace("-", ".").split("."))


def detect_firmware_bug(
    issues: Sequence[SoftwareIssue], inventory: Inventory, reports: Sequence[DtcReportRow]
) -> list[Finding]:
    """Per vehicle that ran a guilty version: RAISE at its first report of the code under that
    version (or, if it never reported it, when the fleet showed the issue), and CLEAR once it
    reported another version."""
    findings = []
    for issue in issues:
        first_report: dict[str, int] = {}
        for r in reports:
            if r.software.get(issue.ecu) == issue.version and issue.code in r.codes:
                first_report[r.vehicle_id] = min(r.ts_ns, first_report.get(r.vehicle_id, r.ts_ns))
        cure = (
            f"update the {issue.ecu} to {issue.cure_version}" if issue.cure_version else "no cure known yet"
        )
        explanation = (
            f"{issue.ecu} software {issue.version} raises {issue.code} across the fleet "
            f"({issue.reporting_on} of {issue.vehicles_on} vehicles on it, {issue.reporting_off} of "
            f"{issue.vehicles_off} on other versions): {cure}."
        )
        evidence = {k: v for k, v in dataclasses.asdict(issue).items() if k != "found_ns"}
        for vehicle, pairs in sorted(inventory.ran.items()):
            if (issue.ecu, issue.version) not in pairs:
                continue
            raised_ns = first_report.get(vehicle, issue.found_ns)
            findings.append(
                Finding(
                    vehicle,
                    "firmware_bug",
                    FindingState.RAISE,
                    raised_ns,
                    Severity.MAJOR,
                    None,
                    explanation,
                    evidence,
                )
            )
            version, reported_ns = inventory.current.get(vehicle, {}).get(issue.ecu, (issue.version, 0))
            if version != issue.version and reported_ns > raised_ns:
                findings.append(
                    Finding(
                        vehicle,
                        "firmware_bug",
                        FindingState.CLEAR,
                        reported_ns,
                        explanation=f"now runs {version}",
                    )
                )
    return findings
