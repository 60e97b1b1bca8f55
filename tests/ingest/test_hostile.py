"""The hostile-message suite: one test per class the hardening review found, each mixed into a flush
with valid telemetry, DTC and status messages of other vehicles. Every valid message must be stored
and every hostile one dead-lettered with its own reason, in PostgreSQL.

The store-level tests run the service's own preparation (`ingest.preparation`) and write path; the
broker tests send the same bytes with a bare MQTT client (what `mosquitto_pub` can do) to a running
ingest on both brokers.
"""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from contract import topics, wire_v1
from ingest import TelemetryStore
from ingest.pipeline import Envelope, flush_memory_bytes
from ingest.preparation import prepare_isolated
from tests.conftest import BrokerUnderTest
from tests.hostile_messages import HOSTILE, Message, ValidSet, now_us, telemetry_batch, valid_set
from tests.ingest.test_dead_letters import raw_publisher

pytestmark = pytest.mark.postgres


def _run(tag: str) -> str:
    return f"H{time.time_ns() % 10**12}-{tag}"[:40]


def _write(store: TelemetryStore, messages: list[Message]) -> None:
    received = time.time_ns()
    envelopes = [Envelope(m.topic, m.payload, received, m.retained) for m in messages]
    prepared, consumed = prepare_isolated(envelopes, store.prepare)
    assert consumed == len(envelopes) == prepared.n_envelopes
    store.write_prepared(prepared)


def stored(pg_url: str, valid: ValidSet) -> tuple[dict, dict, dict]:
    """What PostgreSQL holds for the valid set's vehicles: rows, DTC codes, status state."""
    ids = valid.vehicles
    with psycopg.connect(pg_url) as conn:
        rows = dict(
            conn.execute(
                "SELECT vehicle_id, count(*) FROM telemetry WHERE vehicle_id = ANY(%s) GROUP BY 1", (ids,)
            ).fetchall()
        )
        dtcs = {
            v: tuple(codes)
            for v, codes in conn.execute(
                "SELECT vehicle_id, codes FROM dtc_reports WHERE vehicle_id = ANY(%s)", (ids,)
            )
        }
        statuses = dict(
            conn.execute("SELECT vehicle_id, state FROM vehicle_status WHERE vehicle_id = ANY(%s)", (ids,))
        )
    return rows, dtcs, statuses


def dead_letters(pg_url: str, vehicle: str) -> list[tuple[str, bytes]]:
    with psycopg.connect(pg_url) as conn:
        return [
            (reason, bytes(payload))
            for reason, payload in conn.execute(
                "SELECT reason, payload FROM dead_letters WHERE vehicle_id = %s ORDER BY id", (vehicle,)
            )
        ]


def _state(pg_url: str, vehicle: str) -> str | None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT state FROM vehicle_status WHERE vehicle_id = %s", (vehicle,)).fetchone()
    return row[0] if row else None


def assert_all_valid_stored(pg_url: str, valid: ValidSet) -> None:
    assert stored(pg_url, valid) == (valid.rows, valid.dtcs, valid.statuses)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_message_is_dead_lettered_and_every_valid_one_stored(pg_url: str, name: str) -> None:
    run = _run(name[:12])
    valid = valid_set(run)
    hostile = HOSTILE[name](f"{run}-X")
    store = TelemetryStore(pg_url)
    try:
        _write(store, [*valid.messages[:4], hostile.message, *valid.messages[4:]])
    finally:
        store.close()
    assert_all_valid_stored(pg_url, valid)
    assert dead_letters(pg_url, f"{run}-X") == [(hostile.reason, hostile.message.payload)]


def test_under_reject_an_unregistered_vehicle_s_status_is_dead_lettered(pg_url: str) -> None:
    run = _run("reject")
    valid = valid_set(run)
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO vehicles (vehicle_id) SELECT unnest(%s::text[])", (valid.vehicles,))
    stranger = Message(topics.topic_for(f"{run}-X", topics.STATUS), b"online")
    store = TelemetryStore(pg_url, unknown_vehicles="reject")
    try:
        _write(store, [*valid.messages, stranger])
    finally:
        store.close()
    assert_all_valid_stored(pg_url, valid)
    assert dead_letters(pg_url, f"{run}-X") == [("unknown_vehicle", b"online")]
    with psycopg.connect(pg_url) as conn:
        count = conn.execute("SELECT count(*) FROM vehicle_status WHERE vehicle_id = %s", (f"{run}-X",))
        assert count.fetchone() == (0,)


def test_under_register_a_status_registers_its_vehicle(pg_url: str) -> None:
    run = _run("register")
    store = TelemetryStore(pg_url)
    try:
        _write(store, [Message(topics.topic_for(f"{run}-S", topics.STATUS), b"online")])
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:
        query = "SELECT last_seen_at FROM vehicles WHERE vehicle_id = %s"
        row = conn.execute(query, (f"{run}-S",)).fetchone()
    assert row == (None,)  # registered; a status has no vehicle clock, so no "last seen" time


