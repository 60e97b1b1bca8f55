"""The fleet-query routes over HTTP against a real PostgreSQL: every route with every role, on the
caller's fleet, a foreign fleet and one that does not exist. Admins see every fleet, a fleet
operator only the fleets its token names (others are 404 with no data), a service centre gets 403,
no token 401. Answers equal the query module's (which tests/api/test_fleet_queries.py checks
against the raw rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import create_app
from api.auth import Principal, Role, UnknownFleetId, create_token
from api.fleet_queries import FleetQuery, run_query
from ingest import TelemetryStore
from tests.api import fleet_scenario as fs

pytestmark = pytest.mark.postgres

ROUTES = [q.value for q in FleetQuery]


@pytest.fixture(scope="module")
def fleet_url(seeded_url: str) -> str:
    scenario = fs.make_scenario(21, vehicles=6, hours=6)
    with psycopg.connect(seeded_url, autocommit=True) as conn:
        fs.register(conn, scenario)
    store = TelemetryStore(seeded_url)
    try:
        store.ensure_partitions()
        fs.deliver(store, scenario.on_time + scenario.late)
    finally:
        store.close()
    return seeded_url


@pytest.fixture(scope="module")
def callers(fleet_url: str) -> dict[str, str]:
    with psycopg.connect(fleet_url) as conn:
        return {
            "admin": create_token(conn, "fq-admin", Role.ADMIN),
            "centre": create_token(conn, "fq-centre", Role.SERVICE_CENTRE, "sc-north"),
            "operator": create_token(conn, "fq-operator", Role.FLEET_OPERATOR, fleet_ids=["fq-main"]),
            "other": create_token(conn, "fq-other-op", "fleet_operator", fleet_ids=["fq-other"]),
        }


@pytest.fixture(scope="module")
def client(fleet_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_url)) as c:
        yield c


def get(client: TestClient, token: str | None, fleet: str, route: str, **params: str):  # noqa: ANN201
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(f"/v1/fleets/{fleet}/{route}", headers=headers, params=params)


# caller -> fleet -> expected status
EXPECTED = {
    "admin": {"fq-main": 200, "fq-other": 200, "fq-none": 404},
    "operator": {"fq-main": 200, "fq-other": 404, "fq-none": 404},
    "other": {"fq-main": 404, "fq-other": 200, "fq-none": 404},
    "centre": {"fq-main": 403, "fq-other": 403, "fq-none": 403},
    None: {"fq-main": 401, "fq-other": 401, "fq-none": 401},
}


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_with_every_role_and_fleet(
    client: TestClient, callers: dict[str, str], fleet_url: str, route: str
) -> None:
    for caller, by_fleet in EXPECTED.items():
        for fleet, status in by_fleet.items():
            r = get(client, callers[caller] if caller else None, fleet, route)
            assert r.status_code == status, (caller, fleet, r.text)
            body = r.json()
            if status != 200:
                assert set(body) == {"type", "title", "status", "detail", "instance"}, body  # no data
                assert "FQ21" not in r.text
                continue
            assert body["fleet_id"] == fleet and body["query"] == route
            with psycopg.connect(fleet_url, autocommit=True) as conn:
                direct = run_query(
                    conn, FleetQuery(route), fleet, until=dt.datetime.fromisoformat(body["until"])
                )
            members = {v for v, _ in fs.make_scenario(21, vehicles=6, hours=6).fleet_vehicles[fleet]}
            ids = [item["vehicle_id"] for item in body["items"] if "vehicle_id" in item]
            assert set(ids) <= members  # never another fleet's vehicle
            assert len(body["items"]) == len(direct.rows)
            if route != "daily-activity":
                assert ids == [row.vehicle_id for row in direct.rows]  # type: ignore[union-attr]


def test_answers_carry_their_window_and_values(client: TestClient, callers: dict[str, str]) -> None:
    r = get(client, callers["operator"], "fq-main", "daily-activity", until="2026-01-05T10:17:03Z", days="3")
    assert r.status_code == 200
    body = r.json()
    assert body["window_end"].startswith("2026-01-05T10:10:00")
    assert body["window_start"].startswith("2026-01-03T00:00:00")
    days = [item["day"] for item in body["items"]]
    assert sorted(set(days)) == ["2026-01-03", "2026-01-04", "2026-01-05"] and days == sorted(days)
    assert len(days) == 3 * 4  # one row per day and model (3 models and "no model" in fq-main)
    r = get(client, callers["admin"], "fq-main", "last-location")
    assert r.status_code == 200 and r.json()["items"], r.text
    item = r.json()["items"][0]
    assert set(item) == {"vehicle_id", "latitude_deg", "latitude_ts", "longitude_deg", "longitude_ts"}


@pytest.mark.parametrize(
    "params",
    [
        {"until": "2025-03-01"},  # a date alone
        {"until": "2025-03-01T10:00:00"},  # no time zone
        {"until": "0.5"},
        {"days": "0"},
        {"days": "32"},
        {"sinse": "2025-03-01T00:00:00Z"},  # unknown parameter
    ],
)
def test_bad_parameters_are_422(client: TestClient, callers: dict[str, str], params: dict[str, str]) -> None:
    r = get(client, callers["admin"], "fq-main", "daily-activity", **params)
    assert r.status_code == 422, r.text


def test_a_fleet_operator_has_no_vehicle_or_booking_routes(
    client: TestClient, callers: dict[str, str]
) -> None:
    for path in (
        "/v1/vehicles",
        "/v1/vehicles/VIN-N1/latest",
        "/v1/vehicles/FQ21-0/dtc",
        "/v1/bookings",
        "/v1/bookings/1",
    ):
        r = client.get(path, headers={"Authorization": f"Bearer {callers['operator']}"})
        assert r.status_code == 403, (path, r.text)


def test_fleet_operator_tokens_name_registry_fleets(fleet_url: str) -> None:
    with psycopg.connect(fleet_url) as conn:
        with pytest.raises(UnknownFleetId):
            create_token(conn, "fq-typo", Role.FLEET_OPERATOR, fleet_ids=["fq-mian"])
        with pytest.raises(ValueError):
            create_token(conn, "fq-empty", Role.FLEET_OPERATOR)
        with pytest.raises(ValueError):
            create_token(conn, "fq-admin-fleets", Role.ADMIN, fleet_ids=["fq-main"])
        row = conn.execute("SELECT count(*) FROM api_tokens WHERE name LIKE 'fq-typo%%'").fetchone()
    assert row == (0,)


def test_principal_scopes() -> None:
    assert Principal("a", Role.ADMIN).visible_fleet_ids is None
    assert Principal("o", Role.FLEET_OPERATOR, fleet_ids=("f1", "f2")).visible_fleet_ids == ["f1", "f2"]
    assert Principal("c", Role.SERVICE_CENTRE, "sc").visible_fleet_ids == []
    with pytest.raises(ValueError):
        Principal("c", Role.SERVICE_CENTRE, "sc", fleet_ids=("f1",))
