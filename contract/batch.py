"""The in-memory telemetry batch: many samples of one vehicle, as numpy columns.

Owns: the data model shared by the agent, the simulator and ingest. It does no encoding
(see `contract.wire_v1`) and no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from contract.accounts import LOGIN_PATTERN, service_account_of
from contract.errors import DeadLetterReason, DecodeError

VEHICLE_ID_PATTERN = LOGIN_PATTERN  # a vehicle id is its MQTT login; the API reuses the pattern


def is_valid_vehicle_id(vehicle_id: str) -> bool:
    """Vehicle ids are 1-64 chars of [A-Za-z0-9_.-]: safe in MQTT topics, file names and SQL logs.
    A vehicle's id is its MQTT login, so ids in a service account's namespace (`fleet-ingest`,
    `fleet-ingest-*`, `fleet-simulator`, ...; `contract.accounts`) are reserved: not vehicle ids."""
    return VEHICLE_ID_PATTERN.fullmatch(vehicle_id) is not None and service_account_of(vehicle_id) is None


def check_vehicle_id(value: object, what: str = "vehicle_id") -> str:
    """`value` as a vehicle id; raises DecodeError(bad_vehicle_id) for anything else. Every message
    kind checks its vehicle id here, so one rule (and one dead-letter reason) holds for all.
    Ids are case-sensitive: `ab-1` and `AB-1` are two vehicles, as they are two MQTT topics."""
    if isinstance(value, str) and is_valid_vehicle_id(value):
        return value
    shown = repr(value)[:80]
    raise DecodeError(
        DeadLetterReason.BAD_VEHICLE_ID,
        f"{what} {shown} is not a vehicle id (1-64 characters of [A-Za-z0-9_.-], not a service login)",
    )


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    """Samples of one vehicle. `ts_ns` is int64 (strictly increasing); each column is float64 of the
    same length keyed by VSS path, with NaN where the signal was not sampled at that instant.
    Booleans are 0.0/1.0."""

    vehicle_id: str
    seq: int
    ts_ns: np.ndarray
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))

    @property
    def n_rows(self) -> int:
        return int(self.ts_ns.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of present (non-NaN) signal values: the unit that publish/store counts use."""
        return int(sum(int(np.count_nonzero(~np.isnan(v))) for v in self.columns.values()))
