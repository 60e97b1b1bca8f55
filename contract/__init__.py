"""The contract shared by edge agent, ingest and simulator: signals, batch model, wire format, topics.

Everything here is pure (no I/O) so that all three sides can depend on it freely.
"""

from contract import topics, wire_v1
from contract.batch import TelemetryBatch, is_valid_vehicle_id
from contract.errors import DeadLetterReason, DecodeError, EncodeError
from contract.signals import BY_ID, BY_PATH, SIGNALS, VSS_RELEASE, Signal, WireType

__all__ = [
    "BY_ID",
    "BY_PATH",
    "SIGNALS",
    "VSS_RELEASE",
    "DecodeError",
    "DeadLetterReason",
    "EncodeError",
    "Signal",
    "TelemetryBatch",
    "WireType",
    "is_valid_vehicle_id",
    "topics",
    "wire_v1",
]
