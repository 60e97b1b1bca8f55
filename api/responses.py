"""The error responses each route documents in OpenAPI, declared once per router rather than per
route, so the spec cannot forget a 401 again (schemathesis found it had) and clients see every
status they must handle. Every error body is a problem (`api.problems`: `application/problem+json`,
the `Problem` schema; a 422 lists the invalid fields). FastAPI documents 422 by itself on every
route that has parameters; `api.problems.problem_openapi` declares all of them as problems.
"""

from __future__ import annotations

from typing import Any

from api.schemas import Problem

Responses = dict[int | str, dict[str, Any]]

# Every route behind a bearer token: a missing, unknown or revoked token (401, checked before any
# other work), and a database that cannot be reached (503).
AUTHENTICATED: Responses = {
    401: {
        "model": Problem,
        "description": "Missing, unknown or revoked bearer token (problem type unauthorized)",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    503: {
        "model": Problem,
        "description": "Database unavailable; retry later (problem type database-unavailable)",
        "headers": {"Retry-After": {"description": "Seconds", "schema": {"type": "string"}}},
    },
}

# A per-vehicle route: unknown vehicles and other centres' vehicles look the same.
VEHICLE_NOT_FOUND: Responses = {
    404: {"model": Problem, "description": "No such vehicle, or not visible to this caller"}
}

# A route whose role guard admits only some roles: the others get 403 (before any other work).
FORBIDDEN: Responses = {403: {"model": Problem, "description": "This caller's role may not use this route"}}

# A list route with a cursor: one it did not issue for these filters is a 400.
INVALID_CURSOR: Responses = {
    400: {"model": Problem, "description": "The cursor is malformed, or from another route or query"}
}
