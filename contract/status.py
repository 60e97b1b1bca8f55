"""Vehicle status on the `status` topic: is the unit connected, and what does it report about itself.

Three shapes arrive, all retained so the newest is always on the broker:
- `online` / `offline`: plain text, e.g. a gateway's presence or the last will the broker publishes
  when a unit drops off without a goodbye;
- the edge agent's JSON check-in: `{"state": "online", "vehicle_id": ..., "campaign_id": ...,
  "campaign_version": ..., "agent_version": ..., "software": [...], "queue_rows": ...,
  "dropped_batches": ...}`, sent on connect, on a campaign change and periodically.
Anything else is a `bad_status_message` for the dead-letter store. The check-in is kept whole (it is
small and its fields grow with the agent). Checked are `state`, `vehicle_id`, `agent_version` (the
edge agent's own version) and `software` (the ECU software inventory, contract.software), because
those two are stored in columns of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract.batch import check_vehicle_id
from contract.errors import DeadLetterReason, DecodeError
from contract.json_message import json_object
from contract.software import EcuSoftware, parse_inventory

MAX_STATUS_MESSAGE_BYTES = 16 << 10
STATES = ("online", "offline")


@dataclass(frozen=True, slots=True)
class StatusReport:
    """`vehicle_id` is None for the plain-text shapes (the topic names the vehicle)."""

    state: str
    vehicle_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    agent_version: str = ""
    software: tuple[EcuSoftware, ...] | None = None  # None: this message did not report it


def parse_status_message(payload: bytes) -> StatusReport:
    """Decode one status message. Raises DecodeError (bad_status_message or oversized)."""
    bare = payload.strip()
    if bare in (b"online", b"offline") and len(payload) <= MAX_STATUS_MESSAGE_BYTES:
        return StatusReport(bare.decode())
    doc = json_object(
        payload,
        MAX_STATUS_MESSAGE_BYTES,
        DeadLetterReason.BAD_STATUS_MESSAGE,
        "neither online/offline nor JSON",
    )
    state, vehicle_id = doc.get("state"), doc.get("vehicle_id")
    if state not in STATES:
        raise _bad(f"state must be one of {STATES}")
    if vehicle_id is not None:
        vehicle_id = check_vehicle_id(vehicle_id)
    agent_version = doc.get("agent_version", "")
    if not isinstance(agent_version, str) or len(agent_version) > 64 or not agent_version.isprintable():
        raise _bad("agent_version must be printable text of at most 64 characters")
    software = doc.get("software")
    inventory = None if software is None else parse_inventory(software, DeadLetterReason.BAD_STATUS_MESSAGE)
    return StatusReport(str(state), vehicle_id, doc, agent_version, inventory)


def _bad(detail: str) -> DecodeError:
    return DecodeError(DeadLetterReason.BAD_STATUS_MESSAGE, detail)
