"""Routing simulated vehicles' batches to MQTT publishers: one gateway or one connection each.

Owns: connecting `MqttPublisher`s (`edge_agent.fleet_publishing`) for a fleet and counting what they
published.
Pacing and batching are `simulators.feeder`.
"""

from __future__ import annotations

import time

from contract import accounts
from contract.batch import TelemetryBatch
from contract.credentials import vehicle_password
from contract.endpoint import MqttEndpoint
from edge_agent.fleet_publishing import MqttPublisher


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
    ) -> VehiclePublishers:
        """Gateway mode when `gateway` is given (one connection whose client id is the gateway's
        login, `fleet-simulator`); otherwise per-vehicle connections whose client id is the vehicle
        id and whose passwords derive from `fleet_secret` (`contract.accounts`). Raises PublishError
        or ValueError."""
        if gateway is not None:
            pub = MqttPublisher(gateway, gateway.username or accounts.SIMULATOR)
            pub.connect()
            return cls(gateway=pub)
        if broker is None or not fleet_secret:
            raise ValueError("per-vehicle publishing needs the broker address and FLEET_VEHICLE_SECRET")
        pubs: dict[str, MqttPublisher] = {}
        try:
            for vid in vehicle_ids:
                ep = broker.with_credentials(vid, vehicle_password(fleet_secret, vid))
                pubs[vid] = MqttPublisher(ep, vid, status_vehicle_id=vid)
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
