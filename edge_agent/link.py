"""The in-car agent's MQTT link (paho-mqtt, MQTT 3.1.1, QoS 1), reconnecting with backoff and jitter.

Owns: one network thread that connects, runs paho's loop, and on loss waits an exponentially
growing, jittered delay before the next attempt (so a fleet does not reconnect in lock-step after a
broker restart); TLS and client certificates; the last will (`offline`, retained) and the retained
check-in on connect; receiving campaigns on the config topic and one-off commands (update offers,
consents) on the command topic, both subscribed at QoS 1. paho callbacks only record facts in
thread-safe queues; the agent loop drains them (`take_acks`, `take_configs`, `take_commands`).

Each connection uses a fresh paho client, tagged with an `epoch`: in-flight messages of a lost
connection are forgotten here and re-sent by the agent from its disk queue (same seq and bytes, so
ingest deduplicates), instead of living on in a hidden in-memory queue that a crash would lose.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics
from contract.endpoint import MqttEndpoint

log = logging.getLogger(__name__)
MAX_PENDING_COMMANDS = 1000


def backoff_delay_s(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before reconnect attempt `attempt` (0-based): "equal jitter", i.e. half of the capped
    exponential delay plus a uniform random part up to the other half. Pure given `rng`."""
    capped = min(max_s, initial_s * (2 ** min(attempt, 30)))
    return capped / 2 + rng.uniform(0, capped / 2)


@dataclass(frozen=True)
class LinkConfig:
    endpoint: MqttEndpoint
    vehicle_id: str
    client_id: str
    keepalive_s: int = 30
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = field(default=None, repr=False)
    max_inflight: int = 100


class AgentLink:
    """Thread-safe; `publish` may be called from the agent loop while the network thread runs."""

    def __init__(self, config: LinkConfig, checkin: Callable[[], bytes], *, seed: int | None = None) -> None:
        self.config = config
        self._checkin = checkin
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._client: mqtt.Client | None = None
        self._client_lock = threading.Lock()
        self.epoch = 0
        self.connected = threading.Event()
        self.disconnects = 0
        self.last_refusal: str | None = None
        self.last_error: str | None = None
        self._acks: deque[tuple[int, int]] = deque()
        self._configs: deque[bytes] = deque()
        self._commands: deque[bytes] = deque(maxlen=MAX_PENDING_COMMANDS)
        self._thread = threading.Thread(target=self._run, name="agent-mqtt", daemon=True)
        self._status_topic = topics.topic_for(config.vehicle_id, topics.STATUS)
        self._config_topic = topics.topic_for(config.vehicle_id, topics.CONFIG)
        self._command_topic = topics.topic_for(config.vehicle_id, topics.COMMAND)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish `offline` if connected, disconnect, join the thread."""
        with self._client_lock:
            client = self._client
        if client is not None and self.connected.is_set():
            info = client.publish(self._status_topic, b"offline", qos=1, retain=True)
            info.wait_for_publish(2)
        self._stop.set()
        if client is not None:
            client.disconnect()
        self._thread.join(timeout_s)

    # -- used by the agent loop -------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> tuple[int, int] | None:
        """Queue a QoS 1 publish on the current connection; returns (epoch, mid), or None when
        there is no connection (the caller keeps the data and tries again later)."""
        with self._client_lock:
            client, epoch = self._client, self.epoch
        if client is None or not self.connected.is_set():
            return None
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return epoch, info.mid

    def take_acks(self) -> list[tuple[int, int]]:
        out = []
        while self._acks:
            out.append(self._acks.popleft())
        return out

    def take_configs(self) -> list[bytes]:
        out = []
        while self._configs:
            out.append(self._configs.popleft())
        return out

    def take_commands(self) -> list[bytes]:
        """The payloads received on the command topic since the last call, oldest first (at most
        MAX_PENDING_COMMANDS are held: a flood drops the oldest)."""
        out = []
        while self._commands:
            out.append(self._commands.popleft())
        return out

    def send_checkin(self) -> None:
        with self._client_lock:
            client = self._client
        if client is not None and self.connected.is_set():
            client.publish(self._status_topic, self._checkin(), qos=1, retain=True)

    # -- network thread ---------------------------------------------------------------------
    def _new_client(self, epoch: int) -> mqtt.Client:
        cfg = self.config
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if cfg.endpoint.username:
            client.username_pw_set(cfg.endpoint.username, cfg.endpoint.password)
        if cfg.endpoint.tls or cfg.ca_file or cfg.cert_file:
            client.tls_set(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.will_set(self._status_topic, b"offline", qos=1, retain=True)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.max_queued_messages_set(0)

        def on_connect(client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
            if reason_code.is_failure:
                self.last_refusal = str(reason_code)
                log.error("broker refused the connection: %s", reason_code)
                return
            client.subscribe([(self._config_topic, 1), (self._command_topic, 1)])
            client.publish(self._status_topic, self._checkin(), qos=1, retain=True)
            self.connected.set()

        def on_disconnect(client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
            self.connected.clear()

        def on_publish(client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
            self._acks.append((epoch, mid))

        def on_message(client, userdata, message) -> None:  # noqa: ANN001
            if message.topic == self._config_topic:
                self._configs.append(bytes(message.payload))
            elif message.topic == self._command_topic:
                self._commands.append(bytes(message.payload))

        def on_log(client, userdata, level, buf) -> None:  # noqa: ANN001
            if level == mqtt.MQTT_LOG_ERR and self.last_error is None:  # the first, the cause
                self.last_error = buf

        client.on_connect = on_connect
        client.on_log = on_log
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = on_message
        return client

    def _run(self) -> None:
        attempt = 0
        cfg = self.config
        while not self._stop.is_set():
            epoch = self.epoch + 1
            client = self._new_client(epoch)
            self.last_error = None
            try:
                client.connect(cfg.endpoint.host, cfg.endpoint.port, keepalive=cfg.keepalive_s)
            except (OSError, ssl.SSLError) as exc:
                log.warning("cannot reach broker %s:%d: %s", cfg.endpoint.host, cfg.endpoint.port, exc)
            else:
                with self._client_lock:
                    self._client, self.epoch = client, epoch
                was_connected = False
                while not self._stop.is_set():
                    if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                        break
                    if self.connected.is_set():
                        attempt, was_connected = 0, True
                self.connected.clear()
                with self._client_lock:
                    self._client = None
                if self._stop.is_set():
                    client.loop(timeout=0.2)  # flush the DISCONNECT
                    break
                if was_connected:
                    self.disconnects += 1
                    log.warning("broker connection lost; reconnecting")
                else:  # e.g. the broker rejected our client certificate after the handshake
                    log.warning("broker closed the connection before accepting it: %s", self.last_error)
            delay = backoff_delay_s(attempt, cfg.backoff_initial_s, cfg.backoff_max_s, self._rng)
            attempt += 1
            self._stop.wait(delay)
