"""The backend's MQTT publisher for the vehicles' downlink `command` topics (update offers here;
the in-car notices of `remedies.notifications` reuse it, since `remedies` sits above `ota`).

Owns one connection of a service login (MQTT 3.1.1, clean session): connect, publish QoS 1 and wait
for each PUBACK, disconnect. A batch (a campaign step's offers) shares one connection; a single
message uses `publish_once`. Every failure of the broker (refused, unreachable, no PUBACK in time)
is a `PublishError`: the caller keeps what it did not get acknowledged and tries again later. What
to publish, and when, is the caller's; the topic names are `contract.topics`'.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.accounts import login_endpoint
from contract.endpoint import MqttEndpoint


class PublishError(Exception):
    """The broker did not take the message (down, refused the login, no PUBACK in time): try again
    later."""


class CommandPublisher:
    """One connection as `client_id` (a login of the endpoint's service account). Use it as a
    context manager; `publish` waits for the broker's PUBACK. Not thread-safe: one per thread."""

    def __init__(self, endpoint: MqttEndpoint, client_id: str, *, timeout_s: float = 10.0) -> None:
        """Raises contract.accounts.ClientIdError when the endpoint's account does not own
        `client_id` (the broker would refuse it)."""
        self._endpoint = login_endpoint(endpoint, client_id)
        self._client_id = client_id if self._endpoint.username else ""
        self._timeout_s = timeout_s
        self._client: mqtt.Client | None = None

    def __enter__(self) -> CommandPublisher:
        self.connect()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect and wait for the CONNACK. Raises PublishError."""
        ep = self._endpoint
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                refused.append(str(reason))
            connected.set()

        client.on_connect = on_connect
        if ep.username:
            client.username_pw_set(ep.username, ep.password)
        if ep.tls:
            client.tls_set()
        try:
            client.connect(ep.host, ep.port, keepalive=30)
        except OSError as exc:  # refused, unreachable, name not found
            raise PublishError(f"cannot reach the broker: {type(exc).__name__}: {exc}") from exc
        client.loop_start()
        self._client = client
        if not connected.wait(self._timeout_s):
            self.close()
            raise PublishError("the broker did not answer the connect")
        if refused:
            self.close()
            raise PublishError(f"the broker refused the connection: {refused[0]}")

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish QoS 1, not retained, and wait for the PUBACK. Raises PublishError."""
        if self._client is None:
            raise PublishError("not connected")
        info = self._client.publish(topic, payload, qos=1, retain=False)
        try:
            info.wait_for_publish(self._timeout_s)
        except (RuntimeError, ValueError) as exc:  # not queued: the connection is gone
            raise PublishError(f"publish failed: {exc}") from exc
        if not info.is_published():
            raise PublishError("the broker did not acknowledge the message")

    def close(self) -> None:
        """Disconnect. Idempotent."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()


def publish_once(
    endpoint: MqttEndpoint, client_id: str, topic: str, payload: bytes, *, timeout_s: float = 10.0
) -> None:
    """Connect, publish one message QoS 1, wait for its PUBACK, disconnect. Raises PublishError,
    contract.accounts.ClientIdError."""
    with CommandPublisher(endpoint, client_id, timeout_s=timeout_s) as publisher:
        publisher.publish(topic, payload)
