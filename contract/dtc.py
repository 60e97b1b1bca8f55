"""Diagnostic trouble codes on the `dtc` topic: one small JSON message, shared by agent and simulator.

The telemetry wire format carries only catalogue signals, so DTCs travel apart. One message:

    {"schema": "fleetpulse.dtc.v1", "vehicle_id": "SIM-0000-00042", "ts_us": 1764250000000000,
     "codes": ["P0301"], "firmware_version": "4.2.0"}

`ts_us` is microseconds since the Unix epoch on the vehicle's own clock, like telemetry timestamps;
`codes` are SAE J2012 codes (an empty list means the stored codes were cleared). Each message is
the vehicle's whole current set, not a delta, so a lost or reordered message never leaves a code
stuck: the newest report per vehicle is its state. Unknown extra fields are ignored (forward
compatibility); anything else out of shape is a `bad_dtc_message` for the dead-letter store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from contract.batch import check_vehicle_id
from contract.errors import DecodeError, DecodeReason
from contract.json_message import json_object
from contract.timestamps import check_ts_us

DTC_SCHEMA = "fleetpulse.dtc.v1"
MAX_DTC_MESSAGE_BYTES = 16 << 10
MAX_CODES = 128
MAX_FIRMWARE_LEN = 64
J2012_CODE = re.compile(r"[PCBU][0-3][0-9A-F]{3}")


@dataclass(frozen=True, slots=True)
class DtcReport:
    """One decoded DTC message: the vehicle's set of stored codes at `ts_us`."""

    vehicle_id: str
    ts_us: int
    codes: tuple[str, ...]
    firmware_version: str


def parse_dtc_message(payload: bytes) -> DtcReport:
    """Decode and check one DTC message. Raises DecodeError (bad_dtc_message or oversized)."""
    doc = json_object(payload, MAX_DTC_MESSAGE_BYTES, DecodeReason.BAD_DTC_MESSAGE)
    if doc.get("schema") != DTC_SCHEMA:
        raise _bad(f"schema is {str(doc.get('schema'))[:40]!r}, expected {DTC_SCHEMA!r}")
    vehicle_id, ts_us, codes, firmware = (
        doc.get(k) for k in ("vehicle_id", "ts_us", "codes", "firmware_version")
    )
    vehicle_id = check_vehicle_id(vehicle_id)
    if not isinstance(ts_us, int) or isinstance(ts_us, bool):
        raise _bad("ts_us must be an integer (microseconds since the Unix epoch)")
    check_ts_us(ts_us, "ts_us")
    if not isinstance(codes, list) or len(codes) > MAX_CODES:
        raise _bad(f"codes must be a list of at most {MAX_CODES} codes")
    bad = [c for c in codes if not isinstance(c, str) or J2012_CODE.fullmatch(c) is None]
    if bad:
        raise _bad(f"not SAE J2012 codes: {str(bad[:3])[:80]}")
    if firmware is None:
        firmware = ""
    if not isinstance(firmware, str) or len(firmware) > MAX_FIRMWARE_LEN or not firmware.isprintable():
        raise _bad(f"firmware_version must be printable text of at most {MAX_FIRMWARE_LEN} characters")
    return DtcReport(vehicle_id, ts_us, tuple(sorted(set(codes))), firmware)


def _bad(detail: str) -> DecodeError:
    return DecodeError(DecodeReason.BAD_DTC_MESSAGE, detail)


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
