"""The vehicle's live conditions for the install preconditions, from the signals the agent reads.

Owns: `ConditionTracker`, which watches speed, engine speed and the batteries as the agent's loop
reads them (`observe`, on the loop's thread) and gives a `VehicleConditions` snapshot for the OTA
worker (`snapshot`, any thread); and `local_time_in`, the vehicle's wall-clock time in an offer's
time zone. No I/O. The preconditions themselves are `edge_agent.ota.preconditions`'.

- Parked: the time since `Vehicle.Speed` became 0 (and stayed 0); the engine runs when
  `Vehicle.Powertrain.CombustionEngine.Speed` is above 0. A source that has no engine-speed signal
  at all (an electric car) has no engine to run.
- A reading older than `max_age_s` is no reading: the snapshot then says unknown (None), and the
  preconditions refuse.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Collection, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge_agent.ota.preconditions import VehicleConditions

SPEED = "Vehicle.Speed"
ENGINE_SPEED = "Vehicle.Powertrain.CombustionEngine.Speed"
BATTERY_V = "Vehicle.LowVoltageBattery.CurrentVoltage"
TRACTION_SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
PATHS = (SPEED, ENGINE_SPEED, BATTERY_V, TRACTION_SOC)
DEFAULT_MAX_AGE_S = 10.0


class ConditionTracker:
    """Thread-safe: `observe` from the agent loop, `snapshot` from the OTA worker."""

    def __init__(self, available_paths: Collection[str], max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.paths = tuple(p for p in PATHS if p in available_paths)
        self._has_engine = ENGINE_SPEED in available_paths
        self._max_age_ns = int(max_age_s * 1e9)
        self._last: dict[str, tuple[int, float]] = {}
        self._stopped_since_ns: int | None = None
        self._lock = threading.Lock()

    def observe(self, ts_ns: int, values: Mapping[str, float]) -> None:
        """Take one reading (non-finite values are ignored)."""
        with self._lock:
            for path in self.paths:
                value = values.get(path)
                if value is None or not math.isfinite(value):
                    continue
                self._last[path] = (ts_ns, float(value))
                if path == SPEED:
                    if value != 0.0:
                        self._stopped_since_ns = None
                    elif self._stopped_since_ns is None:
                        self._stopped_since_ns = ts_ns

    def snapshot(
        self, now_ns: int, *, local_time: dt.time | None = None, consent_given: bool = False
    ) -> VehicleConditions:
        """The conditions at `now_ns` (readings older than max_age_s are unknown)."""
        with self._lock:
            fresh = {p: v for p, (ts, v) in self._last.items() if now_ns - ts <= self._max_age_ns}
            stopped_since = self._stopped_since_ns
        speed = fresh.get(SPEED)
        parked_s = None
        if speed is not None:
            parked_s = (
                0.0 if speed != 0.0 or stopped_since is None else max(0.0, (now_ns - stopped_since) / 1e9)
            )
        engine: bool | None = False
        if self._has_engine:
            rpm = fresh.get(ENGINE_SPEED)
            engine = None if rpm is None else rpm > 0.0
        return VehicleConditions(
            speed_kmh=speed,
            parked_s=parked_s,
            engine_running=engine,
            battery_v=fresh.get(BATTERY_V),
            traction_soc_pct=fresh.get(TRACTION_SOC),
            local_time=local_time,
            consent_given=consent_given,
        )


def local_time_in(zone: str, now_unix_s: float) -> dt.time | None:
    """The wall-clock time in IANA zone `zone` at `now_unix_s`; None for a zone this system does
    not know."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return dt.datetime.fromtimestamp(now_unix_s, tz).time()