def test_a_retained_malformed_status_is_dead_lettered_once_across_restarts(pg_url: str) -> None:
    """The broker replays a retained message at every subscribe: the first live copy and every
    replay after an ingest restart are the same bytes, stored once."""
    run = _run("retained")
    bad = b'{"state": "online", "x": NaN}'
    topic = topics.topic_for(f"{run}-X", topics.STATUS)
    store = TelemetryStore(pg_url)
    try:
        _write(store, [Message(topic, bad)])  # the live delivery (retain flag 0 to live subscribers)
        for _ in range(3):  # three restarts, three replays
            _write(store, [Message(topic, bad, retained=True)])
        other = b'{"state": "online", "x": Infinity}'
        _write(store, [Message(topic, other, retained=True)])  # a different retained payload is news
    finally:
        store.close()
    assert dead_letters(pg_url, f"{run}-X") == [("bad_status_message", bad), ("bad_status_message", other)]


def test_one_status_the_database_refuses_costs_no_other(pg_url: str) -> None:
    """Isolation at the store too: with a status the database refuses (a trigger stands in for
    whatever jsonb might refuse next), the other statuses and DTC reports of the flush are stored."""
    run = _run("refused")
    valid = valid_set(run)
    victim = f"{run}-X"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION test_refuse_status() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF NEW.vehicle_id LIKE '%%-X' AND NEW.vehicle_id LIKE 'H%%refused%%'"
            " THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE OR REPLACE TRIGGER test_refuse_status BEFORE INSERT OR UPDATE ON vehicle_status"
            " FOR EACH ROW EXECUTE FUNCTION test_refuse_status()"
        )
    refused = Message(topics.topic_for(victim, topics.STATUS), json.dumps({"state": "online"}).encode())
    store = TelemetryStore(pg_url)
    try:
        _write(store, [*valid.messages, refused])
    finally:
        store.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER test_refuse_status ON vehicle_status")
    assert_all_valid_stored(pg_url, valid)
    assert dead_letters(pg_url, victim) == [("storage_rejected", refused.payload)]


@pytest.mark.broker
def test_every_hostile_class_through_the_broker(broker: BrokerUnderTest, running_ingest, pg_url: str) -> None:
    """All classes at once, published with a bare MQTT client between valid messages of other
    vehicles, to ingest on each broker: the same outcome as the store-level tests."""
    run = _run(broker.name)
    valid = valid_set(run)
    hostile = {name: make(f"{run}-X{i}") for i, (name, make) in enumerate(sorted(HOSTILE.items()))}
    messages = [*valid.messages[:3], *(h.message for h in hostile.values()), *valid.messages[3:]]
    with running_ingest(broker.ingest) as ingest:
        client = raw_publisher(broker)
        try:
            for m in messages:
                client.publish(m.topic, m.payload, qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()
        assert ingest.wait_for(
            lambda t: t.acked >= len(messages) and stored(pg_url, valid)[2] == valid.statuses
        ), ingest.service.totals
    assert_all_valid_stored(pg_url, valid)
    for i, (name, h) in enumerate(sorted(hostile.items())):
        assert dead_letters(pg_url, f"{run}-X{i}") == [(h.reason, h.message.payload)], name


@pytest.mark.broker
def test_a_flush_stops_at_its_decoded_size_and_the_rest_follows_in_order(
    broker: BrokerUnderTest, running_ingest, pg_url: str
) -> None:
    """With a cap of about two frames, 20 frames take at least 10 flushes; every row is stored once."""
    run = _run(f"cap-{broker.name}")
    start = now_us() - 1800 * 10**6  # 20 frames a minute apart, all in the past
    batches = [telemetry_batch(f"{run}-{i % 4}", 1 + i // 4, 500, start + i * 60_000_000) for i in range(20)]
    cap = flush_memory_bytes(1000, 1)
    with running_ingest(broker.ingest, max_flush_memory_bytes=cap) as ingest:
        client = raw_publisher(broker)
        try:
            for b in batches:
                topic = topics.topic_for(b.vehicle_id, topics.TELEMETRY)
                client.publish(topic, wire_v1.encode(b), qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()
        assert ingest.wait_for(lambda t: t.batches >= len(batches)), ingest.service.totals
        assert ingest.service.totals.flushes >= len(batches) // 2
        assert ingest.service.totals.dead_letters == 0
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT (vehicle_id, ts)) FROM telemetry WHERE vehicle_id LIKE %s",
            (f"{run}-%",),
        ).fetchone()
    assert rows == (500 * len(batches), 500 * len(batches))


@pytest.mark.broker
def test_a_retained_malformed_status_is_dead_lettered_once_through_restarts(
    broker: BrokerUnderTest, running_ingest, pg_url: str
) -> None:
    run = _run(f"ret-{broker.name}")
    topic = topics.topic_for(f"{run}-X", topics.STATUS)
    bad = b'{"state": "online", "x": NaN}'
    client = raw_publisher(broker)
    try:
        client.publish(topic, bad, qos=1, retain=True).wait_for_publish(10)
        for i in range(3):  # each start subscribes anew, and the broker replays the retained copy
            with running_ingest(broker.ingest) as ingest:
                # a marker sent after the subscribe is stored after the replay: then the replay is done
                marker = topics.topic_for(f"{run}-M{i}", topics.STATUS)
                client.publish(marker, b"online", qos=1).wait_for_publish(10)
                assert ingest.wait_for(lambda t, i=i: _state(pg_url, f"{run}-M{i}") == "online")
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)  # clears the retained copy
    finally:
        client.disconnect()
        client.loop_stop()
    assert dead_letters(pg_url, f"{run}-X") == [("bad_status_message", bad)]
