"""Diagnostic trouble codes on the `dtc` topic: the JSON message and a small QoS 1 publisher.

Owns: the DTC message shape (the telemetry wire format carries only catalogue signals, and the
catalogue has no DTC signal) and sending it over the simulator's gateway account. One message:

    {"schema": "fleetpulse.dtc.v1", "vehicle_id": "SIM-0000-00042", "ts_us": 1764250000000000,
     "codes": ["P0301"], "firmware_version": "4.2.0"}

`ts_us` is microseconds since the Unix epoch on the vehicle's own (possibly skewed) clock, like the
telemetry timestamps; `codes` are SAE J2012 codes that became (or are still) active.
"""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics
from contract.endpoint import MqttEndpoint

DTC_SCHEMA = "fleetpulse.dtc.v1"


def dtc_message(vehicle_id: str, ts_us: int, codes: list[str], firmware_version: str) -> bytes:
    return json.dumps(
        {
            "schema": DTC_SCHEMA,
            "vehicle_id": vehicle_id,
            "ts_us": int(ts_us),
            "codes": codes,
            "firmware_version": firmware_version,
        },
        separators=(",", ":"),
    ).encode()


class DtcPublisher:
    """QoS 1 publisher of DTC messages for many vehicles over one gateway connection.

    (The edge agent's MqttPublisher publishes telemetry batches only; once it can publish other
    uplink kinds this class can go.)"""

    def __init__(self, endpoint: MqttEndpoint, client_id: str) -> None:
        self._endpoint = endpoint
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self.sent = 0
        self.acked = 0
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            client.tls_set()
        client.max_queued_messages_set(0)
        client.on_connect = lambda c, u, f, rc, p: None if rc.is_failure else self._connected.set()
        client.on_publish = self._on_publish
        self._client = client

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        with self._lock:
            self.acked += 1

    def connect(self, timeout_s: float = 10.0) -> None:
        """Raises ConnectionError when the broker cannot be reached or refuses us in time."""
        try:
            self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(f"cannot reach broker: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self.close()
            raise ConnectionError("broker did not accept the DTC connection")

    def publish(self, vehicle_id: str, payload: bytes) -> None:
        self._client.publish(topics.topic_for(vehicle_id, topics.DTC), payload, qos=1)
        with self._lock:
            self.sent += 1

    def wait_acked(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self.acked >= self.sent:
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
