"""The embedded amqtt broker: authentication, and no loss of acknowledged QoS 1 messages."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import BrokerUnderTest

pytestmark = pytest.mark.broker


def _client(broker: BrokerUnderTest, username: str, password: str, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(username, password)
    return client


def test_burst_then_disconnect_loses_nothing(amqtt_broker: BrokerUnderTest) -> None:
    """Regression: stock amqtt dropped acknowledged messages still queued when the publisher left."""
    n = 300
    received: list[str] = []
    subscribed = threading.Event()
    sub = _client(
        amqtt_broker,
        amqtt_broker.ingest.username,
        amqtt_broker.ingest.password,
        f"burst-sub-{time.time_ns()}",
    )
    sub.on_message = lambda c, u, msg: received.append(msg.topic)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, *a: c.subscribe("fleet/v1/+/telemetry", qos=1)
    sub.connect(amqtt_broker.host, amqtt_broker.port)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        pub = _client(
            amqtt_broker, amqtt_broker.simulator.username, amqtt_broker.simulator.password, "burst-pub"
        )
        pub.connect(amqtt_broker.host, amqtt_broker.port)
        pub.loop_start()
        infos = [pub.publish(f"fleet/v1/BURST-{i}/telemetry", b"x" * 400, qos=1) for i in range(n)]
        for info in infos:
            info.wait_for_publish(20)
        pub.disconnect()  # right after the last PUBACK
        pub.loop_stop()
        deadline = time.monotonic() + 20
        while len(received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert len(received) == n


def test_unknown_user_is_refused(amqtt_broker: BrokerUnderTest) -> None:
    refused = threading.Event()
    client = _client(amqtt_broker, "nobody", "guess", "nobody")
    client.on_connect = lambda c, u, f, rc, p: refused.set() if rc.is_failure else None
    client.connect(amqtt_broker.host, amqtt_broker.port)
    client.loop_start()
    try:
        assert refused.wait(10)
    finally:
        client.loop_stop()
