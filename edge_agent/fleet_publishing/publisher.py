"""MQTT publishing of telemetry batches with paho-mqtt (MQTT 3.1.1, QoS 1).

Owns: the broker connection, encoding each batch with wire format v1, and counting what the broker
acknowledged (PUBACK), which is the agent's definition of "published". One publisher can speak for
one vehicle (with its own credentials and a last-will status) or, for the simulator, multiplex
many vehicles over a gateway account.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics, wire_v1
from contract.accounts import login_endpoint
from contract.batch import TelemetryBatch
from contract.endpoint import MqttEndpoint


class PublishError(RuntimeError):
    """The broker refused the connection or a publish could not be queued."""


@dataclass
class PublishStats:
    batches_sent: int = 0
    batches_acked: int = 0
    samples_sent: int = 0
    samples_acked: int = 0
    bytes_sent: int = 0
    messages_sent: int = 0  # other uplink messages (dtc, status), not telemetry batches
    messages_acked: int = 0


class MqttPublisher:
    """Publishes batches (and other uplink messages) at QoS 1. Thread-safe; paho runs its network
    loop in its own thread. `client_id` is the login (`contract.accounts`): a vehicle's id, or a
    login of the service account of `endpoint` (e.g. `fleet-simulator-dtc`); ClientIdError
    (a ValueError) otherwise."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        *,
        status_vehicle_id: str | None = None,
        max_inflight: int = 200,
        compress: bool = True,
    ) -> None:
        endpoint = login_endpoint(endpoint, client_id)
        self._endpoint = endpoint
        self._compress = compress
        self._status_vehicle_id = status_vehicle_id
        self._lock = threading.Condition()
        self._pending: dict[int, int | None] = {}  # mid -> samples of a batch, None for a message
        self._early_acks: set[int] = set()
        self._connected = threading.Event()
        self._refused: str | None = None
        self.stats = PublishStats()
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        if status_vehicle_id:
            client.will_set(
                topics.topic_for(status_vehicle_id, topics.STATUS), b"offline", qos=1, retain=True
            )
        client.max_inflight_messages_set(max_inflight)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client

    # paho callbacks: only record facts, never block.
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            self._refused = str(reason_code)
            return
        self._connected.set()
        if self._status_vehicle_id:
            client.publish(
                topics.topic_for(self._status_vehicle_id, topics.STATUS), b"online", qos=1, retain=True
            )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        with self._lock:
            if mid not in self._pending:
                self._early_acks.add(mid)
                return
            self._count_ack(self._pending.pop(mid))

    def _count_ack(self, samples: int | None) -> None:
        if samples is None:
            self.stats.messages_acked += 1
        else:
            self.stats.batches_acked += 1
            self.stats.samples_acked += samples
        self._lock.notify_all()

    def connect(self, timeout_s: float = 10.0) -> None:
        """Connect and wait for CONNACK. Raises PublishError if refused or not reached in time."""
        try:
            self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except OSError as exc:
            raise PublishError(
                f"cannot reach broker {self._endpoint.host}:{self._endpoint.port}: {exc}"
            ) from exc
        self._client.loop_start()
        deadline = time.monotonic() + timeout_s
        while not self._connected.wait(0.05):
            if self._refused or time.monotonic() > deadline:
                self.close()
                raise PublishError(f"broker refused the connection: {self._refused or 'timeout'}")

    def publish_batch(self, batch: TelemetryBatch) -> None:
        """Encode and queue one batch at QoS 1 (paho retransmits until PUBACK)."""
        payload = wire_v1.encode(batch, compress=self._compress)
        self._publish(batch.vehicle_id, topics.TELEMETRY, payload, batch.n_samples)

    def publish_message(self, vehicle_id: str, kind: str, payload: bytes) -> None:
        """Queue another uplink message (e.g. a `contract.dtc` message) at QoS 1. Counted in
        `stats.messages_*`, not as a batch. Raises ValueError for an unknown kind."""
        self._publish(vehicle_id, kind, payload, None)

    def _publish(self, vehicle_id: str, kind: str, payload: bytes, samples: int | None) -> None:
        # Not under self._lock: paho calls on_publish holding its own mutex, which publish() takes too.
        info = self._client.publish(topics.topic_for(vehicle_id, kind), payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise PublishError(f"publish failed: {mqtt.error_string(info.rc)}")
        with self._lock:
            if samples is None:
                self.stats.messages_sent += 1
            else:
                self.stats.batches_sent += 1
                self.stats.samples_sent += samples
                self.stats.bytes_sent += len(payload)
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._count_ack(samples)
            else:
                self._pending[info.mid] = samples

    def wait_acked(self, timeout_s: float) -> bool:
        """Block until every sent batch and message is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def close(self) -> None:
        if self._status_vehicle_id and self._connected.is_set():
            info = self._client.publish(
                topics.topic_for(self._status_vehicle_id, topics.STATUS), b"offline", qos=1, retain=True
            )
            info.wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()
