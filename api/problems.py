"""Errors as RFC 9457 problem details (`application/problem+json`): one stable `type` per kind of
error, the same body shape on every route.

Owns: the list of problem kinds (their type URI, title and status: docs/api.md lists them), the
exception handlers that turn every error into a problem (an `HTTPException` raised by any route,
request validation, a lost database, and anything unexpected), and the rewrite of the OpenAPI
document that declares every error response as `application/problem+json`. Routes keep raising
`HTTPException` (or `ProblemError` for a kind a status alone does not name), so a route added later
conforms without knowing about this module. Leaves which error a route raises to the route.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.db import DatabaseUnavailable
from api.schemas import FieldError, Problem, ValidationProblem

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "tag:fleetpulse.dev,2026:problems/"
RETRY_AFTER_S = 5


@dataclass(frozen=True, slots=True)
class Kind:
    slug: str
    status: int
    title: str

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.slug


class ProblemKind(enum.Enum):
    """Every kind of error the API answers with. The type URIs are identifiers, stable across
    versions; clients compare them as strings (they are not meant to be fetched)."""

    MALFORMED_BODY = Kind("malformed-body", 400, "The request body is not valid JSON")
    INVALID_CURSOR = Kind("invalid-cursor", 400, "The cursor is not one this route issued for this query")
    UNAUTHORIZED = Kind("unauthorized", 401, "Missing, unknown or revoked bearer token")
    FORBIDDEN = Kind("forbidden", 403, "This caller's role may not use this route")
    NOT_FOUND = Kind("not-found", 404, "No such resource, or not visible to this caller")
    METHOD_NOT_ALLOWED = Kind("method-not-allowed", 405, "The route does not take this method")
    CONFLICT = Kind("conflict", 409, "The resource's state does not allow this act")
    INVALID_REQUEST = Kind("invalid-request", 422, "The request has invalid fields")
    INTERNAL_ERROR = Kind("internal-error", 500, "Internal server error")
    DATABASE_UNAVAILABLE = Kind("database-unavailable", 503, "Database unavailable; retry later")
    OVERLOADED = Kind("overloaded", 503, "Too many requests in progress; retry later")  # api.serving

    @property
    def kind(self) -> Kind:
        return self.value


_NAMED_ONLY = (ProblemKind.INVALID_CURSOR, ProblemKind.OVERLOADED)  # never chosen by status alone
_BY_STATUS = {k.kind.status: k for k in ProblemKind if k not in _NAMED_ONLY}
_BY_STATUS[400] = ProblemKind.MALFORMED_BODY


class ProblemError(HTTPException):
    """An error of a named kind, for when the status alone does not say which (e.g. 400
    invalid-cursor). A plain `HTTPException` gets the kind of its status."""

    def __init__(self, kind: ProblemKind, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(kind.kind.status, detail, headers)
        self.problem_kind = kind


def problem_response(
    request: Request,
    kind: ProblemKind | None,
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[FieldError] | None = None,
) -> JSONResponse:
    """The problem body for `kind` (None: a status with no kind of ours, type `about:blank`)."""
    if kind is None:
        type_, title = "about:blank", HTTPStatus(status).phrase
    else:
        type_, title = kind.kind.type, kind.kind.title
    model: Problem = (
        ValidationProblem(
            type=type_,
            title=title,
            status=status,
            detail=detail,
            instance=request.url.path,
            errors=list(errors),
        )
        if errors is not None
        else Problem(type=type_, title=title, status=status, detail=detail, instance=request.url.path)
    )
    return JSONResponse(
        model.model_dump(mode="json"), status_code=status, headers=headers, media_type=MEDIA_TYPE
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = getattr(exc, "problem_kind", None) or _BY_STATUS.get(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem_response(request, kind, exc.status_code, detail, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem_response(request, ProblemKind.MALFORMED_BODY, 400, "the body is not valid JSON")
    errors = [
        FieldError(
            location=[str(part) for part in e.get("loc", ())],
            message=str(e.get("msg", "")),
            type=str(e.get("type", "")),
        )
        for e in raw
    ]
    names = ", ".join(dict.fromkeys(".".join(e.location) for e in errors))
    detail = f"{len(errors)} invalid field{'s' if len(errors) != 1 else ''}: {names}"
    return problem_response(request, ProblemKind.INVALID_REQUEST, 422, detail, errors=errors)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        request,
        ProblemKind.DATABASE_UNAVAILABLE,
        503,
        "the database cannot be reached",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, ProblemKind.INTERNAL_ERROR, 500, "an unexpected error; it was logged")


def install_handlers(app: FastAPI) -> None:
    """Make every error `app` answers a problem."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)


# --- OpenAPI ---------------------------------------------------------------------------------------

_REF = "#/components/schemas/"


def problem_openapi(app: FastAPI, build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap the app's OpenAPI builder: every 4xx and 5xx response of every operation is declared as
    `application/problem+json` with the `Problem` schema (`ValidationProblem` for 422), except the
    health report's own 503, which is the health body."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = build()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, ValidationProblem):
            for name, schema in (
                model.model_json_schema(ref_template=_REF + "{model}").get("$defs", {}).items()
            ):
                schemas[name] = schema
            schemas[model.__name__] = {
                k: v
                for k, v in model.model_json_schema(ref_template=_REF + "{model}").items()
                if k != "$defs"
            }
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    if str(code)[0] not in "45" or (path == "/health" and str(code) == "503"):
                        continue
                    name = "ValidationProblem" if str(code) == "422" else "Problem"
                    if str(code) == "422":
                        response["description"] = (
                            "Invalid request: each invalid field is listed (invalid-request)"
                        )
                    response["content"] = {MEDIA_TYPE: {"schema": {"$ref": _REF + name}}}
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    return openapi
