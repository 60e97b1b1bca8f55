"""The owner's message: what is wrong, what will happen, how long, what to do, in plain words."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from analytics.detectors import battery, brakes, charging, coolant, tyres
from remedies.notifications.facts import NoticeFacts
from remedies.notifications.messages import TEXTS, render

OTA = {"kind": "ota_patch", "ecu": "ECM", "software_version": "4.2.2", "duration_min": 45}
VISIT = {
    "kind": "shop_visit",
    "centre_name": "Werkstatt Mitte",
    "centre_address": "Hauptstr. 1",
    "starts_at": "2025-03-10T08:30:00Z",
    "duration_min": 90,
}


def facts(**fields: object) -> NoticeFacts:
    return NoticeFacts.model_validate({"fault": "battery_12v_failing", "remedy": OTA, **fields})


def test_an_ota_patch_in_plain_words() -> None:
    m = render(facts(vehicle_label="your Golf"), notification_id=7)
    assert m.what_is_wrong == "The 12 V battery of your Golf is weak: the car may soon fail to start."
    assert m.what_will_happen == (
        "We will update the ECM software of your Golf to version 4.2.2 over the air. "
        "The update fixes this problem."
    )
    assert m.how_long == (
        "The installation takes about 45 minutes. It starts only while the car is parked, and the car "
        "cannot be driven during it."
    )
    assert m.what_to_do == "Nothing: the update installs by itself the next time the car is parked."
    assert m.subject == "Your Golf: a software update fixes a fault" and not m.critical
    assert m.text.startswith("What is wrong\nThe 12 V battery") and "Reference: notification 7" in m.text
    consent = render(facts(remedy={**OTA, "needs_consent": True}), notification_id=7)
    assert consent.what_to_do == "Accept the update on the car's screen the next time you park."


def test_the_notice_after_an_update_says_what_it_did() -> None:
    installed = {"kind": "update_result", "ecu": "ECM", "installed": True, "software_version": "4.2.2",
                 "at": "2025-03-10T08:30:00Z"}  # fmt: skip
    m = render(facts(remedy=installed, severity="CRITICAL"), notification_id=3, time_zone="Europe/Berlin")
    assert m.what_will_happen == (
        "The ECM software of your car was updated to version 4.2.2 on Monday 10 March at 09:30 (CET). "
        "The update fixes this problem."
    )
    assert m.what_to_do == "Nothing." and m.subject == "Your car: the software update is installed"
    assert facts(remedy=installed).stage == "update_installed"
    undone = {**installed, "installed": False, "software_version": "4.2.0"}
    r = render(facts(remedy=undone, severity="CRITICAL"), notification_id=3)
    assert "so the car went back to version 4.2.0, which it ran before" in r.what_will_happen
    assert r.subject == "Safety: Your car: the software update was undone"  # not fixed: the advice stays
    assert r.what_to_do.endswith("Avoid short trips and do not leave the car unused for days until then.")
    assert facts(remedy=undone).stage == "update_rolled_back" and facts().stage == "remedy"
    with pytest.raises(ValidationError):
        facts(remedy={**installed, "at": "2025-03-10T08:30:00"})  # a time without its zone


def test_a_visit_is_written_in_the_owners_time_zone() -> None:
    m = render(facts(fault="brake_pad_wear", remedy=VISIT), notification_id=1, time_zone="Europe/Berlin")
    when = "Monday 10 March at 09:30 (CET)"
    assert (
        m.what_will_happen
        == f"We have booked a repair for your car at Werkstatt Mitte (Hauptstr. 1) on {when}."
    )
    assert m.how_long == "The repair takes about 1 hour and 30 minutes."
    assert m.what_to_do.startswith(f"Bring the car to Werkstatt Mitte on {when}.")
    assert m.subject == f"Your car: repair booked for {when}"
    tokyo = render(facts(remedy=VISIT), notification_id=1, time_zone="Asia/Tokyo")
    assert "Monday 10 March at 17:30 (JST)" in tokyo.what_will_happen
    with pytest.raises(ValueError):
        render(facts(remedy=VISIT), notification_id=1, time_zone="Nowhere/Atlantis")


def test_critical_says_what_to_do_until_then() -> None:
    m = render(facts(fault="tyre_slow_leak", severity="CRITICAL", remedy=VISIT), notification_id=1)
    assert m.critical and m.subject.startswith("Safety: ")
    assert m.what_to_do.endswith("Check the tyre pressures before you drive, and drive gently.")


def test_every_fault_kind_has_its_own_words() -> None:
    specific = {k for k in TEXTS["en"]["faults"] if k != "*"}
    for module in (battery, brakes, charging, coolant, tyres):
        assert module.FAULT in specific
    assert "P0217" in render(facts(fault="dtc:P0217"), notification_id=1).what_is_wrong
    stuck = render(facts(fault="sensor_stuck:Vehicle.Speed"), notification_id=1)
    assert "(Vehicle.Speed) shows a fixed value" in stuck.what_is_wrong
    other = render(facts(fault="new_detector"), notification_id=1)
    assert other.what_is_wrong == "Your car has reported a fault (new_detector)."


def test_durations_and_languages() -> None:
    assert render(facts(remedy={**OTA, "duration_min": 60}), notification_id=1).how_long.startswith(
        "The installation takes about 1 hour."
    )
    long_visit = {**VISIT, "duration_min": 2 * 1440 + 60}
    assert "about 2 days and 1 hour" in render(facts(remedy=long_visit), notification_id=1).how_long
    german = render(facts(), notification_id=1, language="de-AT")  # no German texts yet: English
    assert german.language == "en" and german.what_is_wrong.startswith("The 12 V battery")


def test_bad_facts_are_refused() -> None:
    for bad in (
        {"remedy": {**OTA, "duration_min": 0}},
        {"remedy": {**VISIT, "starts_at": "2025-03-10T08:30:00"}},  # no time zone
        {"remedy": {"kind": "teleport"}},
        {"severity": "DOOM"},
        {"fault": ""},
        {"surprise": 1},
    ):
        with pytest.raises(ValidationError):
            facts(**bad)
    assert facts(remedy=VISIT).expires_at == dt.datetime(2025, 3, 10, 8, 30, tzinfo=dt.UTC)
    assert facts().expires_at is None
