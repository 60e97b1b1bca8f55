"""Offers wait, never fail, when they cannot be made yet: a target not published, no repository
configured, campaign terms that are not a valid offer; the vehicles stay pending and are offered
once the cause is gone. Real PostgreSQL and a real TUF repository; no broker (nothing is sent)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contract import topics
from contract.update import Software, UpdateOffer, parse_update_offer
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from ota.loop import LoopConfig, campaign_step, report_step
from ota.reports import verify_pending
from ota.vehicle_keys import register_key
from tests.conftest import migrated_fresh_database
from tests.ota.loop_helpers import (
    insert_campaign,
    publish_target,
    rows,
    seed_vehicles,
    signed_report,
    target_of,
)

pytestmark = pytest.mark.postgres
URL = "https://ota.example.com/"


def test_offers_wait_until_they_can_be_made(pg_server_url: str, tmp_path: Path) -> None:
    url = migrated_fresh_database(pg_server_url, "ota_offer_wait")
    repo = publish_target(tmp_path)  # ECM 4.2.1 only
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {"W-1": "ecm-b12", "W-2": "ecm-b12"})
        insert_campaign(conn, [100.0], to_version="4.2.2")
        step = campaign_step(conn, LoopConfig(repo, URL, None))
        assert step["offers"] == 0 and step["deferred"] == {
            "ECM 4.2.2 is not published in the TUF repository": 2
        }
        step = campaign_step(conn, LoopConfig(None, None, None))
        assert step["deferred"] == {
            "no OTA repository configured (FLEET_OTA_REPO_DIR and FLEET_OTA_REPOSITORY_URL)": 2
        }
        assert step["problems"] and step["paused"] == [] and step["finished"] == []
        assert rows(url, "SELECT DISTINCT state FROM campaign_vehicles") == [("pending",)]
        assert rows(url, "SELECT count(*) FROM update_offers") == [(0,)]
        conn.execute(
            "UPDATE campaigns SET to_version = '4.2.1', urgency = 'forced_after', forced_after = NULL"
        )
        step = campaign_step(conn, LoopConfig(repo, URL, None))
        ((why, n),) = step["deferred"].items()
        assert n == 2 and why.startswith("the campaign's offer is not valid: forced_after_us is required")
        assert rows(url, "SELECT count(*) FROM update_offers") == [(0,)]
        assert rows(url, "SELECT count(*) FROM ota_audit") == [(0,)]  # a deferred offer leaves no trace
        conn.execute("UPDATE campaigns SET forced_after = now() + interval '7 days'")
        step = campaign_step(conn, LoopConfig(repo, URL, None))
        assert step["offers"] == 2 and step["deferred"] == {}
        offers = rows(
            url, "SELECT offer->>'urgency', (offer->>'forced_after_us')::bigint > 0 FROM update_offers"
        )
        assert offers == [("forced_after", True)] * 2


def offered_vehicle(url: str, repo: Path, vid: str) -> tuple[Ed25519PrivateKey, UpdateOffer]:
    """One vehicle with a report key in a one-wave campaign (error threshold 50%), offered the update."""
    key = Ed25519PrivateKey.generate()
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {vid: "ecm-b12"})
        register_key(conn, vid, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        insert_campaign(conn, [100.0])
        assert campaign_step(conn, LoopConfig(repo, URL, None))["offers"] == 1
        (document,) = conn.execute("SELECT offer FROM update_offers").fetchone()  # type: ignore[misc]
    return key, parse_update_offer(json.dumps(document).encode())


def store_reports(url: str, vid: str, payloads: list[bytes]) -> None:
    """Through ingest's triage and store, as the broker would deliver them."""
    store = TelemetryStore(url)
    try:
        envelopes = [Envelope(topics.topic_for(vid, topics.UPDATE), p, time.time_ns()) for p in payloads]
        assert store.write(triage(envelopes)).update_reports == len(payloads)
    finally:
        store.close()


def test_reports_accepted_elsewhere_are_applied_by_the_next_step(pg_server_url: str, tmp_path: Path) -> None:
    """`fleet ota verify-reports` (verify_pending) judges but does not apply: the report step then
    applies what it accepted, once, in seq order."""
    url = migrated_fresh_database(pg_server_url, "ota_catch_up")
    repo = publish_target(tmp_path)
    key, offer = offered_vehicle(url, repo, "C-1")
    new = Software("4.2.1", target_of(repo).sha256)
    store_reports(url, "C-1", [
        signed_report(key, "C-1", offer, 1, "installed", after=new, target_sha256=new.sha256),
        signed_report(key, "C-1", offer, 2, "committed", after=new, target_sha256=new.sha256),
    ])  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        assert verify_pending(conn) == {"accepted": 2}
        assert rows(url, "SELECT state FROM campaign_vehicles") == [("offered",)]  # judged, not applied
        step = report_step(conn, LoopConfig(repo, URL, None))
        assert step["caught_up"] == 2 and step["recorded"] == 2 and step["verdicts"] == {}
        assert rows(url, "SELECT state FROM campaign_vehicles") == [("committed",)]
        assert rows(url, "SELECT software_version FROM vehicle_software") == [("4.2.1",)]
        assert report_step(conn, LoopConfig(repo, URL, None))["caught_up"] == 0
    assert rows(url, "SELECT seq FROM ota_audit WHERE event = 'report' ORDER BY audit_id") == [(1,), (2,)]


def test_the_health_gate_sees_an_alarm_after_the_reported_commit(pg_server_url: str, tmp_path: Path) -> None:
    """The soak starts at the commit the vehicle reported; a new alarm within it is a failure, and
    the campaign pauses at its error threshold."""
    url = migrated_fresh_database(pg_server_url, "ota_health_gate")
    repo = publish_target(tmp_path)
    key, offer = offered_vehicle(url, repo, "H-1")
    new = Software("4.2.1", target_of(repo).sha256)
    committed_us = time.time_ns() // 1000
    report = signed_report(
        key, "H-1", offer, 1, "committed", after=new, target_sha256=new.sha256, ts_us=committed_us
    )
    store_reports(url, "H-1", [report])
    with psycopg.connect(url, autocommit=True) as conn:
        assert report_step(conn, LoopConfig(repo, URL, None))["recorded"] == 1
        committed = rows(url, "SELECT committed_at FROM campaign_vehicles")[0][0]
        assert abs(committed.timestamp() * 1e6 - committed_us) < 1000
        conn.execute(
            "INSERT INTO alarms (vehicle_id, fault, severity, raised_at, updated_at, explanation)"
            " VALUES ('H-1', 'dtc:P0606', 'MAJOR', %s, %s, 'ECM processor fault')",
            (committed + dt.timedelta(seconds=20), committed + dt.timedelta(seconds=20)),
        )
        step = campaign_step(conn, LoopConfig(repo, URL, None), now=committed + dt.timedelta(seconds=30))
        ((campaign_id, reason),) = step["paused"]
        assert campaign_id == 1 and "1 of 1 in wave 1 failed" in reason
