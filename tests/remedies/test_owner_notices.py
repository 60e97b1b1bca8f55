"""The remedy engine tells the owner: a booked visit and a patch in an approved campaign each queue
one notification (none for a patch still waiting for approval, none twice however often the engine
runs), with the facts the message needs; once the vehicle reports the update's result, one more
notice says what it did; and the OTA audit register shows the notices sent before and after. Real
PostgreSQL; the report goes through ingest's store."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from analytics.alarm_store import store_findings
from analytics.findings import Finding, FindingState, Severity
from contract import topics
from contract.update import Software, parse_update_offer
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from ota.audit import register
from ota.controller import act
from ota.loop import LoopConfig, campaign_step, report_step
from ota.rollout import Event
from ota.vehicle_keys import register_key
from remedies import bookings
from remedies.catalogue import load_catalogue
from remedies.notifications import Channel, MemoryTransport, deliver
from remedies.run import run_remedies
from tests.ota.loop_helpers import publish_target, signed_report, target_of
from tests.remedies.conftest import seed_owner

pytestmark = pytest.mark.postgres
CATALOGUE = load_catalogue()
HOURS = '{"mon": [["00:00", "23:59"]], "tue": [["00:00", "23:59"]], "wed": [["00:00", "23:59"]],' + (
    ' "thu": [["00:00", "23:59"]], "fri": [["00:00", "23:59"]], "sat": [["00:00", "23:59"]],'
    ' "sun": [["00:00", "23:59"]]}'
)


def alarm(conn: psycopg.Connection, vid: str, fault: str, at: dt.datetime, **evidence: object) -> None:
    ns = int(at.timestamp() * 1e9)
    store_findings(conn, [Finding(vid, fault, FindingState.RAISE, ns, Severity.MAJOR, ns, "test", evidence)])
    conn.commit()


def test_a_moved_visit_is_told_again_and_the_old_notice_is_withdrawn(notify_db: str) -> None:
    """A booked visit is told once per booking: rescheduled, the owner hears the new time, and the
    notice of the old booking, not sent yet, is suppressed as withdrawn."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-9", ("V9",), time_zone="Europe/Berlin")
        conn.execute(
            "INSERT INTO service_centres (service_centre_id, name, lat, lon, skills, capacity_per_day,"
            " opening_hours, time_zone) VALUES ('SC-9', 'Werkstatt Nord', 48.1, 11.5, '{electrical}', 8, %s,"
            " 'UTC')",
            (HOURS,),
        )
        conn.commit()
        alarm(conn, "V9", "battery_12v_failing", now - dt.timedelta(minutes=5))
        assert run_remedies(conn, CATALOGUE, now=now).notifications_queued == 1
        conn.commit()
        ((old_id, old_booking, old_facts),) = conn.execute(
            "SELECT notification_id, booking_id, facts->'remedy' FROM notifications WHERE vehicle_id = 'V9'"
        ).fetchall()
        assert old_booking is not None
        new_booking = bookings.reschedule(conn, old_booking, "service_centre:desk")
        assert new_booking is not None
        conn.commit()
        assert run_remedies(conn, CATALOGUE, now=now).notifications_queued == 1
        conn.commit()
        assert run_remedies(conn, CATALOGUE, now=now).notifications_queued == 0
        ((new_id, new_facts),) = conn.execute(
            "SELECT notification_id, facts->'remedy' FROM notifications WHERE booking_id = %s", (new_booking,)
        ).fetchall()
        assert new_facts["starts_at"] > old_facts["starts_at"]
        email = MemoryTransport(Channel.EMAIL)
        old = deliver(conn, old_id, {Channel.EMAIL: email}, now=now)
        new = deliver(conn, new_id, {Channel.EMAIL: email}, now=now)
        conn.commit()
    by_channel = {c.channel: (c.state, c.reason) for c in old.channels}
    assert by_channel[Channel.EMAIL] == ("suppressed", "withdrawn")
    assert {c.channel: c.state for c in new.channels}[Channel.EMAIL] == "sent" and len(email.sent) == 1
    assert email.sent[0].notification_id == new_id


