"""The report step in chunks (`ota.report_step`, decisions in `ota.report_batch`): first the pure
decisions, then against a real PostgreSQL with the reports stored by ingest's own store. Mixed good,
forged, replayed and malformed reports in one chunk (a refused one never blocks the others; one
audit row per accepted report); an offer's reports applied in seq order however they were stored
and however the chunks cut them; an offer whose earlier report another step holds waits; two steps
at once never judge a report twice; a re-run changes nothing; the inventory only moves forward."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.timestamps import datetime_of_ns
from contract.update import Software, UpdateOffer, parse_update_report
from edge_agent.ota.report import ReportSigner, build_report, report_topic
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from ota.offers import new_offer, record_offer
from ota.report_batch import Claimed, Entry, fold_inventory, fold_members, judge_chunk
from ota.report_step import check_reports
from ota.reports import OfferRecord
from ota.vehicle_keys import register_key
from tests.conftest import migrated_fresh_database

OLD = Software("4.2.0", "a" * 64)
NEW = Software("4.2.1", "b" * 64)
STATES = ("downloading", "verified", "installed", "committed")


class Vehicle:
    def __init__(self, vehicle_id: str) -> None:
        self.vehicle_id = vehicle_id
        self.key = Ed25519PrivateKey.generate()
        self.signer = ReportSigner(self.key)
        self.public = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def report(
        self,
        offer: UpdateOffer,
        seq: int,
        state: str,
        *,
        ts_us: int | None = None,
        signer: ReportSigner | None = None,
    ) -> bytes:
        after = NEW if state == "committed" else OLD
        report = build_report(
            offer, vehicle_id=self.vehicle_id, seq=seq, ts_us=ts_us or time.time_ns() // 1000, state=state,
            before=OLD, after=after, target_sha256=NEW.sha256,
        )  # fmt: skip
        return (signer or self.signer).sign(report)


def an_offer() -> UpdateOffer:
    return new_offer(
        ecu="ECM", target="ECM/4.2.1/ecm.bin", version="4.2.1", repository_url="https://ota.example.com/",
        now_us=time.time_ns() // 1000 - 1_000_000,
    )  # fmt: skip


# -- the pure decisions ---------------------------------------------------------------------------


def claimed(report_id: int, vehicle: Vehicle, offer: UpdateOffer, payload: bytes, seq: int) -> Claimed:
    return Claimed(report_id, vehicle.vehicle_id, offer.offer_id, seq, None, payload, dt.datetime.now(dt.UTC))


def test_one_chunk_judges_good_forged_replayed_and_malformed_reports_each_on_its_own() -> None:
    car, other = Vehicle("PURE-1"), Vehicle("PURE-2")
    offer = an_offer()
    record = OfferRecord(offer.offer_id, car.vehicle_id, offer.nonce, "ECM", offer.issued_at_us)
    chunk = [
        claimed(1, car, offer, car.report(offer, 1, "downloading"), 1),
        claimed(2, car, offer, car.report(offer, 2, "verified", signer=other.signer), 2),  # another's key
        claimed(8, car, offer, car.report(offer, 2, "verified").replace(b'"verified"', b'"installed"'), 2),
        claimed(3, car, offer, car.report(offer, 2, "installed"), 2),
        claimed(4, car, offer, car.report(offer, 2, "committed"), 2),  # seq 2 again: a replay
        claimed(5, car, offer, b'{"not": "a report"}', 3),
        claimed(6, car, an_offer(), car.report(an_offer(), 1, "downloading"), 1),  # an offer never made
        claimed(7, car, offer, car.report(offer, 4, "committed"), 4),
    ]
    keys = {car.vehicle_id: {car.signer.key_id: car.public}}
    outcomes = judge_chunk(chunk, {offer.offer_id: record}, keys)
    assert [o.verdict for o in outcomes] == [
        "accepted", "unknown_key", "bad_signature", "accepted", "replay", "malformed", "unknown_offer",
        "accepted",
    ]  # fmt: skip
    assert [o.report.seq for o in outcomes if o.report] == [1, 2, 4]
    assert all(o.judged_now for o in outcomes)
    # The offer's last accepted seq as locked counts: seq 1 and 2 were accepted by an earlier chunk.
    again = judge_chunk(chunk[:4], {offer.offer_id: dataclasses.replace(record, last_seq=2)}, keys)
    assert [o.verdict for o in again] == ["replay", "unknown_key", "bad_signature", "replay"]


def test_a_member_ends_in_its_newest_reports_state_and_the_inventory_only_moves_forward() -> None:
    car = Vehicle("PURE-3")
    offer = an_offer()
    t0 = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    reports = [
        (
            parse_update_report(car.report(offer, k + 1, s, ts_us=int((t0.timestamp() + k) * 1e6))),
            t0 + dt.timedelta(seconds=k),
        )
        for k, s in enumerate(STATES)
    ]
    (move,) = fold_members([(7, car.vehicle_id, r, at) for r, at in reports])
    assert (move.state, move.committed_at) == ("committed", t0 + dt.timedelta(seconds=3))
    (rolled,) = fold_members([(7, car.vehicle_id, r, at) for r, at in reports[:3]])
    assert (rolled.state, rolled.committed_at) == ("installed", None)  # None: keep the stored time

    fold = fold_inventory({(car.vehicle_id, "ECM"): Entry("4.2.0", "ecm-b12", t0)}, reports)
    assert fold.entries == {(car.vehicle_id, "ECM"): Entry("4.2.1", "ecm-b12", t0 + dt.timedelta(seconds=3))}
    assert fold.history == [(car.vehicle_id, "ECM", "4.2.1", "ecm-b12", t0 + dt.timedelta(seconds=3))]
    assert fold.changed == {3}
    later = Entry("4.2.0", "ecm-b12", t0 + dt.timedelta(hours=1))  # a check-in after the reports
    fold = fold_inventory({(car.vehicle_id, "ECM"): later}, reports)
    assert (fold.entries, fold.history, fold.changed) == ({}, [], set())


# -- against PostgreSQL ---------------------------------------------------------------------------

pg = pytest.mark.postgres


@pytest.fixture
def url(pg_server_url: str) -> str:
    return migrated_fresh_database(pg_server_url, "ota_batch")


def fleet_with_offers(url: str, n: int, prefix: str = "BATCH") -> Iterator[tuple[Vehicle, UpdateOffer]]:
    """`n` vehicles in one running campaign, each offered the update and registered with its key."""
    cars = [Vehicle(f"{prefix}-{k:04d}") for k in range(n)]
    offers = [an_offer() for _ in cars]
    with psycopg.connect(url, autocommit=True) as conn:
        (cid,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO campaigns (name, ecu, from_version, to_version, status)"
            " VALUES ('ECM fix', 'ECM', '4.2.0', '4.2.1', 'running') RETURNING campaign_id"
        ).fetchone()
        for car, offer in zip(cars, offers, strict=True):
            register_key(conn, car.vehicle_id, car.public)
            conn.execute(
                "INSERT INTO vehicle_software (vehicle_id, ecu, software_version, hardware_id, reported_at)"
                " VALUES (%s, 'ECM', '4.2.0', 'ecm-b12', now() - interval '1 hour')",
                (car.vehicle_id,),
            )
            conn.execute(
                "INSERT INTO campaign_vehicles (campaign_id, vehicle_id, wave, state)"
                " VALUES (%s, %s, 0, 'offered')",
                (cid, car.vehicle_id),
            )
            record_offer(conn, car.vehicle_id, offer, cid)
    return iter(zip(cars, offers, strict=True))


def store(url: str, *reports: tuple[Vehicle, bytes]) -> None:
    """Through ingest's own triage and store, as `fleet ingest` stores them."""
    writer = TelemetryStore(url)
    try:
        writer.write(
            triage([Envelope(report_topic(car.vehicle_id), p, time.time_ns()) for car, p in reports])
        )
    finally:
        writer.close()


