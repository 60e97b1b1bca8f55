"""Query parameters shared by the routes: bounded page sizes (cursors: `api.cursors`), strict
timestamps, and no unknown names.

Why: every integer a client sends reaches SQL, so each one has bounds in the schema (OpenAPI states
them, and anything outside gets a 422 instead of a database error such as "bigint out of range").
Timestamps are RFC 3339 date-times with a time zone, nothing looser: pydantic's own datetime parsing
also takes numbers as Unix times and dates without a time, so `since=0.5` meant 1970. A query
parameter the route does not have is an error too: `?sinse=...` must not quietly return everything.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BeforeValidator, WithJsonSchema

from api.auth import Principal, current_principal

MAX_LIMIT = 1000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1-{MAX_LIMIT}")]

# RFC 3339 section 5.6 `date-time`: full date, "T", full time with optional fraction, and an offset.
# Letters are case-insensitive there; [0-9] rather than \d, which also matches non-ASCII digits.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:([0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
TIMESTAMP_RULE = (
    "an RFC 3339 date-time with a time zone, e.g. 2025-03-01T10:00:00Z or 2025-03-01T12:00:00+02:00 "
    "(a date alone or a number is not accepted)"
)


def parse_rfc3339(value: Any) -> datetime | None:
    """A timezone-aware datetime from an RFC 3339 date-time string (None stays None). A leap second
    (:60) is read as the next second, as PostgreSQL does. Raises ValueError for anything else,
    including dates without a time, times without an offset, numbers and impossible dates."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected {TIMESTAMP_RULE}")
    text = value.upper()
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"expected {TIMESTAMP_RULE}")
    leap = match.group(1) == "60"
    if leap:
        text = text[: match.start(1)] + "59" + text[match.end(1) :]
    try:
        parsed = datetime.fromisoformat(text)
        return parsed + timedelta(seconds=1) if leap else parsed
    except (ValueError, OverflowError) as exc:  # e.g. month 13, offset +24:00, year 0000
        raise ValueError(f"not a valid date-time ({exc}); expected {TIMESTAMP_RULE}") from None


Since = Annotated[
    datetime | None,
    BeforeValidator(parse_rfc3339),
    # Optional means "leave it out": a query string has no null, so the schema does not offer one.
    WithJsonSchema({"type": "string", "format": "date-time"}),
    Query(description=f"Only items at or after this time: {TIMESTAMP_RULE}"),
]


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query_params(
    request: Request, _caller: Annotated[Principal, Depends(current_principal)]
) -> None:
    """A router dependency: 422 for query parameters the route does not declare. It depends on the
    caller, so a request without a valid token gets its 401 first, as with any other bad input.
    Async because it never blocks: a sync dependency costs a hop to the thread pool."""
    route = request.scope.get("route")
    known = _query_names(route.dependant) if isinstance(route, APIRoute) else set()
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"Unknown query parameter; this route takes: {', '.join(sorted(known)) or 'none'}",
                    "input": request.query_params[name],
                }
                for name in dict.fromkeys(unknown)
            ]
        )