def test_scheduled_remedies_notify_the_owner_once(notify_db: str, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("V0", "V1"))
        conn.execute(
            "INSERT INTO vehicle_software (vehicle_id, ecu, software_version, hardware_id, reported_at)"
            " VALUES ('V0', 'ECM', '4.2.0', 'ecm-b12', %s)",
            (now - dt.timedelta(days=1),),
        )
        conn.execute(
            "INSERT INTO service_centres (service_centre_id, name, lat, lon, skills, capacity_per_day,"
            " opening_hours, time_zone) VALUES ('SC-1', 'Werkstatt Mitte', 48.1, 11.5, '{electrical}', 8, %s,"
            " 'UTC')",
            (HOURS,),
        )
        conn.commit()
        alarm(conn, "V0", "firmware_bug", now, ecu="ECM", version="4.2.0", code="P0606", cure_version="4.2.1")
        alarm(conn, "V1", "battery_12v_failing", now)
        first = run_remedies(conn, CATALOGUE, now=now)
        conn.commit()
        assert first.visits_booked == 1 and first.patches_proposed == 1
        assert first.notifications_queued == 1  # the visit; the patch waits for a person's approval
        facts = conn.execute("SELECT vehicle_id, facts->'remedy' FROM notifications").fetchall()
        ((vid, visit),) = facts
        assert vid == "V1" and visit["kind"] == "shop_visit" and visit["centre_name"] == "Werkstatt Mitte"
        assert visit["duration_min"] == 45 and dt.datetime.fromisoformat(visit["starts_at"]) > now
        assert run_remedies(conn, CATALOGUE, now=now).notifications_queued == 0
        act(conn, 1, Event.APPROVE, "alice")
        conn.commit()
        again = run_remedies(conn, CATALOGUE, now=now)
        conn.commit()
        assert again.patches_scheduled == 1 and again.notifications_queued == 1
        (patch,) = conn.execute(
            "SELECT facts->'remedy' FROM notifications WHERE vehicle_id = 'V0'"
        ).fetchone()  # type: ignore[misc]
        assert patch == {
            "kind": "ota_patch",
            "ecu": "ECM",
            "software_version": "4.2.1",
            "duration_min": 20,
            "needs_consent": True,  # the engine's campaigns ask for consent by default
        }
        assert run_remedies(conn, CATALOGUE, now=now).notifications_queued == 0
        assert conn.execute("SELECT count(*) FROM notifications").fetchone() == (2,)
        (nid,) = conn.execute("SELECT notification_id FROM notifications WHERE vehicle_id = 'V0'").fetchone()  # type: ignore[misc]
        email = MemoryTransport(Channel.EMAIL)
        assert deliver(conn, nid, {Channel.EMAIL: email}, now=now + dt.timedelta(minutes=1)).as_dict()
        conn.commit()
        assert len(email.sent) == 1

        # The update runs: the offer is recorded (no broker: not published), the report verified.
        key = Ed25519PrivateKey.generate()
        register_key(
            conn,
            "V0",
            key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        )
        conn.commit()
    repo = publish_target(tmp_path)
    with psycopg.connect(notify_db, autocommit=True) as conn:
        # Empty waves open one after the other (one per step) until V0's wave is open.
        steps = [campaign_step(conn, LoopConfig(repo, "https://ota.example.com/", None)) for _ in range(4)]
        assert sum(s["offers"] for s in steps) == 1 and steps[-1]["publish"]["unpublished"] == 1
        (offer_json,) = conn.execute("SELECT offer FROM update_offers").fetchone()  # type: ignore[misc]
    offer = parse_update_offer(json.dumps(offer_json).encode())
    assert offer.consent_required is True
    sha = target_of(repo).sha256
    payload = signed_report(key, "V0", offer, 1, "committed", after=Software("4.2.1", sha), target_sha256=sha)
    store = TelemetryStore(notify_db)
    try:
        assert (
            store.write(
                triage([Envelope(topics.topic_for("V0", topics.UPDATE), payload, time.time_ns())])
            ).update_reports
            == 1
        )
    finally:
        store.close()
    with psycopg.connect(notify_db, autocommit=True) as conn:
        assert report_step(conn, LoopConfig(repo, "https://ota.example.com/", None))["recorded"] == 1
        (entry,) = register(conn, vehicle_id="V0")
    assert entry["result"] == "committed" and entry["remedy_id"] is not None
    assert [(n["notification_id"], n["channel"]) for n in entry["notices_before"]] == [(nid, "email")]
    assert entry["notices_after"] == []

    # The engine's next run tells the owner what the update did, once; the register shows it after.
    with psycopg.connect(notify_db) as conn:
        assert run_remedies(conn, CATALOGUE, now=now).notifications_queued == 1
        conn.commit()
        assert run_remedies(conn, CATALOGUE, now=now).notifications_queued == 0
        (after_id, stage, result) = conn.execute(
            "SELECT notification_id, stage, facts->'remedy' FROM notifications WHERE vehicle_id = 'V0'"
            " AND stage <> 'remedy'"
        ).fetchone()  # type: ignore[misc]
        assert stage == "update_installed" and result["installed"] is True
        assert (result["ecu"], result["software_version"]) == ("ECM", "4.2.1")
        assert deliver(conn, after_id, {Channel.EMAIL: email}, now=dt.datetime.now(dt.UTC)).as_dict()
        conn.commit()
        assert email.sent[-1].message.subject == "Your car: the software update is installed"
        (entry,) = register(conn, vehicle_id="V0")
    assert [n["notification_id"] for n in entry["notices_after"]] == [after_id]
    assert [n["notification_id"] for n in entry["notices_before"]] == [nid]
