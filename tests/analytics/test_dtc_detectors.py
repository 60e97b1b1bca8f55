"""Alarms from reported codes: misfire with its cylinders, any other code with its J2012 class, a
clear when a report no longer holds it; and the fleet test that blames a software version."""

from __future__ import annotations

from analytics.detectors.dtcs import DtcReportRow, code_class, detect_dtc_alarms
from analytics.detectors.software import Inventory, detect_firmware_bug, find_software_issues
from analytics.findings import FindingState, Severity

S = 1_000_000_000


def test_codes_raise_and_clear_with_misfire_by_cylinder() -> None:
    reports = [
        DtcReportRow("V1", 30 * S, ()),
        DtcReportRow("V1", 10 * S, ("P0302", "P0420")),
        DtcReportRow("V1", 20 * S, ("P0302", "P0304", "P0420")),
    ]
    found = [(f.fault, f.state, f.at_ns // S, f.severity) for f in detect_dtc_alarms(reports)]
    assert found == [
        ("dtc:P0420", FindingState.RAISE, 10, Severity.MINOR),
        ("misfire", FindingState.RAISE, 10, Severity.MAJOR),
        ("misfire", FindingState.RAISE, 20, Severity.MAJOR),  # another cylinder: new evidence
        ("dtc:P0420", FindingState.CLEAR, 30, Severity.WARNING),
        ("misfire", FindingState.CLEAR, 30, Severity.WARNING),
    ]
    misfire = [f for f in detect_dtc_alarms(reports) if f.fault == "misfire"][1]
    assert misfire.evidence["cylinders"] == [2, 4] and "cylinder 2, 4" in misfire.explanation


def test_j2012_classes() -> None:
    assert code_class("P0301") == "powertrain, generic"
    assert code_class("P1234") == "powertrain, manufacturer"
    assert code_class("C1A00") == "chassis, manufacturer"
    assert code_class("U0100") == "network, generic"


def _fleet(
    n_bad: int, n_good: int, n_patched: int, reporting_bad: int
) -> tuple[list[DtcReportRow], Inventory]:
    reports, ran, current = [], {}, {}
    for i in range(n_bad):
        vid = f"B{i}"
        ran[vid] = frozenset({("ECM", "4.2.0")})
        current[vid] = {"ECM": ("4.2.0", 0)}
        if i < reporting_bad:
            reports.append(DtcReportRow(vid, (100 + i) * S, ("P0606",), {"ECM": "4.2.0"}))
    for i in range(n_good):
        ran[f"G{i}"] = frozenset({("ECM", "4.1.2")})
        current[f"G{i}"] = {"ECM": ("4.1.2", 0)}
    for i in range(n_patched):
        vid = f"P{i}"
        ran[vid] = frozenset({("ECM", "4.2.0"), ("ECM", "4.2.1")})
        current[vid] = {"ECM": ("4.2.1", 500 * S)}
        reports.append(DtcReportRow(vid, 50 * S, ("P0606",), {"ECM": "4.2.0"}))
    return reports, Inventory(ran, current)


def test_a_version_that_raises_a_code_is_named_with_its_cure() -> None:
    reports, inventory = _fleet(n_bad=4, n_good=90, n_patched=3, reporting_bad=3)
    (issue,) = find_software_issues(reports, inventory)
    assert (issue.ecu, issue.version, issue.code, issue.cure_version) == ("ECM", "4.2.0", "P0606", "4.2.1")
    assert issue.vehicles_on == 7 and issue.reporting_on == 6 and issue.p_value < 1e-6
    findings = detect_firmware_bug([issue], inventory, reports)
    raised = {f.vehicle_id: f.at_ns // S for f in findings if f.state is FindingState.RAISE}
    cleared = {f.vehicle_id for f in findings if f.state is FindingState.CLEAR}
    assert set(raised) == {"B0", "B1", "B2", "B3", "P0", "P1", "P2"}  # B3 never reported it: at risk
    assert raised["B0"] == 100 and raised["B3"] == 102  # its own report, or when the fleet showed it
    assert cleared == {"P0", "P1", "P2"}


def test_no_issue_from_one_vehicle_or_from_a_code_every_version_raises() -> None:
    reports, inventory = _fleet(n_bad=3, n_good=50, n_patched=0, reporting_bad=1)
    assert find_software_issues(reports, inventory) == []
    everywhere = reports + [DtcReportRow(f"G{i}", 5 * S, ("P0606",), {"ECM": "4.1.2"}) for i in range(30)]
    reports, inventory = _fleet(n_bad=3, n_good=50, n_patched=0, reporting_bad=3)
    everywhere = reports + [DtcReportRow(f"G{i}", 5 * S, ("P0606",), {"ECM": "4.1.2"}) for i in range(30)]
    assert find_software_issues(everywhere, inventory) == []


def test_codes_the_common_version_reports_now_and_then_do_not_dilute_a_small_guilty_version() -> None:
    # Two of three cars on 4.2.0 report P0606 (p = 1/C(52, 2) = 7.5e-4 against 50 clean cars) while
    # the common version's cars report a handful of other codes, two cars each: those combinations
    # could never be significant (every car reporting them is on the common version), so they do
    # not count in the correction (Tarone); counted, they made the family's threshold 1e-3 / 7.
    reports, inventory = _fleet(n_bad=2, n_good=50, n_patched=0, reporting_bad=2)
    for k, code in enumerate(("P0217", "P0562", "C1A00", "P0301", "P0420", "P0128")):
        reports += [DtcReportRow(f"G{2 * k + j}", 7 * S, (code,), {"ECM": "4.1.2"}) for j in range(2)]
    (issue,) = find_software_issues(reports, inventory)
    assert (issue.version, issue.code, issue.reporting_on, issue.vehicles_off) == ("4.2.0", "P0606", 2, 50)
    assert 5e-4 < issue.p_value < 1e-3
