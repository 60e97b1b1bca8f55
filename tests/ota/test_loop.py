"""The server's OTA loop through a real broker and a real PostgreSQL: a campaign is stepped, its
offers are recorded before they go out and reach the vehicles on their command topics; signed
reports stored by ingest are verified and recorded, the wave advances, an incompatible vehicle is
never offered the update, injected failures pause the campaign at the error threshold, a rollback
puts the old version back in the inventory, a replayed report changes nothing, and the audit
register shows every update with its software before and after. A broker that is down loses no
offer."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from contract.update import Software
from ota.audit import register
from ota.loop import LoopConfig, campaign_step, report_step
from ota.rollout import draw
from tests.conftest import (
    TEST_VEHICLES,
    BrokerUnderTest,
    RunningIngest,
    fresh_ingest_id,
    migrated_fresh_database,
)
from tests.ota.loop_helpers import (
    BEFORE_SHA,
    Car,
    first_wave_share,
    insert_campaign,
    publish_target,
    rows,
    seed_vehicles,
    target_of,
    wait_until,
)
from tests.remedies.conftest import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.broker]
URL = "https://ota.example.com/"


def stored_reports(url: str) -> int:
    return int(rows(url, "SELECT count(*) FROM update_reports")[0][0])


def test_the_loop_end_to_end(broker: BrokerUnderTest, pg_server_url: str, tmp_path: Path) -> None:
    url = migrated_fresh_database(pg_server_url, "ota_loop")
    repo = publish_target(tmp_path)
    target = target_of(repo)
    new = Software("4.2.1", target.sha256)
    old = Software("4.2.0", BEFORE_SHA)
    vids = list(TEST_VEHICLES)
    first = min(vids, key=lambda v: draw(1, v))
    bad = max(vids, key=lambda v: draw(1, v))  # the wave-2 vehicle whose ECM is other hardware
    fails, rolls = sorted(v for v in vids if v not in (first, bad))
    config = LoopConfig(repo, URL, broker.ingest)
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {v: "ecm-x99" if v == bad else "ecm-b12" for v in vids})
        assert insert_campaign(conn, [first_wave_share(1, vids), 100.0], error_threshold=0.75) == 1
    cars = {v: Car(broker, v) for v in vids}
    try:
        with (
            RunningIngest(broker.ingest, url, fresh_ingest_id()) as _ingest,
            psycopg.connect(url, autocommit=True) as conn,
        ):
            for car in cars.values():
                car.register(conn)
            t0 = dt.datetime.now(dt.UTC)
            step = campaign_step(conn, config, now=t0)
            assert step["started"] == [1] and step["joined"] == 4 and step["offers"] == 1
            assert step["publish"] == {"published": 1, "republished": 0, "unpublished": 0, "errors": []}
            (offer,) = cars[first].wait_for_offers(1)
            assert (offer.ecu, offer.target, offer.version) == ("ECM", target.name, "4.2.1")
            assert offer.repository_url == URL and offer.urgency == "soft" and not offer.consent_required
            assert offer.issued_at_us == int(t0.timestamp() * 1_000_000)  # issued at the step's time
            recorded = rows(
                url, "SELECT vehicle_id, campaign_id, nonce, published_at IS NOT NULL FROM update_offers"
            )
            assert recorded == [(first, 1, offer.nonce, True)]
            time.sleep(0.3)
            assert all(not cars[v].offers for v in vids if v != first)  # the other waves wait

            # The first vehicle installs: its signed reports go through the broker and ingest.
            cars[first].report(offer, "downloading", after=old, target_sha256=None)
            cars[first].report(offer, "installed", after=new, target_sha256=target.sha256)
            cars[first].report(offer, "committed", after=new, target_sha256=target.sha256)
            assert wait_until(lambda: stored_reports(url) == 3)
            checked = report_step(conn, config)
            assert checked["verdicts"] == {"accepted": 3} and checked["recorded"] == 3
            assert checked["inventory_updated"] == 1  # downloading changed nothing, installed did
            assert rows(url, "SELECT state FROM campaign_vehicles WHERE vehicle_id = %s", first) == [
                ("committed",)
            ]
            assert rows(
                url, "SELECT software_version FROM vehicle_software WHERE vehicle_id = %s", first
            ) == [("4.2.1",)]
            assert report_step(conn, config)["verdicts"] == {}  # judged once

            # The wave gate: the soak (60 s) must pass before the next wave opens.
            assert campaign_step(conn, config, now=t0 + dt.timedelta(seconds=30))["waves_opened"] == []
            assert campaign_step(conn, config, now=t0 + dt.timedelta(seconds=90))["waves_opened"] == [(1, 1)]
            step = campaign_step(conn, config, now=t0 + dt.timedelta(seconds=91))
            assert step["offers"] == 2 and step["publish"]["published"] == 2
            ((cid, refused_vid, why),) = step["refused"]
            assert (cid, refused_vid) == (1, bad) and "ecm-x99" in why and "ecm-b12" in why
            assert rows(url, "SELECT state FROM campaign_vehicles WHERE vehicle_id = %s", bad) == [
                ("excluded",)
            ]
            assert cars[bad].wait_for_offers(1, timeout_s=0.5) == []  # never offered to other hardware
            (offer_f,) = cars[fails].wait_for_offers(1)
            (offer_r,) = cars[rolls].wait_for_offers(1)

            # Injected failures: one is below the threshold (2 of 2), the second reaches it.
            cars[fails].report(offer_f, "downloading", after=old, target_sha256=None)
            cars[fails].report(offer_f, "failed", after=old, target_sha256=None, reason="hash_mismatch")
            assert wait_until(lambda: stored_reports(url) == 5)
            assert report_step(conn, config)["recorded"] == 2
            step = campaign_step(conn, config, now=t0 + dt.timedelta(seconds=100))
            assert step["paused"] == [] and rows(url, "SELECT status FROM campaigns") == [("running",)]
            cars[rolls].report(offer_r, "installed", after=new, target_sha256=target.sha256)
            cars[rolls].report(offer_r, "rolled_back", after=old, target_sha256=target.sha256)
            assert wait_until(lambda: stored_reports(url) == 7)
            assert report_step(conn, config)["recorded"] == 2
            step = campaign_step(conn, config, now=t0 + dt.timedelta(seconds=110))
            ((paused_id, reason),) = step["paused"]
            assert paused_id == 1 and "error threshold" in reason
            assert rows(url, "SELECT status FROM campaigns") == [("paused",)]
            # After the rollback the vehicle's report is the truth: the old version runs again.
            assert rows(
                url, "SELECT software_version FROM vehicle_software WHERE vehicle_id = %s", rolls
            ) == [("4.2.0",)]
            history = rows(
                url,
                "SELECT software_version FROM software_history WHERE vehicle_id = %s ORDER BY reported_at",
                rolls,
            )
            assert [v for (v,) in history] == ["4.2.1", "4.2.0"]

            # A replay: an old seq signed anew, and the exact bytes of an old report again.
            audit_rows = rows(url, "SELECT count(*) FROM ota_audit")
            exact = cars[first].report(offer, "committed", after=new, target_sha256=target.sha256, seq=3)
            cars[first].publish(exact)  # the same bytes: ingest stores them once
            cars[first].report(offer, "rolled_back", after=old, target_sha256=target.sha256, seq=2)
            assert wait_until(lambda: stored_reports(url) == 9)
            time.sleep(0.3)
            assert stored_reports(url) == 9
            replayed = report_step(conn, config)
            assert replayed["verdicts"] == {"replay": 2} and replayed["recorded"] == 0
            assert rows(url, "SELECT state FROM campaign_vehicles WHERE vehicle_id = %s", first) == [
                ("committed",)
            ]
            assert rows(
                url, "SELECT software_version FROM vehicle_software WHERE vehicle_id = %s", first
            ) == [("4.2.1",)]
            assert rows(url, "SELECT count(*) FROM ota_audit") == audit_rows

            # The audit register: every vehicle and update, before and after, the check, the result.
            entries = {e["vehicle_id"]: e for e in register(conn)}
            assert set(entries) == set(vids)
            done = entries[first]
            assert done["before"] == {"version": "4.2.0", "sha256": BEFORE_SHA}
            assert done["after"] == {"version": "4.2.1", "sha256": target.sha256}
            assert done["target"] == {"name": target.name, "version": "4.2.1", "sha256": target.sha256}
            assert done["result"] == "committed" and done["result_at"] is not None
            assert done["compatibility"]["compatible"] is True
            assert done["compatibility"]["vehicle_hardware_id"] == "ecm-b12"
            assert [r["state"] for r in done["reports"]] == ["downloading", "installed", "committed"]
            assert done["published_at"] is not None and done["offer_id"] == offer.offer_id
            refused = entries[bad]
            assert refused["result"] == "not_offered" and refused["offer_id"] is None
            assert refused["compatibility"]["compatible"] is False
            assert refused["compatibility"]["target_hardware_ids"] == ["ecm-b12"]
            assert (entries[fails]["result"], entries[fails]["result_reason"]) == ("failed", "hash_mismatch")
            assert entries[rolls]["result"] == "rolled_back"
            assert entries[rolls]["after"] == {"version": "4.2.0", "sha256": BEFORE_SHA}
            assert [e["vehicle_id"] for e in register(conn, vehicle_id=rolls)] == [rolls]
            # Append-only.
            for sql in ("UPDATE ota_audit SET state = 'x'", "DELETE FROM ota_audit", "TRUNCATE ota_audit"):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    conn.execute(sql)
            assert rows(url, "SELECT count(*) FROM ota_audit") == audit_rows
    finally:
        for car in cars.values():
            car.close()


def test_a_broker_that_is_down_loses_no_offer(
    broker: BrokerUnderTest, pg_server_url: str, tmp_path: Path
) -> None:
    url = migrated_fresh_database(pg_server_url, "ota_loop_down")
    repo = publish_target(tmp_path)
    vids = list(TEST_VEHICLES[:2])
    down = LoopConfig(repo, URL, replace(broker.ingest, port=free_port()), publish_timeout_s=2)
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {v: "ecm-b12" for v in vids})
        insert_campaign(conn, [100.0])
        for _ in range(2):
            step = campaign_step(conn, down)
            assert step["publish"]["published"] == 0 and step["publish"]["unpublished"] == 2
            assert step["publish"]["errors"] and "broker" in step["publish"]["errors"][0]
        assert step["offers"] == 0  # offered once, at the first step: recorded, waiting to go out
        recorded = rows(
            url, "SELECT offer_id, published_at, publish_attempts FROM update_offers ORDER BY vehicle_id"
        )
        assert [(p, n) for _, p, n in recorded] == [(None, 2), (None, 2)]
        assert rows(url, "SELECT DISTINCT state FROM campaign_vehicles") == [("offered",)]
        cars = [Car(broker, v) for v in vids]
        try:
            step = campaign_step(conn, replace(down, endpoint=broker.ingest))
            assert step["publish"] == {"published": 2, "republished": 0, "unpublished": 0, "errors": []}
            got = sorted(o.offer_id for car in cars for o in car.wait_for_offers(1))
            assert got == sorted(offer_id for offer_id, _, _ in recorded)  # the offers recorded before
            assert campaign_step(conn, replace(down, endpoint=broker.ingest))["publish"]["published"] == 0
        finally:
            for car in cars:
                car.close()
        no_broker = campaign_step(conn, replace(down, endpoint=None))
        assert no_broker["publish"]["published"] == 0 and no_broker["offers"] == 0


def test_an_offer_sent_while_the_vehicle_was_offline_is_sent_again_when_it_is_online(
    broker: BrokerUnderTest, pg_server_url: str, tmp_path: Path
) -> None:
    """The agent's session is clean: what was published while it was offline is gone. Once its
    status says online again (through ingest), the offer goes out again, until a report answers it."""
    url = migrated_fresh_database(pg_server_url, "ota_loop_offline")
    repo = publish_target(tmp_path)
    vid = TEST_VEHICLES[1]
    config = LoopConfig(repo, URL, broker.ingest)
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {vid: "ecm-b12"})
        insert_campaign(conn, [100.0])
        step = campaign_step(conn, config)  # the vehicle is offline: the broker takes it, nobody gets it
        assert step["offers"] == 1 and step["publish"]["published"] == 1
        assert campaign_step(conn, config)["publish"]["republished"] == 0  # no sign of the vehicle yet
        (offer_id,) = rows(url, "SELECT offer_id FROM update_offers")[0]
        with RunningIngest(broker.ingest, url, fresh_ingest_id()):
            car = Car(broker, vid)
            try:
                car.publish_status(b"online")
                online = (
                    "SELECT state FROM vehicle_status WHERE vehicle_id = %s"  # (retained replays add others)
                )
                assert wait_until(lambda: rows(url, online, vid) == [("online",)])
                step = campaign_step(conn, config)
                assert step["publish"]["republished"] == 1 and step["publish"]["published"] == 0
                (offer,) = car.wait_for_offers(1)
                assert offer.offer_id == offer_id  # the same offer, the same nonce
                assert campaign_step(conn, config)["publish"]["republished"] == 0  # once per coming online
            finally:
                car.close()
