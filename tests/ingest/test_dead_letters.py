"""Every kind of malformed payload is dead-lettered with its reason while ingest keeps running."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics, wire_v1
from localservers.embedded import SIMULATOR_USER
from tests.conftest import BrokerUnderTest
from tests.e2e.test_pipeline import known_batch
from tests.malformed_payloads import MALFORMED

pytestmark = [pytest.mark.broker, pytest.mark.postgres]


def raw_publisher(broker: BrokerUnderTest) -> mqtt.Client:
    """A bare paho client on the simulator gateway account, to put arbitrary bytes on the wire."""
    ep = broker.login(f"{SIMULATOR_USER}-raw")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ep.username, protocol=mqtt.MQTTv311)
    client.username_pw_set(ep.username, ep.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def test_malformed_payloads_are_dead_lettered_and_ingest_keeps_running(
    broker: BrokerUnderTest, running_ingest, pg_url: str
) -> None:
    run = f"DL-{broker.name}-{time.time_ns()}"
    topic = topics.topic_for(run, topics.TELEMETRY)
    cases = {name: (payload, reason.value) for name, (payload, reason) in MALFORMED.items()}
    mismatched = wire_v1.encode(known_batch("SOMEONE-ELSE", 1, n_rows=2))
    cases["topic_mismatch"] = (mismatched, "topic_mismatch")
    good = known_batch(run, 7, n_rows=4)

    with running_ingest(broker.ingest) as ingest:
        client = raw_publisher(broker)
        try:
            for payload, _ in cases.values():
                client.publish(topic, payload, qos=1).wait_for_publish(10)
            client.publish(topic, wire_v1.encode(good), qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()
        assert ingest.wait_for(lambda t: t.dead_letters >= len(cases) and t.batches >= 1), (
            ingest.service.totals
        )

    with psycopg.connect(pg_url) as conn:
        stored = conn.execute(
            "SELECT reason, topic, vehicle_id, detail, payload FROM dead_letters "
            "WHERE topic = %s ORDER BY id",
            (topic,),
        ).fetchall()
        rows = conn.execute("SELECT count(*) FROM telemetry WHERE vehicle_id = %s", (run,)).fetchone()
    assert [r[0] for r in stored] == [reason for _, reason in cases.values()]
    for (reason, stored_topic, vehicle_id, detail, payload), (sent, _) in zip(
        stored, cases.values(), strict=True
    ):
        assert stored_topic == topic and vehicle_id == run and detail, reason
        assert bytes(payload) == sent, f"{reason}: raw bytes must be kept whole"
    assert rows == (good.n_rows,)
