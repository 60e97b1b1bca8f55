"""The simulated vehicles' downlink: update offers from their `command` topics, over MQTT 3.1.1.

Owns: one paho-mqtt connection that speaks for the whole simulated fleet (the gateway account's
login `fleet-simulator-ota`, `contract.accounts.SIMULATOR_OTA`), subscribed at QoS 1 to
`fleet/v1/+/command` (the gateway may read every vehicle's downlink: `contract.topics`), and
handing each valid offer to `ClosedLoop.receive_offer`. A command that is not an update offer
(another `type`, e.g. an in-car message) is not the responder's and is skipped; an offer that
breaks a rule of `contract.update.parse_update_offer` is logged (vehicle and what is wrong, never
the payload) and ignored, as a real agent refuses it. The reports go back through the feeder's
publisher for the vehicle (`simulators.feeder.feed(closed_loop=...)`), not through this
connection. Subscribing again after a reconnect is paho's `on_connect`.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import accounts, topics
from contract.accounts import login_endpoint
from contract.endpoint import MqttEndpoint
from contract.update import OFFER_TYPE, OfferError, parse_update_offer
from simulators.closed_loop import ClosedLoop

log = logging.getLogger(__name__)


class LinkError(RuntimeError):
    """The broker refused the listener's connection or subscription, or did not answer in time."""


@dataclass
class LinkStats:
    offers: int = 0  # valid offers handed to the closed loop
    invalid_offers: int = 0  # refused (logged)
    other_commands: int = 0  # commands that are not update offers (skipped)
    unknown_vehicles: int = 0  # offers for a vehicle not in the fleet (skipped)


class OfferListener:
    """Receives the fleet's offers. `connect()` returns once the subscription is granted."""

    def __init__(
        self, endpoint: MqttEndpoint, loop: ClosedLoop, client_id: str = accounts.SIMULATOR_OTA
    ) -> None:
        self._endpoint = login_endpoint(endpoint, client_id)
        self._loop = loop
        self.stats = LinkStats()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if self._endpoint.username:
            client.username_pw_set(self._endpoint.username, self._endpoint.password)
        if self._endpoint.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            self._refused = str(reason_code)
            return
        client.subscribe(topics.subscription_for(topics.COMMAND), qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # noqa: ANN001
        if any(rc.is_failure for rc in reason_codes):
            self._refused = "subscription refused"
            return
        self._subscribed.set()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        self.handle(message.topic, bytes(message.payload))

    def handle(self, topic: str, payload: bytes) -> None:
        """One message from a `command` topic (paho's thread calls this; tests may too). Never raises."""
        parsed = topics.parse_topic(topic)
        if parsed is None or parsed[1] != topics.COMMAND:
            return
        vehicle_id = parsed[0]
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if isinstance(doc, dict) and doc.get("type") != OFFER_TYPE:
            self.stats.other_commands += 1
            return
        try:
            offer = parse_update_offer(payload)
        except OfferError as exc:
            self.stats.invalid_offers += 1
            log.warning("ignoring an invalid update offer for %s: %s", vehicle_id, str(exc)[:200])
            return
        if self._loop.receive_offer(vehicle_id, offer):
            self.stats.offers += 1
        else:
            self.stats.unknown_vehicles += 1

    def connect(self, timeout_s: float = 10.0) -> None:
        """Connect and subscribe; returns once the broker granted the subscription. Raises LinkError
        when the broker cannot be reached, refuses, or does not answer within `timeout_s`."""
        try:
            self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except OSError as exc:
            raise LinkError(
                f"cannot reach broker {self._endpoint.host}:{self._endpoint.port}: {exc}"
            ) from exc
        self._client.loop_start()
        deadline = time.monotonic() + timeout_s
        while not self._subscribed.wait(0.05) and not self._refused and time.monotonic() < deadline:
            pass
        if not self._subscribed.is_set() or self._refused:
            self.close()
            raise LinkError(f"the offer listener was not subscribed: {self._refused or 'timeout'}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
