"""Keyset pagination: opaque cursors for the list routes, and how a page and its next cursor are cut.

Owns: the cursor format and its strict validation. A cursor is base64url (no padding) of compact
JSON `{"f": <digest of the filters>, "k": [<the last row's key>], "r": <route>, "v": 1}`: the
position after the last row of a page in the route's stable order. Decoding accepts only what
`encode` produces for that route and those filters (canonical bytes, exact fields, each key part of
its type and range); anything else, a cursor from another route, or from the same route with
other filters, is an `InvalidCursor`, which the routes answer with a 400 invalid-cursor problem.
A cursor grants nothing: it holds a position, and the caller's scope is applied in SQL whatever
position it names. Leaves the keyset SQL (`WHERE key > cursor ORDER BY key LIMIT n + 1`) to the
repositories.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import WithJsonSchema

from api.problems import ProblemError, ProblemKind
from contract.batch import VEHICLE_ID_PATTERN

R = TypeVar("R")
MAX_CURSOR_LENGTH = 512
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_MIN_US = (dt.datetime(1, 1, 1, tzinfo=dt.UTC) - _EPOCH) // _US
_MAX_US = (dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC) - _EPOCH) // _US
_MAX_ID = 2**63 - 1

Cursor = Annotated[
    str | None,
    # Documented, not enforced by FastAPI: every bad cursor gets the same 400 invalid-cursor.
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": MAX_CURSOR_LENGTH}),
    Query(
        description="The `next_cursor` of the previous page, with the same filters; leave it out for "
        "the first page. Opaque: a cursor this route did not issue for these filters is a 400"
    ),
]


class InvalidCursor(ValueError):
    """The cursor is not one this route issued for these filters."""


class Part(enum.Enum):
    """The type of one key column, as it travels in a cursor."""

    VEHICLE_ID = "vehicle_id"  # text, the vehicle id pattern
    TIME = "time"  # timestamptz, as integer microseconds since the Unix epoch
    ID = "id"  # bigint identifier, 1 to 2^63-1


def _to_json(part: Part, value: Any) -> Any:
    if part is Part.TIME:
        assert isinstance(value, dt.datetime) and value.tzinfo is not None
        return (value - _EPOCH) // _US
    return value


def _from_json(part: Part, value: Any) -> Any:
    if part is Part.VEHICLE_ID:
        if isinstance(value, str) and VEHICLE_ID_PATTERN.fullmatch(value):
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        if part is Part.TIME and _MIN_US <= value <= _MAX_US:
            return _EPOCH + value * _US
        if part is Part.ID and 1 <= value <= _MAX_ID:
            return value
    raise InvalidCursor(f"the cursor's key is not a valid {part.value}")


def _digest(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {
            k: v.astimezone(dt.UTC).isoformat() if isinstance(v, dt.datetime) else v
            for k, v in filters.items()
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Keyset:
    """One list route's order: its name (cursors of other routes are refused) and key columns."""

    route: str
    parts: tuple[Part, ...]

    def encode(self, key: Sequence[Any], filters: Mapping[str, Any]) -> str:
        """The cursor for the position after the row whose key is `key`."""
        payload = {"f": _digest(filters), "k": [_to_json(p, v) for p, v in zip(self.parts, key, strict=True)]}
        text = json.dumps({**payload, "r": self.route, "v": 1}, sort_keys=True, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    def decode(self, cursor: str, filters: Mapping[str, Any]) -> tuple[Any, ...]:
        """The key a cursor holds. Raises InvalidCursor for anything `encode` would not have produced
        for this route and these filters."""
        if len(cursor) > MAX_CURSOR_LENGTH or not _ALPHABET.fullmatch(cursor):
            raise InvalidCursor("a cursor is 1-512 characters of A-Z, a-z, 0-9, '-' and '_'")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            doc = json.loads(raw.decode(), parse_constant=_refuse)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidCursor("the cursor is not one this API issued") from None
        if not isinstance(doc, dict) or set(doc) != {"f", "k", "r", "v"} or doc["v"] != 1:
            raise InvalidCursor("the cursor is not one this API issued")
        if doc["r"] != self.route:
            raise InvalidCursor(f"the cursor is not one {self.route} issued")
        if doc["f"] != _digest(filters):
            raise InvalidCursor("the cursor was issued for other filters: repeat the first request's filters")
        if not isinstance(doc["k"], list) or len(doc["k"]) != len(self.parts):
            raise InvalidCursor("the cursor is not one this API issued")
        key = tuple(_from_json(p, v) for p, v in zip(self.parts, doc["k"], strict=True))
        if self.encode(key, filters) != cursor:  # canonical: no other spelling of the same position
            raise InvalidCursor("the cursor is not one this API issued")
        return key

    def after(self, cursor: str | None, filters: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The position to continue after (None: the first page). Raises ProblemError (400
        invalid-cursor) for a cursor `decode` refuses."""
        if cursor is None:
            return None
        try:
            return self.decode(cursor, filters)
        except InvalidCursor as exc:
            raise ProblemError(ProblemKind.INVALID_CURSOR, str(exc)) from None

    def page(
        self, rows: Sequence[R], limit: int, key: Callable[[R], Sequence[Any]], filters: Mapping[str, Any]
    ) -> tuple[list[R], str | None]:
        """Cut `rows` (up to `limit` + 1 of them, in the keyset's order) into the page and the cursor
        of the next one (None when `rows` held no more than `limit`: this is the last page)."""
        items = list(rows[:limit])
        more = len(rows) > limit
        return items, self.encode(key(items[-1]), filters) if more and items else None


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")
