"""Diagnostic trouble codes on the `dtc` topic: one small JSON message, shared by agent and simulator.

The telemetry wire format carries only catalogue signals, so DTCs travel apart. One message:

    {"schema": "fleetpulse.dtc.v1", "vehicle_id": "SIM-0000-00042", "ts_us": 1764250000000000,
     "codes": ["P0301"], "firmware_version": "4.2.0"}

`ts_us` is microseconds since the Unix epoch on the vehicle's own clock, like telemetry timestamps;
`codes` are SAE J2012 codes (an empty list means the stored codes were cleared).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

DTC_SCHEMA = "fleetpulse.dtc.v1"


def dtc_message(vehicle_id: str, ts_us: int, codes: Iterable[str], firmware_version: str) -> bytes:
    """The JSON bytes of one DTC message."""
    doc = {
        "schema": DTC_SCHEMA,
        "vehicle_id": vehicle_id,
        "ts_us": int(ts_us),
        "codes": list(codes),
        "firmware_version": firmware_version,
    }
    return json.dumps(doc, separators=(",", ":")).encode()
