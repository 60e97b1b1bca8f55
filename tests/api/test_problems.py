"""Every error is an RFC 9457 problem (`application/problem+json`) with its kind's stable type,
whichever route raised it and however (HTTPException in a route added later, validation, a lost
database, an unexpected exception); and docs/api.md lists every kind with its type and status."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from api import create_app
from api.problems import MEDIA_TYPE, TYPE_PREFIX, ProblemKind

UNREACHABLE_URL = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
KEYS = {"type", "title", "status", "detail", "instance"}


def problem(response, kind: ProblemKind) -> dict:  # noqa: ANN001
    assert response.status_code == kind.kind.status, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    body = response.json()
    assert body["type"] == TYPE_PREFIX + kind.kind.slug and body["title"] == kind.kind.title, body
    assert body["status"] == kind.kind.status and isinstance(body["detail"], str)
    return body


@pytest.fixture(scope="module")
def client(seeded_url: str) -> Iterator[TestClient]:
    app = create_app(seeded_url)

    @app.get("/v1/probe/{what}")
    def probe(what: str) -> dict[str, str]:  # a route added by someone who never heard of problems
        if what == "gone":
            raise HTTPException(404, "no such probe")
        if what == "busy":
            raise HTTPException(409, "probe busy")
        if what == "teapot":
            raise HTTPException(418, "short and stout")
        raise RuntimeError("boom: secret internals")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.postgres
def test_each_kind_of_error_is_a_problem(client: TestClient, tokens: dict[str, str]) -> None:
    body = problem(client.get("/v1/vehicles"), ProblemKind.UNAUTHORIZED)
    assert body["instance"] == "/v1/vehicles" and set(body) == KEYS
    assert client.get("/v1/vehicles").headers["WWW-Authenticate"] == "Bearer"
    problem(client.get("/v1/vehicles", headers=bearer("nope")), ProblemKind.UNAUTHORIZED)
    body = problem(
        client.get("/v1/vehicles/VIN-S1/latest", headers=bearer(tokens["north"])), ProblemKind.NOT_FOUND
    )
    assert body["detail"] == "vehicle 'VIN-S1' not found" and body["instance"] == "/v1/vehicles/VIN-S1/latest"
    problem(client.get("/v1/no-such-route", headers=bearer(tokens["admin"])), ProblemKind.NOT_FOUND)
    problem(client.get("/vehicles", headers=bearer(tokens["admin"])), ProblemKind.NOT_FOUND)  # unversioned
    problem(client.delete("/v1/vehicles", headers=bearer(tokens["admin"])), ProblemKind.METHOD_NOT_ALLOWED)
    problem(client.get("/v1/probe/gone"), ProblemKind.NOT_FOUND)
    problem(client.get("/v1/probe/busy"), ProblemKind.CONFLICT)
    teapot = client.get("/v1/probe/teapot")
    assert teapot.status_code == 418 and teapot.headers["content-type"] == MEDIA_TYPE
    assert teapot.json()["type"] == "about:blank" and teapot.json()["title"] == "I'm a Teapot"
    body = problem(client.get("/v1/probe/crash"), ProblemKind.INTERNAL_ERROR)
    assert "secret" not in body["detail"]


@pytest.mark.postgres
def test_invalid_requests_list_every_invalid_field(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.get(
        "/v1/vehicles/VIN-N1/dtc",
        params={"limit": 0, "since": "x"},
        headers=bearer(tokens["admin"]),
    )
    body = problem(r, ProblemKind.INVALID_REQUEST)
    assert set(body) == KEYS | {"errors"}
    assert sorted(tuple(e["location"]) for e in body["errors"]) == [("query", "limit"), ("query", "since")]
    assert all(e["message"] and e["type"] for e in body["errors"])
    assert body["detail"] == "2 invalid fields: query.since, query.limit"  # in declaration order
    assert "x" not in [str(v) for e in body["errors"] for v in e.values()]  # input is not echoed
    # An unknown parameter is refused first, on its own.
    r = client.get(
        "/v1/vehicles/VIN-N1/dtc", params={"sinse": "y", "limit": 0}, headers=bearer(tokens["admin"])
    )
    assert problem(r, ProblemKind.INVALID_REQUEST)["errors"][0]["type"] == "extra_forbidden"


@pytest.mark.postgres
def test_a_body_that_is_not_json_is_a_malformed_body_problem(
    client: TestClient, tokens: dict[str, str]
) -> None:
    r = client.post(
        "/v1/bookings/1/cancel",
        content=b'{"reason": ',
        headers={**bearer(tokens["admin"]), "content-type": "application/json"},
    )
    problem(r, ProblemKind.MALFORMED_BODY)


def test_a_lost_database_is_503_with_retry_after() -> None:
    with TestClient(create_app(UNREACHABLE_URL, db_timeout_s=0.3)) as c:
        r = c.get("/v1/vehicles", headers=bearer("whatever"))
    problem(r, ProblemKind.DATABASE_UNAVAILABLE)
    assert r.headers["Retry-After"] == "5"


def test_kinds_are_distinct_and_documented() -> None:
    kinds = [k.kind for k in ProblemKind]
    assert len({k.slug for k in kinds}) == len(kinds)
    docs = DOCS.read_text()
    for k in kinds:
        row = re.search(rf"^\| `{re.escape(TYPE_PREFIX + k.slug)}` \| {k.status} \|", docs, re.MULTILINE)
        assert row, f"docs/api.md has no row for {k.slug} ({k.status})"


def test_openapi_declares_problem_json_on_every_error_response() -> None:
    spec = create_app(UNREACHABLE_URL).openapi()
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == KEYS
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                if code[0] in "45" and (path, code) != ("/health", "503"):
                    assert list(response["content"]) == [MEDIA_TYPE], (method, path, code)
