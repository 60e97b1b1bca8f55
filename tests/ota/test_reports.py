"""The vehicle's signed update reports: built and signed by the agent, stored by ingest, judged by
`ota.reports` (signature, nonce, age, replay) -- first the pure verdicts, then through ingest and
PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import topics
from contract.errors import DecodeError
from contract.update import Software, UpdateOffer, parse_update_report
from edge_agent.ota.report import ReportCounter, ReportKeyError, ReportSigner, build_report, report_topic
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from ota.offers import new_offer, record_offer
from ota.reports import CLOCK_SKEW_US, OfferRecord, ReportRejected, judge, verify_stored_report
from ota.vehicle_keys import new_key_pair, register_key, write_private_key
from tests.conftest import TEST_VEHICLES

T0_US = 1_780_000_000_000_000
BEFORE = Software("4.2.0", "a" * 64)
TARGET_SHA = "b" * 64


def offer_for(now_us: int = T0_US) -> UpdateOffer:
    return new_offer(
        ecu="ECM",
        target="ECM/4.2.1/ecm.bin",
        version="4.2.1",
        repository_url="https://ota.example.com",
        now_us=now_us,
    )


def signed(
    signer: ReportSigner,
    offer: UpdateOffer,
    vehicle_id: str,
    seq: int,
    state: str = "downloading",
    ts_us: int = T0_US + 1_000_000,
    **fields: object,
) -> bytes:
    report = build_report(
        offer,
        vehicle_id=vehicle_id,
        seq=seq,
        ts_us=ts_us,
        state=state,
        before=BEFORE,
        after=BEFORE,
        target_sha256=TARGET_SHA,
        **fields,
    )  # type: ignore[arg-type]
    return signer.sign(report)


def record(offer: UpdateOffer, vehicle_id: str, last_seq: int = 0) -> OfferRecord:
    return OfferRecord(offer.offer_id, vehicle_id, offer.nonce, offer.ecu, offer.issued_at_us, last_seq)


@pytest.fixture
def signer() -> ReportSigner:
    return ReportSigner(Ed25519PrivateKey.generate())


def keys_of(signer: ReportSigner) -> dict[str, bytes]:
    from cryptography.hazmat.primitives import serialization

    public = signer._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {signer.key_id: public}


def test_a_signed_report_round_trips_and_is_accepted(signer: ReportSigner) -> None:
    offer = offer_for()
    report = parse_update_report(signed(signer, offer, "VEH-1", 1))
    assert (report.offer_id, report.nonce, report.seq, report.state) == (
        offer.offer_id,
        offer.nonce,
        1,
        "downloading",
    )
    assert report.before == BEFORE and report.target == Software("4.2.1", TARGET_SHA)
    assert judge(report, record(offer, "VEH-1"), keys_of(signer)) == "accepted"


def test_each_refusal_has_its_verdict(signer: ReportSigner) -> None:
    offer, keys = offer_for(), keys_of(signer)
    report = parse_update_report(signed(signer, offer, "VEH-1", 2))
    assert judge(report, None, keys) == "unknown_offer"
    assert judge(report, record(offer, "VEH-2"), keys) == "wrong_vehicle"
    assert (
        judge(report, record(offer, "VEH-1"), keys_of(ReportSigner(Ed25519PrivateKey.generate())))
        == "unknown_key"
    )
    forged = replace(report, signed_bytes=report.signed_bytes.replace(b'"downloading"', b'"committed"'))
    assert judge(forged, record(offer, "VEH-1"), keys) == "bad_signature"
    other = offer_for()  # a report of another offer: its nonce is not this offer's
    assert judge(report, replace(record(other, "VEH-1"), offer_id=offer.offer_id), keys) == "nonce_mismatch"
    stale = parse_update_report(signed(signer, offer, "VEH-1", 3, ts_us=T0_US - CLOCK_SKEW_US - 1))
    assert judge(stale, record(offer, "VEH-1"), keys) == "stale"
    assert judge(report, record(offer, "VEH-1", last_seq=2), keys) == "replay"
    assert judge(report, record(offer, "VEH-1", last_seq=1), keys) == "accepted"


def test_bad_reports_are_decode_errors(signer: ReportSigner) -> None:
    offer = offer_for()
    good = signed(signer, offer, "VEH-1", 1)
    for bad in (
        good.replace(b'"downloading"', b'"exploded"'),
        good.replace(b'"seq":1', b'"seq":0'),
        signed(signer, offer, "VEH-1", 1, state="failed"),  # a failure without a reason
        good.replace(b'"signature":"', b'"signature":"!'),
        b"[]",
    ):
        with pytest.raises(DecodeError) as caught:
            parse_update_report(bad)
        assert caught.value.reason == "bad_update_report"


def test_the_report_key_must_be_private(tmp_path: Path) -> None:
    pem, _ = new_key_pair()
    path = tmp_path / "report.pem"
    write_private_key(path, pem)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ReportSigner.from_file(path).key_id
    with pytest.raises(FileExistsError):
        write_private_key(path, pem)
    path.chmod(0o644)
    with pytest.raises(ReportKeyError, match="open to group or others"):
        ReportSigner.from_file(path)


def test_the_seq_only_grows_across_restarts(tmp_path: Path) -> None:
    counter = ReportCounter(tmp_path / "seq.json")
    assert [counter.next_seq("o-1"), counter.next_seq("o-1"), counter.next_seq("o-2")] == [1, 2, 1]
    assert ReportCounter(tmp_path / "seq.json").next_seq("o-1") == 3


# -- through ingest and PostgreSQL --------------------------------------------------------------------


def _envelope(vid: str, payload: bytes) -> Envelope:
    return Envelope(report_topic(vid), payload, time.time_ns())


@pytest.mark.postgres
def test_reports_through_ingest_are_verified_once_and_a_replay_is_refused(
    pg_url: str, tmp_path: Path
) -> None:
    vid = f"OTA-{time.time_ns() % 10**9}"
    pem, public = new_key_pair()
    write_private_key(tmp_path / "vehicle.pem", pem)
    vehicle = ReportSigner.from_file(tmp_path / "vehicle.pem")
    offer = offer_for(now_us=time.time_ns() // 1000)
    now_us = offer.issued_at_us + 1_000_000
    with psycopg.connect(pg_url) as conn:
        assert register_key(conn, vid, public) == vehicle.key_id
        record_offer(conn, vid, offer)
    first = signed(vehicle, offer, vid, 1, ts_us=now_us)
    second = signed(vehicle, offer, vid, 2, state="verified", ts_us=now_us + 1)
    store = TelemetryStore(pg_url)
    try:
        result = store.write(triage([_envelope(vid, first), _envelope(vid, second), _envelope(vid, first)]))
        assert result.update_reports == 2 and result.dead_letters == 0  # the redelivery adds no row
        replayed = signed(vehicle, offer, vid, 1, ts_us=now_us + 2)  # seq 1 again, sent anew
        forged = signed(
            ReportSigner(Ed25519PrivateKey.generate()), offer, vid, 3, state="committed", ts_us=now_us
        )
        assert store.write(triage([_envelope(vid, replayed), _envelope(vid, forged)])).update_reports == 2
        bad = store.write(triage([_envelope(vid, first.replace(b'"seq":1', b'"seq":"1"'))]))
        assert bad.dead_reasons == ("bad_update_report",)
        other = store.write(triage([Envelope(report_topic("SOMEONE-ELSE"), first, time.time_ns())]))
        assert other.dead_reasons == ("topic_mismatch",)
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT report_id FROM update_reports WHERE vehicle_id = %s ORDER BY report_id", (vid,)
            ).fetchall()
        ]
        assert len(ids) == 4
        assert verify_stored_report(conn, ids[0]).state == "downloading"
        assert verify_stored_report(conn, ids[1]).state == "verified"
        assert verify_stored_report(conn, ids[0]).seq == 1  # judged once: the verdict stands
        for report_id, verdict in ((ids[2], "replay"), (ids[3], "unknown_key")):
            with pytest.raises(ReportRejected) as caught:
                verify_stored_report(conn, report_id)
            assert caught.value.verdict == verdict
        assert conn.execute(
            "SELECT last_seq, state FROM update_offers WHERE offer_id = %s", (offer.offer_id,)
        ).fetchone() == (2, "verified")
        verdicts = conn.execute(
            "SELECT verdict FROM update_reports WHERE vehicle_id = %s ORDER BY report_id", (vid,)
        ).fetchall()
        assert [v for (v,) in verdicts] == ["accepted", "accepted", "replay", "unknown_key"]
        dead = conn.execute(
            "SELECT reason FROM dead_letters WHERE topic = %s", (topics.topic_for(vid, topics.UPDATE),)
        ).fetchall()
        assert dead == [("bad_update_report",)]


@pytest.mark.postgres
@pytest.mark.broker
def test_a_vehicle_publishes_its_report_through_the_broker(broker, running_ingest, pg_url: str) -> None:  # noqa: ANN001
    """The vehicle's own login may publish on its `update` topic (the ACL follows from the kind);
    ingest stores the report and it verifies."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    vid = TEST_VEHICLES[3]  # a vehicle login both brokers know
    vehicle = ReportSigner(Ed25519PrivateKey.generate())
    offer = offer_for(now_us=time.time_ns() // 1000)
    with psycopg.connect(pg_url) as conn:
        register_key(conn, vid, keys_of(vehicle)[vehicle.key_id])
        record_offer(conn, vid, offer)
    payload = signed(
        vehicle, offer, vid, 1, state="failed", ts_us=offer.issued_at_us + 5, reason="wrong_hardware_id"
    )

    def stored() -> int | None:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT report_id FROM update_reports WHERE offer_id = %s", (offer.offer_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    with running_ingest(broker.ingest) as ingest:
        ep = broker.vehicle(vid)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=vid, protocol=mqtt.MQTTv311)
        client.username_pw_set(ep.username, ep.password)
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            client.publish(report_topic(vid), payload, qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()
        assert ingest.wait_for(lambda t: stored() is not None), ingest.service.totals
    with psycopg.connect(pg_url) as conn:
        report = verify_stored_report(conn, stored() or 0)
    assert (report.state, report.reason, report.after) == ("failed", "wrong_hardware_id", BEFORE)
