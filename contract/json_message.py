"""The bounded JSON object that the small uplink messages (DTC reports, status check-ins) share.

It accepts only what every consumer downstream can hold, so that a message that passes here can
never fail later (in PostgreSQL's jsonb, in Python's int conversion, in a JSON encoder):
- strict RFC 8259 JSON: no `NaN`, `Infinity` or `-Infinity`, and no number that overflows to
  infinity (`1e999`);
- integers within int64 (`-2^63 .. 2^63-1`), checked on the digits before conversion, so a
  4,300-digit integer costs nothing and raises nothing but a DecodeError;
- text PostgreSQL can store: valid Unicode (no lone surrogates) and no NUL character.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from contract.errors import DeadLetterReason, DecodeError

_MAX_INT_DIGITS = 19  # int64 has at most 19 decimal digits
# A `\u0000` escape, not the text `\u0000` (whose backslash json.dumps escapes in turn).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class _Refused(ValueError):
    """A JSON number or constant this reader refuses (raised from json's parse hooks)."""


def _int64(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Refused(f"integer of {len(text)} characters is outside int64")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise _Refused(f"integer {value} is outside int64")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:40]} is not a finite double")
    return value


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def json_object(
    payload: bytes, max_bytes: int, reason: DeadLetterReason, not_json: str = "not JSON"
) -> dict[str, Any]:
    """The payload as a JSON object. Raises DecodeError: `oversized` beyond `max_bytes` (checked
    before parsing), otherwise `reason` for bytes that are not strict JSON, not an object, or hold a
    number or text that the module docstring excludes."""
    if len(payload) > max_bytes:
        raise DecodeError(DeadLetterReason.OVERSIZED, f"{len(payload)} bytes exceed {max_bytes}")
    try:
        doc = json.loads(payload, parse_int=_int64, parse_float=_finite, parse_constant=_no_constant)
    except _Refused as exc:
        raise DecodeError(reason, str(exc)) from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise DecodeError(reason, f"{not_json}: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise DecodeError(reason, "not a JSON object")
    _check_storable_text(doc, reason)
    return doc


def _check_storable_text(doc: dict[str, Any], reason: DeadLetterReason) -> None:
    try:
        text = json.dumps(doc, ensure_ascii=False)
        text.encode("utf-8")  # PostgreSQL's jsonb refuses lone surrogates...
    except (UnicodeError, ValueError, RecursionError):
        raise DecodeError(reason, "text that is not valid Unicode") from None
    # ...and NUL characters (json.dumps always escapes them). The substring test first: the regex,
    # with its look-behind at every position, took a quarter of an update report's parse.
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        raise DecodeError(reason, "NUL characters (jsonb cannot store them)")