def q(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


@pg
def test_a_mixed_chunk_applies_the_good_reports_and_stores_a_verdict_for_every_bad_one(url: str) -> None:
    (a, offer_a), (b, offer_b), (c, offer_c) = fleet_with_offers(url, 3)
    store(
        url,
        (a, a.report(offer_a, 1, "downloading")),
        (a, a.report(offer_a, 2, "committed")),
        (b, b.report(offer_b, 1, "downloading", signer=c.signer)),  # signed with c's key, not b's
        (b, b.report(offer_b, 2, "committed")),
        (c, c.report(offer_c, 1, "downloading")),
        (c, c.report(offer_c, 1, "committed")),  # seq 1 again, other bytes: a replay
        (c, c.report(offer_a, 3, "committed")),  # c reports on a's offer
    )
    with psycopg.connect(url, autocommit=True) as conn:
        step = check_reports(conn, limit=100, chunk=100)
        assert step.verdicts == {"accepted": 4, "unknown_key": 1, "replay": 1, "wrong_vehicle": 1}
        assert (step.recorded, step.not_in_campaign, step.inventory_updated) == (4, 0, 2)
        again = check_reports(conn)
        assert (again.verdicts, again.recorded, again.caught_up) == ({}, 0, 0)  # a re-run changes nothing
    states = dict(q(url, "SELECT vehicle_id, state FROM campaign_vehicles"))
    assert states == {a.vehicle_id: "committed", b.vehicle_id: "committed", c.vehicle_id: "downloading"}
    assert q(url, "SELECT count(*), count(DISTINCT report_id) FROM ota_audit WHERE event = 'report'") == [
        (4, 4)
    ]
    versions = dict(q(url, "SELECT vehicle_id, software_version FROM vehicle_software"))
    assert versions == {a.vehicle_id: "4.2.1", b.vehicle_id: "4.2.1", c.vehicle_id: "4.2.0"}
    assert q(url, "SELECT count(*) FROM update_reports WHERE verdict IS NULL OR verified_at IS NULL") == [
        (0,)
    ]
    assert q(
        url, "SELECT count(*) FROM update_reports WHERE verdict = 'accepted' AND applied_at IS NULL"
    ) == [(0,)]
    assert sorted(q(url, "SELECT last_seq, state FROM update_offers")) == [
        (1, "downloading"), (2, "committed"), (2, "committed"),
    ]  # fmt: skip


@pg
def test_an_offers_reports_are_applied_in_seq_order_however_stored_and_chunked(url: str) -> None:
    (car, offer), (other, offer_2) = fleet_with_offers(url, 2)
    t0_us = time.time_ns() // 1000 - 10_000_000
    payloads = {s: car.report(offer, k + 1, s, ts_us=t0_us + k * 1_000_000) for k, s in enumerate(STATES)}
    store(url, (car, payloads["committed"]), (car, payloads["installed"]))  # the last first
    store(url, (car, payloads["downloading"]), (car, payloads["verified"]))
    for k, s in enumerate(STATES):
        store(url, (other, other.report(offer_2, k + 1, s)))
    with psycopg.connect(url, autocommit=True) as conn:
        step = check_reports(conn, chunk=3)  # chunks of 3 cut through both offers
    assert step.verdicts == {"accepted": 8} and step.recorded == 8
    rows = q(
        url,
        "SELECT seq, state, at FROM ota_audit WHERE event = 'report' AND offer_id = %s ORDER BY audit_id",
        offer.offer_id,
    )
    assert [(seq, state) for seq, state, _ in rows] == list(enumerate(STATES, start=1))
    assert rows[-1][2] == datetime_of_ns((t0_us + 3_000_000) * 1000)
    assert q(
        url, "SELECT state, committed_at FROM campaign_vehicles WHERE vehicle_id = %s", car.vehicle_id
    ) == [("committed", rows[-1][2])]


@pg
def test_an_offer_whose_earlier_report_another_step_holds_waits_for_it(url: str) -> None:
    ((car, offer),) = fleet_with_offers(url, 1)
    store(url, *[(car, car.report(offer, k + 1, s)) for k, s in enumerate(STATES)])
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as conn:
        holder.execute("SELECT 1 FROM update_reports WHERE seq = 1 FOR UPDATE")  # another step's claim
        step = check_reports(conn)
        assert (step.verdicts, step.deferred) == (
            {},
            3,
        )  # seq 2-4 wait: judged first, seq 1 would be a replay
        holder.rollback()
        step = check_reports(conn)
    assert step.verdicts == {"accepted": 4} and step.deferred == 0
    assert q(url, "SELECT state FROM campaign_vehicles") == [("committed",)]


@pg
def test_two_steps_at_once_never_judge_a_report_twice(url: str) -> None:
    pairs = list(fleet_with_offers(url, 150, prefix="TWO"))
    store(url, *[(car, car.report(offer, k + 1, s)) for car, offer in pairs for k, s in enumerate(STATES)])
    results: list[object] = []
    start = threading.Barrier(2)

    def step() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            start.wait()
            done = []
            while True:
                got = check_reports(conn, chunk=40)
                done.append(got)
                if not got.verdicts and not got.deferred:
                    break
            results.append(done)

    threads = [threading.Thread(target=step) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    verdicts: Counter[str] = Counter()
    for done in results:
        for got in done:  # type: ignore[attr-defined]
            verdicts.update(got.verdicts)
    assert verdicts == {"accepted": 600}  # every report judged once, none a replay of a reordering
    assert q(url, "SELECT count(*), count(DISTINCT report_id) FROM ota_audit WHERE event = 'report'") == [
        (600, 600)
    ]
    assert q(url, "SELECT DISTINCT state FROM campaign_vehicles") == [("committed",)]
    assert q(url, "SELECT DISTINCT last_seq FROM update_offers") == [(4,)]


@pg
def test_a_later_check_in_keeps_the_inventory_and_a_rollback_puts_the_old_version_back(url: str) -> None:
    (late, offer_l), (rolls, offer_r) = fleet_with_offers(url, 2)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE vehicle_software SET software_version = '4.3.0', reported_at = now() + interval '1 hour'"
            " WHERE vehicle_id = %s",
            (late.vehicle_id,),
        )
        store(url, (late, late.report(offer_l, 1, "committed")))
        installed = build_report(
            offer_r, vehicle_id=rolls.vehicle_id, seq=1, ts_us=time.time_ns() // 1000, state="installed",
            before=OLD, after=NEW, target_sha256=NEW.sha256,
        )  # fmt: skip
        rolled = build_report(
            offer_r, vehicle_id=rolls.vehicle_id, seq=2, ts_us=time.time_ns() // 1000 + 1,
            state="rolled_back", before=OLD, after=OLD, target_sha256=NEW.sha256, reason="health_check",
        )  # fmt: skip
        store(url, (rolls, rolls.signer.sign(installed)), (rolls, rolls.signer.sign(rolled)))
        step = check_reports(conn)
    assert step.verdicts == {"accepted": 3} and step.inventory_updated == 2  # 4.2.1, then 4.2.0 again
    versions = dict(q(url, "SELECT vehicle_id, software_version FROM vehicle_software"))
    assert versions == {late.vehicle_id: "4.3.0", rolls.vehicle_id: "4.2.0"}
    history = q(
        url,
        "SELECT software_version FROM software_history WHERE vehicle_id = %s ORDER BY reported_at",
        rolls.vehicle_id,
    )
    assert [v for (v,) in history] == ["4.2.1", "4.2.0"]
    assert q(url, "SELECT state, reason FROM campaign_vehicles WHERE vehicle_id = %s", rolls.vehicle_id) == [
        ("rolled_back", "health_check")
    ]
