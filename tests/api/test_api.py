"""The HTTP API against a real PostgreSQL: auth, scoping, validation and the OpenAPI document."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Annotated

import psycopg
import pytest
from fastapi import Depends
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient

from api import create_app
from api.auth import (
    Principal,
    Role,
    RoleGuard,
    UnknownServiceCentre,
    create_token,
    require_role,
    revoke_token,
)
from tests.api.route_table import api_routes
from tests.api.seed import SPEED, TS, TYRE_FL, VEHICLES

FLEET_QUERY_PATHS = {
    f"/v1/fleets/{{fleet_id}}/{q}"
    for q in ("last-location", "low-fuel", "stationary", "long-driving", "long-daily", "daily-activity")
}
MAP_PATHS = {  # docs/map.md
    "/v1/hazards",
    "/v1/hazards/h3",
    "/v1/roads",
    "/v1/roads/extent",
    "/v1/vehicle-positions",
    "/v1/alarm-counts",
}
UNREACHABLE_URL = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=1"


@pytest.fixture(scope="module")
def client(seeded_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(seeded_url)) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.postgres
def test_health_reports_database_and_storage_mode(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "storage_mode": "native"}


def test_health_is_503_when_database_unreachable() -> None:
    with TestClient(create_app(UNREACHABLE_URL, db_timeout_s=0.3)) as c:
        r = c.get("/health")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "database": "unavailable", "storage_mode": None}


def test_other_routes_are_503_when_database_unreachable() -> None:
    with TestClient(create_app(UNREACHABLE_URL, db_timeout_s=0.3)) as c:
        r = c.get("/v1/vehicles", headers=bearer("whatever"))
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "tag:fleetpulse.dev,2026:problems/database-unavailable",
        "title": "Database unavailable; retry later",
        "status": 503,
        "detail": "the database cannot be reached",
        "instance": "/v1/vehicles",
    }


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["/v1/vehicles", "/v1/vehicles/VIN-N1/latest"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("not-a-real-token"),
        {"Authorization": "Basic b3BzOnNlY3JldA=="},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "unknown", "basic-scheme", "empty"],
)
def test_requests_without_a_valid_token_are_401(
    client: TestClient, tokens: dict[str, str], path: str, headers: dict[str, str]
) -> None:
    r = client.get(path, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.postgres
def test_revoked_token_is_401(client: TestClient, seeded_url: str) -> None:
    with psycopg.connect(seeded_url) as conn:
        token = create_token(conn, "temp", Role.ADMIN)
    assert client.get("/v1/vehicles", headers=bearer(token)).status_code == 200
    with psycopg.connect(seeded_url) as conn:
        assert revoke_token(conn, "temp") == 1
        assert revoke_token(conn, "temp") == 0
    r = client.get("/v1/vehicles", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.postgres
def test_a_token_for_a_centre_outside_the_registry_is_refused(seeded_url: str) -> None:
    """It would see no vehicle: a typo in the centre id must not pass silently."""
    with psycopg.connect(seeded_url) as conn, pytest.raises(UnknownServiceCentre, match="sc-nrth"):
        create_token(conn, "typo-desk", Role.SERVICE_CENTRE, "sc-nrth")


@pytest.mark.postgres
def test_tokens_are_stored_only_as_sha256(seeded_url: str) -> None:
    with psycopg.connect(seeded_url) as conn:
        token = create_token(conn, "hash-check", Role.SERVICE_CENTRE, "sc-north")
        rows = conn.execute("SELECT * FROM api_tokens WHERE name = 'hash-check'").fetchall()
        revoke_token(conn, "hash-check")
    assert len(token) >= 43
    assert len(rows) == 1
    assert bytes(rows[0][0]) == hashlib.sha256(token.encode()).digest()
    assert not any(token in str(col) for col in rows[0])


def test_create_token_rejects_a_role_centre_mismatch() -> None:
    # Validation happens before any SQL, so no connection is needed.
    with pytest.raises(ValueError):
        create_token(None, "x", Role.SERVICE_CENTRE)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        create_token(None, "x", Role.ADMIN, "sc-north")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        create_token(None, "x", "superuser")  # type: ignore[arg-type]


@pytest.mark.postgres
def test_admin_sees_every_vehicle(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.get("/v1/vehicles", headers=bearer(tokens["admin"]))
    assert r.status_code == 200
    body = r.json()
    assert [v["vehicle_id"] for v in body["items"]] == sorted(v[0] for v in VEHICLES)
    assert (body["limit"], body["next_cursor"]) == (100, None)
    n1 = next(v for v in body["items"] if v["vehicle_id"] == "VIN-N1")
    assert n1["model_id"] == "Model N" and n1["service_centre_id"] == "sc-north" and n1["last_seen_at"]


@pytest.mark.postgres
def test_vehicle_list_pages(client: TestClient, tokens: dict[str, str]) -> None:
    pages = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        body = client.get("/v1/vehicles", params=params, headers=bearer(tokens["admin"])).json()
        pages.append([v["vehicle_id"] for v in body["items"]])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == [["VIN-N1", "VIN-N2"], ["VIN-N3", "VIN-S1"], ["VIN-U1"]]


@pytest.mark.postgres
def test_service_centre_sees_only_its_own_vehicles(client: TestClient, tokens: dict[str, str]) -> None:
    north = client.get("/v1/vehicles", headers=bearer(tokens["north"])).json()
    assert [v["vehicle_id"] for v in north["items"]] == ["VIN-N1", "VIN-N2", "VIN-N3"]
    south = client.get("/v1/vehicles", headers=bearer(tokens["south"])).json()
    assert [v["vehicle_id"] for v in south["items"]] == ["VIN-S1"]


@pytest.mark.postgres
def test_other_centres_vehicle_looks_like_a_missing_one(client: TestClient, tokens: dict[str, str]) -> None:
    hidden = client.get("/v1/vehicles/VIN-S1/latest", headers=bearer(tokens["north"]))
    unassigned = client.get("/v1/vehicles/VIN-U1/latest", headers=bearer(tokens["north"]))
    missing = client.get("/v1/vehicles/VIN-NOPE/latest", headers=bearer(tokens["north"]))
    assert hidden.status_code == unassigned.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == "vehicle 'VIN-S1' not found"
    assert missing.json()["detail"] == "vehicle 'VIN-NOPE' not found"
    assert client.get("/v1/vehicles/VIN-S1/latest", headers=bearer(tokens["admin"])).status_code == 200


@pytest.mark.postgres
def test_latest_returns_values_with_units(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.get("/v1/vehicles/VIN-N1/latest", headers=bearer(tokens["north"]))
    assert r.status_code == 200
    body = r.json()
    assert body["vehicle_id"] == "VIN-N1"
    assert body["ts"] == "2025-03-01T10:00:00Z"
    assert body["signals"] == {
        SPEED: {"value": 42.5, "unit": "km/h", "ts": "2025-03-01T10:00:00Z"},
        TYRE_FL: {"value": 231.0, "unit": "kPa", "ts": "2025-03-01T09:59:58Z"},
    }


@pytest.mark.postgres
def test_latest_keeps_signals_outside_the_catalogue_without_a_unit(
    client: TestClient, tokens: dict[str, str]
) -> None:
    signals = client.get("/v1/vehicles/VIN-S1/latest", headers=bearer(tokens["south"])).json()["signals"]
    assert signals[SPEED]["unit"] == "km/h"
    assert signals["Vehicle.Future.Signal"]["unit"] is None


@pytest.mark.postgres
def test_latest_of_a_vehicle_without_data_is_404(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.get("/v1/vehicles/VIN-N3/latest", headers=bearer(tokens["north"]))
    assert r.status_code == 404
    assert r.json()["detail"] == "vehicle 'VIN-N3' has not sent any data yet"


@pytest.mark.postgres
@pytest.mark.parametrize("vehicle_id", ["bad%20id", "semi;colon", "x" * 65, "%C3%A9t%C3%A9"])
def test_invalid_vehicle_id_is_422(client: TestClient, tokens: dict[str, str], vehicle_id: str) -> None:
    r = client.get(f"/v1/vehicles/{vehicle_id}/latest", headers=bearer(tokens["admin"]))
    assert r.status_code == 422
    assert r.json()["errors"][0]["location"] == ["path", "vehicle_id"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"limit": 2**63},  # an offset this large was a 500: "bigint out of range" (schemathesis)
        {"limit": 2**64 + 7},
    ],
    ids=str,
)
def test_invalid_paging_is_422(client: TestClient, tokens: dict[str, str], params: dict) -> None:
    r = client.get("/v1/vehicles", params=params, headers=bearer(tokens["admin"]))
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["location"] == ["query", next(iter(params))]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "since",
    [
        "0.5",  # was read as a Unix time (schemathesis)
        "0",
        "1740823200",
        "2025-03-01",  # a date alone: midnight in which zone?
        "2025-03-01T10:00:00",  # no offset
        "2025-03-01 10:00:00Z",
        "2025-03-01T10:00Z",
        "2025-13-01T10:00:00Z",
        "2025-03-01T10:00:00+24:00",
        "0000-01-01T00:00:00Z",
        "９９９９-01-01T00:00:00Z",  # non-ASCII digits
        "yesterday",
        "",
    ],
)
def test_since_must_be_an_rfc3339_date_time_with_a_zone(
    client: TestClient, tokens: dict[str, str], since: str
) -> None:
    r = client.get("/v1/vehicles/VIN-N1/dtc", params={"since": since}, headers=bearer(tokens["admin"]))
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["location"] == ["query", "since"]
    assert "RFC 3339" in error["message"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("since", "reports"),
    [
        ("2025-03-01T09:30:00Z", 1),
        ("2025-03-01t09:30:00z", 1),  # RFC 3339 letters are case-insensitive
        ("2025-03-01T11:30:00+02:00", 1),
        ("2025-03-01T09:00:00.000001Z", 1),
        ("2025-03-01T08:59:60Z", 2),  # a leap second reads as the next one, 09:00:00 (inclusive)
        ("2025-03-01T08:59:59.999999999Z", 2),  # nanoseconds are cut to microseconds
        ("0001-01-01T00:00:00+23:59", 2),
        ("9999-12-31T23:59:59-23:59", 0),
    ],
)
def test_since_accepts_rfc3339_date_times(
    client: TestClient, tokens: dict[str, str], since: str, reports: int
) -> None:
    r = client.get("/v1/vehicles/VIN-N1/dtc", params={"since": since}, headers=bearer(tokens["admin"]))
    assert r.status_code == 200, r.text
    assert len(r.json()["reports"]) == reports


@pytest.mark.postgres
def test_unknown_query_parameters_are_422_after_the_token_check(
    client: TestClient, tokens: dict[str, str]
) -> None:
    typo = client.get("/v1/vehicles/VIN-N1/dtc", params={"sinse": TS}, headers=bearer(tokens["admin"]))
    assert typo.status_code == 422
    (error,) = typo.json()["errors"]
    assert error["location"] == ["query", "sinse"] and "limit, since" in error["message"]
    assert (
        client.get("/v1/vehicles/VIN-N1/status", params={"x": "1"}, headers=bearer(tokens["admin"]))
        .json()["errors"][0]["message"]
        .endswith("takes: none")
    )
    assert client.get("/v1/vehicles", params={"x": "1"}).status_code == 401


@pytest.mark.postgres
def test_role_guard_forbids_other_roles(seeded_url: str, tokens: dict[str, str]) -> None:
    app = create_app(seeded_url)

    @app.get("/admin-probe")
    def probe(principal: Annotated[Principal, Depends(require_role(Role.ADMIN))]) -> dict[str, str]:
        return {"name": principal.name}

    with TestClient(app) as c:
        assert c.get("/admin-probe", headers=bearer(tokens["north"])).status_code == 403
        assert c.get("/admin-probe", headers=bearer(tokens["admin"])).json() == {"name": "ops"}


def _guards(dependant: Dependant) -> list[RoleGuard]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, RoleGuard)]
    return found + [g for d in dependant.dependencies for g in _guards(d)]


def test_every_route_but_health_declares_a_role() -> None:
    found = api_routes(create_app(UNREACHABLE_URL))
    assert {r.path for r in found} >= {
        "/health",
        "/v1/vehicles",
        "/v1/vehicles/{vehicle_id}/latest",
        "/v1/vehicles/{vehicle_id}/dtc",
        "/v1/vehicles/{vehicle_id}/software",
        "/v1/vehicles/{vehicle_id}/status",
        "/v1/bookings",
        "/v1/bookings/{booking_id}",
        "/v1/bookings/{booking_id}/complete",
        "/v1/bookings/{booking_id}/no-show",
        "/v1/bookings/{booking_id}/cancel",
        "/v1/bookings/{booking_id}/reschedule",
        *FLEET_QUERY_PATHS,
    }
    for r in found:
        public = r.path == "/health" or r.path.startswith("/map")  # the map page holds no data
        assert bool(_guards(r.route.dependant)) == (not public), r.path
        assert public or r.path.startswith("/v1/"), r.path


@pytest.mark.postgres
def test_every_documented_route_but_health_needs_a_token(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        url = path.replace("{vehicle_id}", "VIN-N1").replace("{booking_id}", "1").replace("{alarm_id}", "1")
        for method in operations:
            r = client.request(method.upper(), url, json={} if method == "post" else None)
            assert r.status_code == (200 if path == "/health" else 401), (method, path)


def test_missing_token_is_401_before_touching_the_database() -> None:
    with TestClient(create_app(UNREACHABLE_URL, db_timeout_s=0.3)) as c:
        r = c.get("/v1/vehicles")
    assert r.status_code == 401


@pytest.mark.postgres
def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"] == {"title": "fleetpulse API", "version": "0.1.0"}
    assert set(spec["paths"]) == {
        "/health",
        "/v1/vehicles",
        "/v1/vehicles/{vehicle_id}/latest",
        "/v1/vehicles/{vehicle_id}/dtc",
        "/v1/vehicles/{vehicle_id}/status",
        "/v1/vehicles/{vehicle_id}/software",
        "/v1/bookings",
        "/v1/bookings/{booking_id}",
        "/v1/bookings/{booking_id}/complete",
        "/v1/bookings/{booking_id}/no-show",
        "/v1/bookings/{booking_id}/cancel",
        "/v1/bookings/{booking_id}/reschedule",
        "/v1/audit/reads",
        "/v1/alarms",
        "/v1/alarms/{alarm_id}",
        "/v1/alarms/{alarm_id}/acknowledge",
        "/v1/alarms/{alarm_id}/resolve",
        "/v1/vehicles/{vehicle_id}/alarms",
        *FLEET_QUERY_PATHS,
        *MAP_PATHS,
    }
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert client.get("/docs").status_code == 200


def test_openapi_documents_every_error_a_route_can_return() -> None:
    """401 and 503 on every route behind a token (schemathesis found the 401 missing), 404 on every
    per-vehicle, per-booking and per-fleet route, 403 wherever a role guard is narrower than "any
    role", all with a body schema; and the bounds of every integer parameter."""
    spec = create_app(UNREACHABLE_URL).openapi()
    error = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    narrow = {
        r.path
        for r in api_routes(create_app(UNREACHABLE_URL))
        if any(g.roles != set(Role) for g in _guards(r.route.dependant))
    }
    assert narrow >= {"/v1/vehicles", *FLEET_QUERY_PATHS}
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            where = f"{method.upper()} {path}"
            if path == "/health":
                assert "401" not in responses, where
                continue
            assert responses["401"]["content"] == error, where
            assert "WWW-Authenticate" in responses["401"]["headers"], where
            assert responses["503"]["content"] == error, where
            assert ("404" in responses) == any(
                p in path for p in ("{vehicle_id}", "{booking_id}", "{fleet_id}", "{alarm_id}")
            ), where
            assert ("403" in responses) == (path in narrow), where
            if op.get("parameters"):
                invalid = {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/ValidationProblem"}}
                }
                assert responses["422"]["content"] == invalid, where
            for param in op.get("parameters", []):
                if param["schema"].get("type") == "integer":
                    assert {"minimum", "maximum"} <= set(param["schema"]), (where, param["name"])


