"""OBD-II source through an ELM327 adapter with python-obd: mode 01 PIDs and stored DTCs (mode 03).

Owns: the decoder manifest for OBD (catalogue path -> python-obd command and unit), querying only
what the vehicle reports as supported, and reading stored DTCs every `dtc_interval_s`.

Battery: OBD has no 12 V battery PID. `CONTROL_MODULE_VOLTAGE` (PID 0x42) is the supply voltage
at the engine ECU, i.e. the 12 V system voltage minus wiring losses (typically within 0.1-0.3 V);
we map it to `Vehicle.LowVoltageBattery.CurrentVoltage` as a stand-in and say so here.

An ELM327 answers one PID at a time (tens of ms each on a real car), so an OBD agent should run
at a base rate of about 1 Hz; the agent loop simply falls behind gracefully at higher rates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edge_agent.sources.base import RawReading, Source, SourceError

RECONNECT_INTERVAL_S = 10.0  # an unplugged adapter or ignition-off ECU: retry, but not in a tight loop

# catalogue path -> (python-obd command name, unit the magnitude is converted to)
OBD_PIDS: dict[str, tuple[str, str]] = {
    "Vehicle.Speed": ("SPEED", "kph"),
    "Vehicle.Powertrain.CombustionEngine.Speed": ("RPM", "rpm"),
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature": ("COOLANT_TEMP", "degC"),
    "Vehicle.Powertrain.FuelSystem.RelativeLevel": ("FUEL_LEVEL", "percent"),
    "Vehicle.LowVoltageBattery.CurrentVoltage": ("CONTROL_MODULE_VOLTAGE", "volt"),
}


class ObdSource(Source):
    """`port` is a serial device (`/dev/ttyUSB0`, `/dev/rfcomm0`) or `socket://host:port`
    (WiFi adapters, the emulator in tests; pass `baudrate=38400` there)."""

    kind = "obd"

    def __init__(
        self,
        *,
        port: str | None = None,
        baudrate: int | None = None,
        protocol: str | None = None,
        fast: bool = False,
        timeout_s: float = 1.0,
        dtc_interval_s: float = 30.0,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__(clock_ns=clock_ns)
        self._port, self._baudrate, self._protocol = port, baudrate, protocol
        self._fast, self._timeout_s = fast, timeout_s
        self._dtc_interval_s = dtc_interval_s
        self._next_dtc_s = 0.0
        self._next_reconnect_s = 0.0
        self._conn: Any = None
        self._supported: set[str] = set()

    @property
    def available_paths(self) -> frozenset[str]:
        if self._conn is None:
            return frozenset(OBD_PIDS)
        return frozenset(p for p, (cmd, _) in OBD_PIDS.items() if cmd in self._supported)

    def open(self) -> None:
        import obd

        conn = obd.OBD(
            portstr=self._port,
            baudrate=self._baudrate,
            protocol=self._protocol,
            fast=self._fast,
            timeout=self._timeout_s,
        )
        if not conn.is_connected():
            conn.close()
            raise SourceError(
                f"no OBD-II connection on {self._port or 'auto-detected port'}: {conn.status()}"
            )
        self._conn = conn
        self._supported = {cmd.name for cmd in conn.supported_commands}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read_values(self, paths: list[str], timeout_s: float) -> RawReading:
        import obd

        if self._conn is None or not self._conn.is_connected():
            self._reconnect()
        values: dict[str, float] = {}
        for path in paths:
            pid = OBD_PIDS.get(path)
            if pid is None or pid[0] not in self._supported:
                continue
            response = self._conn.query(obd.commands[pid[0]])
            if not response.is_null():
                values[path] = float(response.value.to(pid[1]).magnitude)
        dtcs = None
        now = time.monotonic()
        if now >= self._next_dtc_s:
            self._next_dtc_s = now + self._dtc_interval_s
            dtcs = self.read_dtcs()
        return RawReading(values, dtcs)

    def _reconnect(self) -> None:
        """Try to reopen a lost adapter at most every RECONNECT_INTERVAL_S; raises SourceError."""
        now = time.monotonic()
        if now < self._next_reconnect_s:
            raise SourceError("OBD-II adapter is not connected")
        self._next_reconnect_s = now + RECONNECT_INTERVAL_S
        self.close()
        self.open()

    def read_dtcs(self) -> frozenset[str] | None:
        """Stored DTCs (mode 03) as J2012 codes (`P0301`); None when the ECU did not answer."""
        import obd

        response = self._conn.query(obd.commands.GET_DTC)
        if response.is_null():
            return None
        return frozenset(code for code, _description in response.value)
