"""Synthetic telemetry for benchmarks and fault tests, and a plain QoS 1 publisher for it.

Owns: batches shaped like the reference row (ts, vehicle, 12 x float4), within catalogue
ranges, with per-vehicle increasing seq; and publishing pre-encoded frames as fast as the broker
acknowledges them, or paced at a given rate.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics, wire_v1
from contract.batch import TelemetryBatch
from contract.signals import SIGNALS, WireType

BENCH_SIGNALS = tuple(s for s in SIGNALS if s.wire_type is WireType.FLOAT32)[:12]


def make_batches(
    prefix: str,
    n_batches: int,
    rows_per_batch: int,
    n_vehicles: int,
    *,
    end_ts_ns: int,
    period_ms: int = 100,
    seed: int = 0,
) -> list[TelemetryBatch]:
    """`n_batches` batches spread round-robin over `n_vehicles`; each vehicle's batches are
    consecutive windows that end at `end_ts_ns`; seq counts from 1 per vehicle."""
    rng = np.random.default_rng(seed)
    per_vehicle = -(-n_batches // n_vehicles)
    window_ns = rows_per_batch * period_ms * 1_000_000
    offsets = np.arange(rows_per_batch, dtype=np.int64) * period_ms * 1_000_000
    out = []
    for b in range(n_batches):
        vehicle, k = b % n_vehicles, b // n_vehicles
        start = end_ts_ns - (per_vehicle - k) * window_ns + period_ms * 1_000_000
        columns = {
            s.vss_path: rng.uniform(s.min_value, s.max_value, rows_per_batch).astype(np.float32).astype(float)
            for s in BENCH_SIGNALS
        }
        out.append(TelemetryBatch(f"{prefix}-{vehicle:05d}", k + 1, start + offsets, columns))
    return out


def paced_batches(
    prefix: str,
    n_batches: int,
    rows_per_batch: int,
    n_vehicles: int,
    *,
    start_s: float,
    rate_per_s: float,
    first_seq: int,
    seed: int = 1,
) -> list[TelemetryBatch]:
    """Batches meant to be published at `start_s + i / rate_per_s`, each ending at that moment, so
    that commit time minus its newest sample time is the sample-to-row latency."""
    rng = np.random.default_rng(seed)
    period_ns = int(min(0.1, n_vehicles / rate_per_s / rows_per_batch) * 1e9)
    offsets = (np.arange(rows_per_batch, dtype=np.int64) - (rows_per_batch - 1)) * period_ns
    out = []
    for i in range(n_batches):
        end_ns = int((start_s + i / rate_per_s) * 1e9)
        columns = {
            s.vss_path: rng.uniform(s.min_value, s.max_value, rows_per_batch).astype(np.float32).astype(float)
            for s in BENCH_SIGNALS
        }
        vehicle = f"{prefix}-{i % n_vehicles:05d}"
        out.append(TelemetryBatch(vehicle, first_seq + i // n_vehicles, end_ns + offsets, columns))
    return out


@dataclass(frozen=True)
class StampableFrame:
    """An uncompressed frame whose first time stamp is rewritten at the moment it is published, so
    that its newest sample is "now" even when the publisher runs late (docs/wire-format.md: ts0 is
    the i64 after the vehicle id and the seq/n_rows/n_columns fields of the body)."""

    topic: str
    frame: bytes
    ts0_offset: int
    span_us: int  # newest minus oldest sample time

    def stamped(self, now_us: int) -> bytes:
        out = bytearray(self.frame)
        struct.pack_into("<q", out, self.ts0_offset, now_us - self.span_us)
        return bytes(out)


def stampable_frames(batches: Sequence[TelemetryBatch]) -> list[StampableFrame]:
    out = []
    for b in batches:
        offset = wire_v1.HEADER.size + 1 + len(b.vehicle_id) + wire_v1.BODY_FIXED.size
        span_us = int(b.ts_ns[-1]) // 1000 - int(b.ts_ns[0]) // 1000
        topic = topics.topic_for(b.vehicle_id, topics.TELEMETRY)
        out.append(StampableFrame(topic, wire_v1.encode(b, compress=False), offset, span_us))
    return out


def frames_of(batches: Sequence[TelemetryBatch]) -> list[tuple[str, bytes]]:
    return [(topics.topic_for(b.vehicle_id, topics.TELEMETRY), wire_v1.encode(b)) for b in batches]


class FramePublisher:
    """One paho connection publishing QoS 1 frames; `wait_acked` waits for every PUBACK."""

    def __init__(self, mqtt_url: str, client_id: str) -> None:
        parts = urlsplit(mqtt_url)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)  # paho re-sends unacked QoS 1
        if parts.username:
            self._client.username_pw_set(parts.username, parts.password)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._lock = threading.Lock()  # never held while calling paho: paho calls back under its own locks
        self.sent = 0
        self.acked = 0
        self._client.on_publish = self._on_publish
        self._client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self._client.loop_start()

    def _on_publish(self, _c: object, _u: object, mid: int, _rc: object, _p: object) -> None:
        with self._lock:
            self.acked += 1

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1)
        with self._lock:
            self.sent += 1

    def publish_all(self, frames: Sequence[tuple[str, bytes]]) -> None:
        for topic, payload in frames:
            self.publish(topic, payload)

    def publish_paced(self, frames: Sequence[tuple[str, bytes]], start_s: float, rate_per_s: float) -> float:
        """Publish frame i at time.time() == start_s + i / rate; returns the worst lateness in s."""
        worst = 0.0
        for i, (topic, payload) in enumerate(frames):
            due = start_s + i / rate_per_s
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            worst = max(worst, -delay)
            self.publish(topic, payload)
        return worst

    def publish_stamped(self, frames: Sequence[StampableFrame], start_s: float, rate_per_s: float) -> float:
        """Publish frame i at start_s + i / rate, its newest sample stamped with the actual publish
        time; returns the worst lateness in s."""
        worst = 0.0
        for i, frame in enumerate(frames):
            delay = start_s + i / rate_per_s - time.time()
            if delay > 0:
                time.sleep(delay)
            worst = max(worst, -delay)
            self.publish(frame.topic, frame.stamped(time.time_ns() // 1000))
        return worst

    def wait_acked(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self.acked >= self.sent:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def open_persistent_session(mqtt_url: str, client_id: str, share_group: str | None = None) -> None:
    """Create ingest's persistent session (clean_session=False, QoS 1 subscription) and leave, so
    that the broker queues telemetry for `client_id` until it connects."""
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311
    )
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        client.subscribe(topics.subscription_for(topics.TELEMETRY, share_group), qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the broker did not confirm the subscription")
    finally:
        client.disconnect()
        client.loop_stop()
