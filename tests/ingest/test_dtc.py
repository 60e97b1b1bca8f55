"""DTC reports (`fleetpulse.dtc.v2`, and v1) through ingest: stored once per (vehicle, time, codes), the
newest report is the vehicle's current set, and bad reports are dead-lettered, on both brokers."""

from __future__ import annotations

import time

import psycopg
import pytest

from contract import topics
from contract.dtc import dtc_message
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from tests.conftest import BrokerUnderTest
from tests.ingest.test_dead_letters import raw_publisher

pytestmark = pytest.mark.postgres


def _envelope(vehicle: str, ts_us: int, codes: list[str], topic_vehicle: str | None = None) -> Envelope:
    topic = topics.topic_for(topic_vehicle or vehicle, topics.DTC)
    payload = dtc_message(vehicle, ts_us, codes, agent_version="0.1.0", software={"ECM": "4.2.0"})
    return Envelope(topic, payload, time.time_ns())


def _vid(tag: str) -> str:
    return f"{tag}-{time.time_ns() % 10**9}"


def test_reports_are_stored_once_and_the_newest_is_current(pg_url: str) -> None:
    vid = _vid("DTC")
    now_us = time.time_ns() // 1000
    raised = _envelope(vid, now_us - 2_000_000, ["P0302", "P0301"])
    cleared = _envelope(vid, now_us - 1_000_000, [])
    store = TelemetryStore(pg_url)
    try:
        first = store.write(triage([cleared, raised, raised]))  # out of order, with an in-flush repeat
        again = store.write(triage([raised]))  # a redelivery
    finally:
        store.close()
    assert (first.dtc_reports, first.dtc_duplicates, first.dead_letters) == (2, 1, 0)
    assert (again.dtc_reports, again.dtc_duplicates) == (0, 1)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT codes, agent_version, software FROM dtc_reports WHERE vehicle_id = %s ORDER BY ts", (vid,)
        ).fetchall()
        current = conn.execute(
            "SELECT codes FROM vehicle_dtc_current WHERE vehicle_id = %s", (vid,)
        ).fetchone()
        seen = conn.execute("SELECT last_seen_at FROM vehicles WHERE vehicle_id = %s", (vid,)).fetchone()
    assert rows == [(["P0301", "P0302"], "0.1.0", {"ECM": "4.2.0"}), ([], "0.1.0", {"ECM": "4.2.0"})]
    assert current == ([],)  # the later report cleared the codes
    assert seen is not None and seen[0] is not None  # a DTC-only vehicle is registered


def test_bad_reports_are_dead_lettered_with_reasons(pg_url: str) -> None:
    vid = _vid("DTCBAD")
    now_us = time.time_ns() // 1000
    future = _envelope(vid, now_us + 3_600_000_000, ["P0300"])
    mismatch = _envelope("SOMEONE-ELSE", now_us, ["P0300"], topic_vehicle=vid)
    garbage = Envelope(topics.topic_for(vid, topics.DTC), b'{"schema": "nope"}', time.time_ns())
    store = TelemetryStore(pg_url)
    try:
        result = store.write(triage([future, mismatch, garbage]))
    finally:
        store.close()
    assert result.dtc_reports == 0
    assert sorted(result.dead_reasons) == ["bad_dtc_message", "timestamp_in_future", "topic_mismatch"]
    with psycopg.connect(pg_url) as conn:
        payloads = conn.execute(
            "SELECT payload FROM dead_letters WHERE topic = %s ORDER BY id",
            (topics.topic_for(vid, topics.DTC),),
        ).fetchall()
    assert sorted(bytes(p) for (p,) in payloads) == sorted(e.payload for e in (future, mismatch, garbage))


def test_reject_policy_applies_to_reports_of_unknown_vehicles(pg_url: str) -> None:
    vid = _vid("DTCUNK")
    store = TelemetryStore(pg_url, unknown_vehicles="reject")
    try:
        result = store.write(triage([_envelope(vid, time.time_ns() // 1000, ["U0100"])]))
    finally:
        store.close()
    assert (result.dtc_reports, result.dead_reasons) == (0, ("unknown_vehicle",))


@pytest.mark.broker
def test_reports_flow_through_the_broker_into_the_database(
    broker: BrokerUnderTest, running_ingest, pg_url: str
) -> None:
    vid = _vid(f"DTCE2E-{broker.name}")
    now_us = time.time_ns() // 1000
    good = [dtc_message(vid, now_us - k * 1000, [f"P030{k}"], agent_version="4.2.0") for k in range(1, 5)]
    with running_ingest(broker.ingest) as ingest:
        client = raw_publisher(broker)
        try:
            for payload in [*good, good[0], b"not json"]:
                client.publish(topics.topic_for(vid, topics.DTC), payload, qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()
        assert ingest.wait_for(lambda t: t.dtc_reports >= 4 and t.dead_letters >= 1), ingest.service.totals
    with psycopg.connect(pg_url) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM dtc_reports WHERE vehicle_id = %s", (vid,)).fetchone()
        (current,) = conn.execute(
            "SELECT codes FROM vehicle_dtc_current WHERE vehicle_id = %s", (vid,)
        ).fetchone()
        reasons = conn.execute("SELECT reason FROM dead_letters WHERE vehicle_id = %s", (vid,)).fetchall()
    assert stored == 4
    assert current == ["P0301"]  # the newest report (k = 1)
    assert reasons == [("bad_dtc_message",)]
