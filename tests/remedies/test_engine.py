"""The remedy engine's decisions, pure: visits with urgency and deadline from the severity, patches
from the firmware test's evidence, waiting without a cure, escalation only tightens."""

from __future__ import annotations

import datetime as dt

from remedies.catalogue import VehicleFacts, load_catalogue
from remedies.engine import AlarmChange, decide, tightened

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
CATALOGUE = load_catalogue()


def change(fault: str, severity: str, **evidence) -> AlarmChange:  # noqa: ANN003
    raised = NOW - dt.timedelta(hours=1)
    return AlarmChange(1, "V1", fault, "raised", severity, raised, raised, evidence)


def test_a_critical_fault_gets_a_visit_within_24_hours_with_its_skill_and_parts() -> None:
    d = decide(change("thermostat_stuck", "CRITICAL"), VehicleFacts(powertrain="ice"), CATALOGUE, NOW)
    assert (d.kind, d.status, d.rule) == ("shop_visit", "proposed", "thermostat-replace")
    assert d.details["skill"] == "engine" and d.details["urgency"] == "critical"
    assert dt.datetime.fromisoformat(d.details["deadline"]) == NOW + dt.timedelta(hours=23)
    assert "thermostat" in d.details["parts"] and "Urgency critical" in d.reason
    minor = decide(change("tyre_slow_leak", "MAJOR"), VehicleFacts(), CATALOGUE, NOW)
    assert minor.details["urgency"] == "high"


def test_a_firmware_bug_is_patched_to_the_cure_the_fleet_test_found_or_waits() -> None:
    evidence = {"ecu": "ECM", "version": "4.2.0", "code": "P0606", "cure_version": "4.2.1"}
    d = decide(
        change("firmware_bug", "MAJOR", **evidence), VehicleFacts(software={"ECM": "4.2.0"}), CATALOGUE, NOW
    )
    assert (d.kind, d.status) == ("ota_patch", "proposed")
    assert (d.details["ecu"], d.details["from_version"], d.details["to_version"]) == ("ECM", "4.2.0", "4.2.1")
    waiting = decide(change("firmware_bug", "MAJOR", **{**evidence, "cure_version": None}), VehicleFacts(),
                     CATALOGUE, NOW)  # fmt: skip
    assert (waiting.kind, waiting.status) == (
        "ota_patch",
        "waiting",
    ) and "waits for a release" in waiting.reason


def test_no_entry_means_no_remedy_with_the_reason() -> None:
    d = decide(change("alien_fault", "MAJOR"), VehicleFacts(), CATALOGUE, NOW)
    assert (d.kind, d.status) == ("none", "none") and "alien_fault" in d.reason


def test_escalation_only_tightens() -> None:
    d = decide(change("tyre_slow_leak", "MAJOR"), VehicleFacts(), CATALOGUE, NOW)
    raised = NOW - dt.timedelta(hours=1)
    worse = tightened(d.details, "CRITICAL", raised, NOW)
    assert worse["urgency"] == "critical" and worse["deadline"] < d.details["deadline"]
    assert tightened(worse, "MINOR", raised, NOW) == worse
