"""Diagnostic trouble codes on the `dtc` topic: one small JSON message, shared by agent and simulator.

The telemetry wire format carries only catalogue signals, so DTCs travel apart. One message:

    {"schema": "fleetpulse.dtc.v2", "vehicle_id": "SIM-0000-00042", "ts_us": 1764250000000000,
     "codes": ["P0301"], "agent_version": "0.1.0", "software": {"ECM": "4.2.0"}}

`ts_us` is microseconds since the Unix epoch on the vehicle's own clock, like telemetry timestamps;
`codes` are SAE J2012 codes (an empty list means the stored codes were cleared). Each message is
the vehicle's whole current set, not a delta, so a lost or reordered message never leaves a code
stuck: the newest report per vehicle is its state. `agent_version` is the sending edge agent's own
version and `software` the ECU software that ran when the codes were read (contract.software);
both are optional. Unknown extra fields are ignored (forward compatibility); anything else out of
shape is a `bad_dtc_message` for the dead-letter store.

Schema v1 (`fleetpulse.dtc.v1`) is still accepted. Its one `firmware_version` field meant the
agent's version from a real agent but the ECU software from the simulator, so it is kept as sent
(`v1_firmware_version`) and given neither meaning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from contract.batch import check_vehicle_id
from contract.errors import DeadLetterReason, DecodeError
from contract.json_message import json_object
from contract.software import parse_versions
from contract.timestamps import check_ts_us

DTC_SCHEMA = "fleetpulse.dtc.v2"
DTC_SCHEMA_V1 = "fleetpulse.dtc.v1"
MAX_DTC_MESSAGE_BYTES = 16 << 10
MAX_CODES = 128
MAX_FIRMWARE_LEN = 64  # agent_version and v1 firmware_version
J2012_CODE = re.compile(r"[PCBU][0-3][0-9A-F]{3}")


@dataclass(frozen=True, slots=True)
class DtcReport:
    """One decoded DTC message: the vehicle's set of stored codes at `ts_us`."""

    vehicle_id: str
    ts_us: int
    codes: tuple[str, ...]
    agent_version: str = ""
    software: tuple[tuple[str, str], ...] = ()  # (ECU, software version), sorted
    v1_firmware_version: str = ""  # schema v1 only: its ambiguous field, kept as sent


def parse_dtc_message(payload: bytes) -> DtcReport:
    """Decode and check one DTC message. Raises DecodeError (bad_dtc_message or oversized)."""
    doc = json_object(payload, MAX_DTC_MESSAGE_BYTES, DeadLetterReason.BAD_DTC_MESSAGE)
    schema = doc.get("schema")
    if schema not in (DTC_SCHEMA, DTC_SCHEMA_V1):
        raise _bad(f"schema is {str(schema)[:40]!r}, expected {DTC_SCHEMA!r}")
    vehicle_id = check_vehicle_id(doc.get("vehicle_id"))
    ts_us, codes = doc.get("ts_us"), doc.get("codes")
    if not isinstance(ts_us, int) or isinstance(ts_us, bool):
        raise _bad("ts_us must be an integer (microseconds since the Unix epoch)")
    check_ts_us(ts_us, "ts_us")
    if not isinstance(codes, list) or len(codes) > MAX_CODES:
        raise _bad(f"codes must be a list of at most {MAX_CODES} codes")
    bad = [c for c in codes if not isinstance(c, str) or J2012_CODE.fullmatch(c) is None]
    if bad:
        raise _bad(f"not SAE J2012 codes: {str(bad[:3])[:80]}")
    report = DtcReport(vehicle_id, ts_us, tuple(sorted(set(codes))))
    if schema == DTC_SCHEMA_V1:
        return replace(report, v1_firmware_version=_version(doc.get("firmware_version"), "firmware_version"))
    software = doc.get("software")
    return replace(
        report,
        agent_version=_version(doc.get("agent_version"), "agent_version"),
        software=() if software is None else parse_versions(software, DeadLetterReason.BAD_DTC_MESSAGE),
    )


def _version(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_FIRMWARE_LEN or not value.isprintable():
        raise _bad(f"{name} must be printable text of at most {MAX_FIRMWARE_LEN} characters")
    return value


def _bad(detail: str) -> DecodeError:
    return DecodeError(DeadLetterReason.BAD_DTC_MESSAGE, detail)


def dtc_message(
    vehicle_id: str,
    ts_us: int,
    codes: Iterable[str],
    *,
    agent_version: str = "",
    software: Mapping[str, str] | None = None,
) -> bytes:
    """The JSON bytes of one DTC message (schema v2): the vehicle's whole current set of codes."""
    doc: dict[str, object] = {
        "schema": DTC_SCHEMA,
        "vehicle_id": vehicle_id,
        "ts_us": int(ts_us),
        "codes": list(codes),
    }
    if agent_version:
        doc["agent_version"] = agent_version
    if software:
        doc["software"] = dict(software)
    return json.dumps(doc, separators=(",", ":")).encode()
