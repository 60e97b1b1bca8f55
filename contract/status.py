"""Vehicle status on the `status` topic: is the unit connected, and what does it report about itself.

Three shapes arrive, all retained so the newest is always on the broker:
- `online` / `offline`: plain text, e.g. a gateway's presence or the last will the broker publishes
  when a unit drops off without a goodbye;
- the edge agent's JSON check-in: `{"state": "online", "vehicle_id": ..., "campaign_id": ...,
  "campaign_version": ..., "agent_version": ..., "queue_rows": ..., "dropped_batches": ...}`,
  sent on connect, on a campaign change and periodically.
Anything else is a `bad_status_message` for the dead-letter store. The check-in is kept whole (it is
small and its fields grow with the agent); only `state` and `vehicle_id` are checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract.batch import check_vehicle_id
from contract.errors import DecodeError, DecodeReason
from contract.json_message import json_object

MAX_STATUS_MESSAGE_BYTES = 16 << 10
STATES = ("online", "offline")


@dataclass(frozen=True, slots=True)
class StatusReport:
    """`vehicle_id` is None for the plain-text shapes (the topic names the vehicle)."""

    state: str
    vehicle_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def parse_status_message(payload: bytes) -> StatusReport:
    """Decode one status message. Raises DecodeError (bad_status_message or oversized)."""
    bare = payload.strip()
    if bare in (b"online", b"offline") and len(payload) <= MAX_STATUS_MESSAGE_BYTES:
        return StatusReport(bare.decode())
    doc = json_object(
        payload, MAX_STATUS_MESSAGE_BYTES, DecodeReason.BAD_STATUS_MESSAGE, "neither online/offline nor JSON"
    )
    state, vehicle_id = doc.get("state"), doc.get("vehicle_id")
    if state not in STATES:
        raise _bad(f"state must be one of {STATES}")
    if vehicle_id is not None:
        vehicle_id = check_vehicle_id(vehicle_id)
    return StatusReport(str(state), vehicle_id, doc)


def _bad(detail: str) -> DecodeError:
    return DecodeError(DecodeReason.BAD_STATUS_MESSAGE, detail)
