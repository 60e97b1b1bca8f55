"""CAN source: python-can receives, cantools decodes with a DBC, a signal map names the results.

Owns: the decoder manifest for CAN (DBC message/signal name -> catalogue VSS path), receive
filters built from it (only mapped ids pass; on socketcan python-can installs them in the kernel,
so a Pi never wakes up for unrelated traffic), and per-message throttling (a frame arriving sooner
than `throttle_s` after the last decoded one of its id is skipped: decoding is the costly part and
the agent samples at its base rate anyway). Values older than `stale_after_s` are not reported.

The shipped demo DBC is `edge_agent/can/demo_vehicle.dbc` with the map `DEMO_SIGNAL_MAP`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from contract.signals import BY_PATH
from edge_agent.sources.base import RawReading, Source, SourceError

DEMO_DBC = Path(__file__).resolve().parents[1] / "can" / "demo_vehicle.dbc"
DEMO_SIGNAL_MAP: dict[str, str] = {
    "VehicleDynamics.VehicleSpeed": "Vehicle.Speed",
    "VehicleDynamics.AccelLongitudinal": "Vehicle.Acceleration.Longitudinal",
    "VehicleDynamics.AccelLateral": "Vehicle.Acceleration.Lateral",
    "VehicleDynamics.AccelVertical": "Vehicle.Acceleration.Vertical",
    "StabilityControl.AbsActive": "Vehicle.ADAS.ABS.IsEngaged",
    "StabilityControl.TcsActive": "Vehicle.ADAS.TCS.IsEngaged",
    "EngineStatus.EngineSpeed": "Vehicle.Powertrain.CombustionEngine.Speed",
    "EngineStatus.CoolantTemperature": "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "EngineStatus.FuelLevel": "Vehicle.Powertrain.FuelSystem.RelativeLevel",
    "EngineStatus.BatteryVoltage": "Vehicle.LowVoltageBattery.CurrentVoltage",
    "TyrePressures.TyreFrontLeft": "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure",
    "TyrePressures.TyreFrontRight": "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure",
    "TyrePressures.TyreRearLeft": "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure",
    "TyrePressures.TyreRearRight": "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure",
}
MAX_FRAMES_PER_READ = 5000  # bounds one read on a flooded bus


class CanSource(Source):
    """`interface`/`channel` as python-can takes them (socketcan/can0 on a Pi, virtual in tests)."""

    kind = "can"

    def __init__(
        self,
        *,
        interface: str = "socketcan",
        channel: str = "can0",
        dbc: str | None = None,
        signal_map: Mapping[str, str] | None = None,
        throttle_s: float = 0.05,
        stale_after_s: float = 2.0,
        bus_options: Mapping[str, Any] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__(clock_ns=clock_ns)
        self._interface, self._channel = interface, channel
        self._dbc_path = Path(dbc) if dbc else DEMO_DBC
        self._map = dict(signal_map or DEMO_SIGNAL_MAP)
        unknown = sorted(p for p in self._map.values() if p not in BY_PATH)
        if unknown:
            raise ValueError(f"signal_map names paths outside the catalogue: {unknown}")
        self._throttle_s = throttle_s
        self._stale_after_s = stale_after_s
        self._bus_options = dict(bus_options or {})
        self._bus: Any = None
        self._messages: dict[int, Any] = {}
        self._last_decoded_s: dict[int, float] = {}
        self._latest: dict[str, tuple[float, float]] = {}  # path -> (value, monotonic s)
        self.frames_received = 0
        self.frames_decoded = 0

    @property
    def available_paths(self) -> frozenset[str]:
        return frozenset(self._map.values())

    def open(self) -> None:
        import can
        import cantools

        try:
            db: Any = cantools.database.load_file(str(self._dbc_path))
        except (OSError, cantools.database.UnsupportedDatabaseFormatError) as exc:
            raise SourceError(f"cannot load DBC {self._dbc_path}: {exc}") from exc
        wanted_messages = {name.split(".", 1)[0] for name in self._map}
        self._messages = {m.frame_id: m for m in db.messages if m.name in wanted_messages}
        filters = [
            {
                "can_id": fid,
                "can_mask": 0x1FFFFFFF if m.is_extended_frame else 0x7FF,
                "extended": m.is_extended_frame,
            }
            for fid, m in self._messages.items()
        ]
        try:
            self._bus = can.Bus(
                interface=self._interface, channel=self._channel, can_filters=filters, **self._bus_options
            )
        except (can.CanError, OSError) as exc:
            raise SourceError(f"cannot open CAN {self._interface}:{self._channel}: {exc}") from exc

    def close(self) -> None:
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def _read_values(self, paths: list[str], timeout_s: float) -> RawReading:
        import can

        if self._bus is None:
            raise SourceError("CAN source is not open")
        try:
            for _ in range(MAX_FRAMES_PER_READ):
                msg = self._bus.recv(timeout=0)
                if msg is None:
                    break
                self._take(msg)
        except can.CanError as exc:
            raise SourceError(f"CAN receive failed: {exc}") from exc
        now = time.monotonic()
        values = {
            path: value
            for path, (value, seen) in self._latest.items()
            if now - seen <= self._stale_after_s and path in paths
        }
        return RawReading(values)

    def _take(self, msg: Any) -> None:
        self.frames_received += 1
        message = self._messages.get(msg.arbitration_id)
        if message is None:  # filters already drop these on socketcan; virtual buses filter in software
            return
        now = time.monotonic()
        if now - self._last_decoded_s.get(msg.arbitration_id, -1e9) < self._throttle_s:
            return
        self._last_decoded_s[msg.arbitration_id] = now
        try:
            decoded = message.decode(msg.data, decode_choices=False)
        except Exception:  # noqa: BLE001 - a malformed frame must not stop the car's agent
            return
        self.frames_decoded += 1
        for name, value in decoded.items():
            path = self._map.get(f"{message.name}.{name}")
            if path is not None:
                self._latest[path] = (float(value), now)
