"""The vehicle's software inventory: which software version runs on which ECU, as the vehicle says.

Two shapes travel:
- in the agent's check-in (contract.status), the full inventory, one entry per ECU:
  `"software": [{"ecu": "ECM", "version": "4.2.1", "hardware_id": "ecm-b12"}, ...]`. The hardware
  id names the ECU hardware, so that an update is only ever offered for the hardware it was built
  for;
- in a DTC report (contract.dtc), the versions alone, `"software": {"ECM": "4.2.1", ...}`: what
  ran when the codes were read, which is what a fleet-level look at a software bug needs.

This is never the edge agent's own version: that is `agent_version`, a field of its own.
Owns: the checks (names, lengths, printable text) and both shapes. Raises DecodeError with the
reason the caller's message kind uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from contract.errors import DeadLetterReason, DecodeError

MAX_ECUS = 32
MAX_VERSION_LEN = 64
ECU_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@dataclass(frozen=True, slots=True, order=True)
class EcuSoftware:
    """One ECU's entry: its name, the software version it runs and its hardware id."""

    ecu: str
    version: str
    hardware_id: str = ""

    def as_json(self) -> dict[str, str]:
        return {"ecu": self.ecu, "version": self.version, "hardware_id": self.hardware_id}


def _text(value: Any, what: str, reason: DeadLetterReason, *, allow_empty: bool) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_VERSION_LEN
        or not value.isprintable()
        or (not value and not allow_empty)
    ):
        raise DecodeError(reason, f"{what} must be printable text of at most {MAX_VERSION_LEN} characters")
    return value


def _ecu(value: Any, reason: DeadLetterReason) -> str:
    if not isinstance(value, str) or ECU_NAME.fullmatch(value) is None:
        raise DecodeError(reason, f"ECU name {str(value)[:40]!r} must match {ECU_NAME.pattern}")
    return value


def parse_inventory(value: Any, reason: DeadLetterReason) -> tuple[EcuSoftware, ...]:
    """The check-in shape: a list of {"ecu", "version", "hardware_id"?}, each ECU once, sorted by
    ECU. Raises DecodeError(reason)."""
    if not isinstance(value, list) or len(value) > MAX_ECUS:
        raise DecodeError(reason, f"software must be a list of at most {MAX_ECUS} ECU entries")
    entries = []
    for item in value:
        if not isinstance(item, dict):
            raise DecodeError(reason, "each software entry must be an object with ecu and version")
        entries.append(
            EcuSoftware(
                _ecu(item.get("ecu"), reason),
                _text(item.get("version"), "software version", reason, allow_empty=False),
                _text(item.get("hardware_id", ""), "hardware_id", reason, allow_empty=True),
            )
        )
    names = [e.ecu for e in entries]
    if len(set(names)) != len(names):
        raise DecodeError(reason, "an ECU is listed twice in the software inventory")
    return tuple(sorted(entries))


def parse_versions(value: Any, reason: DeadLetterReason) -> tuple[tuple[str, str], ...]:
    """The DTC shape: {"ECU": "version", ...}, as sorted (ecu, version) pairs. Raises
    DecodeError(reason)."""
    if not isinstance(value, dict) or len(value) > MAX_ECUS:
        raise DecodeError(reason, f"software must be an object of at most {MAX_ECUS} ECU versions")
    return tuple(
        sorted(
            (_ecu(ecu, reason), _text(version, "software version", reason, allow_empty=False))
            for ecu, version in value.items()
        )
    )


def versions_of(inventory: tuple[EcuSoftware, ...]) -> dict[str, str]:
    """The DTC shape of an inventory."""
    return {e.ecu: e.version for e in inventory}
