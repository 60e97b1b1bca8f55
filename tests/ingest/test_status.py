"""Vehicle status through ingest: the newest message per vehicle wins, a bare online/offline keeps
the last check-in's details, and a check-in naming another vehicle is dead-lettered."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from contract import topics
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from tests.conftest import BrokerUnderTest
from tests.ingest.test_dead_letters import raw_publisher

pytestmark = pytest.mark.postgres


def _status(vid: str, payload: bytes, received_ns: int) -> Envelope:
    return Envelope(topics.topic_for(vid, topics.STATUS), payload, received_ns)


def _row(pg_url: str, vid: str) -> tuple | None:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            "SELECT state, details->>'campaign_id', reported_at FROM vehicle_status WHERE vehicle_id = %s",
            (vid,),
        ).fetchone()


def test_newest_status_wins_and_bare_states_keep_the_check_in(pg_url: str) -> None:
    vid = f"STATUS-{time.time_ns() % 10**9}"
    now, ms = time.time_ns(), 1_000_000  # statuses are ordered by receive time, stored in µs
    check_in = json.dumps({"state": "online", "vehicle_id": vid, "campaign_id": "brakes"}).encode()
    store = TelemetryStore(pg_url)
    try:
        store.write(triage([_status(vid, b"online", now - 3 * ms), _status(vid, check_in, now - 2 * ms)]))
        assert _row(pg_url, vid)[:2] == ("online", "brakes")  # type: ignore[index]
        store.write(triage([_status(vid, b"offline", now)]))
        assert _row(pg_url, vid)[:2] == ("offline", "brakes")  # type: ignore[index]
        store.write(triage([_status(vid, b"online", now - ms)]))  # older than what is stored
        assert _row(pg_url, vid)[:2] == ("offline", "brakes")  # type: ignore[index]
        foreign = json.dumps({"state": "online", "vehicle_id": "SOMEONE-ELSE"}).encode()
        result = store.write(triage([_status(vid, foreign, now + ms)]))
    finally:
        store.close()
    assert result.dead_reasons == ("topic_mismatch",)
    assert _row(pg_url, vid)[0] == "offline"  # type: ignore[index]


@pytest.mark.broker
def test_status_flows_through_the_broker(broker: BrokerUnderTest, running_ingest, pg_url: str) -> None:
    vid = f"STATUSE2E-{broker.name}-{time.time_ns() % 10**9}"
    check_in = json.dumps({"state": "online", "vehicle_id": vid, "campaign_id": "c1"}).encode()
    with running_ingest(broker.ingest) as ingest:
        client = raw_publisher(broker)
        try:
            client.publish(topics.topic_for(vid, topics.STATUS), check_in, qos=1).wait_for_publish(10)
            client.publish(topics.topic_for(vid, topics.STATUS), b"offline", qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()
        assert ingest.wait_for(lambda t: (_row(pg_url, vid) or ("",))[0] == "offline"), ingest.service.totals
    assert _row(pg_url, vid)[:2] == ("offline", "c1")  # type: ignore[index]


def test_a_bare_state_after_a_check_in_in_the_same_flush_keeps_the_details(pg_url: str) -> None:
    vid = f"STATUS1-{time.time_ns() % 10**9}"
    now = time.time_ns()
    check_in = json.dumps({"state": "online", "vehicle_id": vid, "campaign_id": "tyres"}).encode()
    store = TelemetryStore(pg_url)
    try:
        store.write(triage([_status(vid, check_in, now - 10**6), _status(vid, b"offline", now)]))
    finally:
        store.close()
    assert _row(pg_url, vid)[:2] == ("offline", "tyres")  # type: ignore[index]


def test_a_retained_replay_only_fills_a_missing_row(pg_url: str) -> None:
    """When ingest (re)subscribes, the broker replays every vehicle's retained status: that is not
    news, so it must not move `reported_at` to the restart, nor override a newer stored state."""
    known, new = (f"REPLAY{k}-{time.time_ns() % 10**9}" for k in "AB")
    now = time.time_ns()
    store = TelemetryStore(pg_url)
    try:
        store.write(triage([_status(known, b"offline", now - 60 * 10**9)]))
        before = _row(pg_url, known)
        replay = [
            Envelope(topics.topic_for(vid, topics.STATUS), b"online", now, retained=True)
            for vid in (known, new)
        ]
        store.write(triage(replay))
    finally:
        store.close()
    assert _row(pg_url, known) == before  # unchanged: state and time
    assert _row(pg_url, new)[0] == "online"  # type: ignore[index]  # first sight of this vehicle
