"""The error responses each route documents in OpenAPI, declared once per router rather than per
route, so the spec cannot forget a 401 again (schemathesis found it had) and clients see every
status they must handle. Error bodies are `{"detail": "..."}` (`ErrorOut`); a 422 lists the invalid
fields (FastAPI documents it by itself on every route that has parameters).
"""

from __future__ import annotations

from typing import Any

from api.schemas import ErrorOut

Responses = dict[int | str, dict[str, Any]]

# Every route behind a bearer token: a missing, unknown or revoked token (401, checked before any
# other work), and a database that cannot be reached (503).
AUTHENTICATED: Responses = {
    401: {
        "model": ErrorOut,
        "description": "Missing, unknown or revoked bearer token",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    503: {
        "model": ErrorOut,
        "description": "Database unavailable; retry later",
        "headers": {"Retry-After": {"description": "Seconds", "schema": {"type": "string"}}},
    },
}

# A per-vehicle route: unknown vehicles and other centres' vehicles look the same.
VEHICLE_NOT_FOUND: Responses = {
    404: {"model": ErrorOut, "description": "No such vehicle, or not visible to this caller"}
}

# A route whose role guard admits only some roles: the others get 403 (before any other work).
FORBIDDEN: Responses = {403: {"model": ErrorOut, "description": "This caller's role may not use this route"}}
