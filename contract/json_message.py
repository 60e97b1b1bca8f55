"""The bounded JSON object that the small uplink messages (DTC reports, status check-ins) share."""

from __future__ import annotations

import json
from typing import Any

from contract.errors import DecodeError, DecodeReason


def json_object(
    payload: bytes, max_bytes: int, reason: DecodeReason, not_json: str = "not JSON"
) -> dict[str, Any]:
    """The payload as a JSON object. Raises DecodeError: `oversized` beyond `max_bytes` (checked
    before parsing), otherwise `reason` for bytes that are not JSON or not an object."""
    if len(payload) > max_bytes:
        raise DecodeError(DecodeReason.OVERSIZED, f"{len(payload)} bytes exceed {max_bytes}")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DecodeError(reason, f"{not_json}: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError(reason, "not a JSON object")
    return doc