@pytest.mark.postgres
def test_dtc_reports_newest_first_with_the_current_set(client: TestClient, tokens: dict[str, str]) -> None:
    body = client.get("/v1/vehicles/VIN-N1/dtc", headers=bearer(tokens["north"])).json()
    assert body["current"] == {
        "ts": "2025-03-01T10:00:00Z",
        "codes": ["P0128"],
        "agent_version": "0.1.0",
        "software": {"ECM": "4.2.0"},
    }
    assert [r["codes"] for r in body["reports"]] == [["P0128"], ["P0301", "P0302"]]
    recent = client.get(
        "/v1/vehicles/VIN-N1/dtc", params={"since": "2025-03-01T09:30:00Z"}, headers=bearer(tokens["north"])
    ).json()
    assert [r["codes"] for r in recent["reports"]] == [["P0128"]]


@pytest.mark.postgres
def test_dtc_reports_are_scoped_like_every_vehicle_route(client: TestClient, tokens: dict[str, str]) -> None:
    assert client.get("/v1/vehicles/VIN-S1/dtc", headers=bearer(tokens["north"])).status_code == 404
    assert client.get("/v1/vehicles/VIN-S1/dtc", headers=bearer(tokens["south"])).json()["current"][
        "codes"
    ] == ["C0035"]
    quiet = client.get("/v1/vehicles/VIN-N2/dtc", headers=bearer(tokens["north"])).json()
    assert quiet["current"] is None and quiet["reports"] == []
    bad = client.get(
        "/v1/vehicles/VIN-N1/dtc", params={"since": "yesterday"}, headers=bearer(tokens["north"])
    )
    assert bad.status_code == 422


@pytest.mark.postgres
def test_status_shows_the_check_in_and_is_scoped(client: TestClient, tokens: dict[str, str]) -> None:
    body = client.get("/v1/vehicles/VIN-N1/status", headers=bearer(tokens["north"])).json()
    assert body["state"] == "online" and body["reported_at"] == "2025-03-01T10:00:00Z"
    assert body["details"]["campaign_id"] == "brakes"
    quiet = client.get("/v1/vehicles/VIN-N2/status", headers=bearer(tokens["north"])).json()
    assert quiet == {"vehicle_id": "VIN-N2", "state": None, "reported_at": None, "details": {}}
    assert client.get("/v1/vehicles/VIN-N1/status", headers=bearer(tokens["south"])).status_code == 404
