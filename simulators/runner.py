"""Driving a simulated fleet through the real agent path: batcher -> wire format -> MQTT.

Owns: pacing (real time or faster), cutting batches at a fixed interval, and publishing them
through `edge_agent.MqttPublisher`, either over one gateway connection or one per vehicle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from contract.batch import TelemetryBatch
from contract.credentials import vehicle_password
from contract.endpoint import MqttEndpoint
from edge_agent import FleetBatcher, MqttPublisher, SequenceCounter
from simulators.demo_fleet import DemoFleet


class VehiclePublishers:
    """Routes each vehicle's batches to its publisher: a shared gateway, or one connection each."""

    def __init__(
        self, publishers: dict[str, MqttPublisher] | None = None, gateway: MqttPublisher | None = None
    ):
        self._by_vehicle = publishers or {}
        self._gateway = gateway

    @classmethod
    def connect(
        cls,
        vehicle_ids: list[str],
        *,
        gateway: MqttEndpoint | None,
        broker: MqttEndpoint | None = None,
        fleet_secret: str | None = None,
        client_prefix: str = "sim",
    ) -> VehiclePublishers:
        """Gateway mode when `gateway` is given; otherwise per-vehicle connections that authenticate
        with passwords derived from `fleet_secret`. Raises PublishError or ValueError."""
        if gateway is not None:
            pub = MqttPublisher(gateway, f"{client_prefix}-gateway-{time.time_ns() % 10**9}")
            pub.connect()
            return cls(gateway=pub)
        if broker is None or not fleet_secret:
            raise ValueError("per-vehicle publishing needs the broker address and FLEET_VEHICLE_SECRET")
        pubs: dict[str, MqttPublisher] = {}
        try:
            for vid in vehicle_ids:
                ep = broker.with_credentials(vid, vehicle_password(fleet_secret, vid))
                pubs[vid] = MqttPublisher(ep, f"{client_prefix}-{vid}", status_vehicle_id=vid)
                pubs[vid].connect()
        except Exception:
            for p in pubs.values():
                p.close()
            raise
        return cls(publishers=pubs)

    @property
    def all(self) -> list[MqttPublisher]:
        return [self._gateway] if self._gateway else list(self._by_vehicle.values())

    def publish(self, batch: TelemetryBatch) -> None:
        (self._gateway or self._by_vehicle[batch.vehicle_id]).publish_batch(batch)

    def wait_acked(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(p.wait_acked(max(0.0, deadline - time.monotonic())) for p in self.all)

    def samples_acked(self) -> int:
        return sum(p.stats.samples_acked for p in self.all)

    def samples_sent(self) -> int:
        return sum(p.stats.samples_sent for p in self.all)

    def batches_sent(self) -> int:
        return sum(p.stats.batches_sent for p in self.all)

    def bytes_sent(self) -> int:
        return sum(p.stats.bytes_sent for p in self.all)

    def close(self) -> None:
        for p in self.all:
            p.close()


@dataclass(frozen=True)
class DriveConfig:
    duration_s: float = 30.0
    sample_interval_s: float = 1.0
    batch_interval_s: float = 5.0
    speedup: float = 1.0


def drive(
    fleet: DemoFleet,
    publishers: VehiclePublishers,
    config: DriveConfig,
    *,
    on_step: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[int, int]:
    """Simulate and publish for `duration_s` of simulated time. Returns (first_ts_ns, last_ts_ns)."""
    batcher = FleetBatcher(fleet.vehicle_ids, SequenceCounter())
    n_steps = max(1, int(round(config.duration_s / config.sample_interval_s)))
    steps_per_batch = max(1, int(round(config.batch_interval_s / config.sample_interval_s)))
    start_wall = time.monotonic()
    start_ts = time.time_ns()
    step_ns = int(config.sample_interval_s * 1e9)
    ts = start_ts
    for i in range(n_steps):
        if should_stop and should_stop():
            break
        ts = start_ts + i * step_ns
        batcher.add(ts, fleet.step(config.sample_interval_s))
        if len(batcher) >= steps_per_batch:
            for batch in batcher.cut():
                publishers.publish(batch)
        if on_step:
            on_step(i + 1, n_steps)
        wake = start_wall + (i + 1) * config.sample_interval_s / config.speedup
        time.sleep(max(0.0, wake - time.monotonic()))
    for batch in batcher.cut():
        publishers.publish(batch)
    return start_ts, ts
