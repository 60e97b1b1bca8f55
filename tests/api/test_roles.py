"""Every route of the app's route table (so a route added later is walked too) with every role,
aimed at a vehicle, booking, alarm and fleet outside the caller's scope: the answer is a 403 or a
404 problem with no data, and the 404 is the very answer a resource that does not exist gets. List
routes, which take no id, show a scoped role nothing of what lies outside its scope. And the
engineer's own rules: fleet-wide reads, coarse positions, no acts."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from api import create_app
from api.auth import Role, create_token
from api.problems import TYPE_PREFIX
from tests.api.route_table import api_routes

pytestmark = pytest.mark.postgres

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
MISSING = {"vehicle_id": "NO-SUCH-VEHICLE", "booking_id": "9223372036854775807",
           "alarm_id": "9223372036854775807", "fleet_id": "no-such-fleet"}  # fmt: skip
# A valid body for each route body model, so the request gets past validation to the scope check.
BODIES = {"CancelIn": {"reason": "role walk"}, "RescheduleIn": {}}
ROLES = ("admin", "service_centre", "fleet_operator", "engineer")
LATEST = {
    "Vehicle.CurrentLocation.Latitude": {"value": 48.137154, "ts": T0.isoformat()},
    "Vehicle.CurrentLocation.Longitude": {"value": 11.576124, "ts": T0.isoformat()},
    "Vehicle.Speed": {"value": 12.25, "ts": T0.isoformat()},
}
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


@pytest.fixture(scope="module")
def world(seeded_url: str) -> dict[str, Any]:
    """Two of everything: north (centre sc-north, fleet fl-n) and south (sc-south, fl-s), each with
    a vehicle, an alarm and a booking. Ids of the south side are the foreign ones."""
    ids: dict[str, dict[str, str]] = {}
    with psycopg.connect(seeded_url) as conn:
        conn.execute("INSERT INTO fleets (fleet_id, name) VALUES ('fl-n', 'N'), ('fl-s', 'S')")
        for side, centre, fleet, vid in (
            ("north", "sc-north", "fl-n", "RW-N"),
            ("south", "sc-south", "fl-s", "RW-S"),
        ):
            conn.execute(
                "INSERT INTO vehicles (vehicle_id, service_centre_id, fleet_id) VALUES (%s, %s, %s)",
                (vid, centre, fleet),
            )
            conn.execute(
                "INSERT INTO vehicle_latest (vehicle_id, ts, signals) VALUES (%s, %s, %s)",
                (vid, T0, Jsonb(LATEST)),
            )
            (alarm_id,) = conn.execute(
                "INSERT INTO alarms (vehicle_id, fault, severity, raised_at, updated_at, explanation)"
                " VALUES (%s, 'tyre_slow_leak', 'MAJOR', %s, %s, 'leak') RETURNING alarm_id",
                (vid, T0, T0),
            ).fetchone()
            (remedy_id,) = conn.execute(
                "INSERT INTO remedies (alarm_id, vehicle_id, fault, kind, status, reason)"
                " VALUES (%s, %s, 'tyre_slow_leak', 'shop_visit', 'scheduled', 'test') RETURNING remedy_id",
                (alarm_id, vid),
            ).fetchone()
            (booking_id,) = conn.execute(
                "INSERT INTO bookings (remedy_id, vehicle_id, service_centre_id, skill, starts_at, ends_at,"
                " deadline, status, reason) VALUES (%s, %s, %s, 'tyres', %s, %s, %s, 'booked', 'test')"
                " RETURNING booking_id",
                (remedy_id, vid, centre, T0, T0 + dt.timedelta(hours=1), T0 + dt.timedelta(days=1)),
            ).fetchone()
            ids[side] = {
                "vehicle_id": vid,
                "alarm_id": str(alarm_id),
                "booking_id": str(booking_id),
                "fleet_id": fleet,
            }
        tokens = {
            "admin": create_token(conn, "rw-admin", Role.ADMIN),
            "service_centre": create_token(conn, "rw-north", Role.SERVICE_CENTRE, "sc-north"),
            "fleet_operator": create_token(conn, "rw-op", Role.FLEET_OPERATOR, fleet_ids=["fl-n"]),
            "engineer": create_token(conn, "rw-eng", Role.ENGINEER),
        }
    return {"ids": ids, "tokens": tokens}


@pytest.fixture(scope="module")
def client(seeded_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(seeded_url)) as c:
        yield c


def foreign_ids(role: str, ids: dict[str, dict[str, str]]) -> dict[str, str]:
    """What lies outside the role's scope: the south side for the scoped roles; for the roles that
    see every vehicle, alarm and fleet (admin, engineer), only what does not exist."""
    if role in ("service_centre", "fleet_operator"):
        return ids["south"]
    return MISSING


def leaks(body: Any, foreign: dict[str, str]) -> list[str]:
    """Every foreign id that appears in `body` as an id field or as a vehicle id anywhere."""
    found = []
    text = json.dumps(body)
    if foreign["vehicle_id"] in text:
        found.append(foreign["vehicle_id"])

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("alarm_id", "booking_id") and str(value) == foreign[key]:
                    found.append(f"{key}={value}")
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)
    return found


def request(client: TestClient, route, token: str, values: dict[str, str]):  # noqa: ANN001, ANN201
    path = route.path
    for name in route.route.param_convertors:
        assert name in values, f"{route.path}: add a foreign and a missing value for {{{name}}} to this test"
        path = path.replace(f"{{{name}}}", values[name])
    body = route.route.body_field
    json_body = None
    if body is not None:
        name = body.field_info.annotation.__name__ if body.field_info.annotation else ""
        assert name in BODIES, f"{route.path}: add a valid {name} body to BODIES"
        json_body = BODIES[name]
    (method,) = route.methods - {"HEAD"}
    operation = client.app.openapi()["paths"][route.path][method.lower()]  # type: ignore[attr-defined]
    query = [p for p in operation.get("parameters", []) if p["in"] == "query" and p.get("required")]
    for name in (p["name"] for p in query):
        assert name in REQUIRED_QUERY, f"{route.path}: add a valid value for the query parameter {name}"
    params = {p["name"]: REQUIRED_QUERY[p["name"]] for p in query}
    headers = {"Authorization": f"Bearer {token}"}
    return client.request(method, path, headers=headers, json=json_body, params=params)


# Required query parameters (the map's bounding box): a box around the seeded vehicles.
REQUIRED_QUERY = {"min_lon": "11.0", "min_lat": "48.0", "max_lon": "12.0", "max_lat": "49.0"}


@pytest.mark.parametrize("role", ROLES)
def test_every_route_with_every_role_and_a_foreign_resource(
    client: TestClient, world: dict[str, Any], seeded_url: str, role: str
) -> None:
    token = world["tokens"][role]
    foreign = foreign_ids(role, world["ids"])
    # Public routes carry no data: /health, and the map page with its static files (test_map_page.py).
    routes = [
        r for r in api_routes(create_app(seeded_url)) if r.path != "/health" and not r.path.startswith("/map")
    ]
    assert len(routes) >= 22  # 5 vehicle, 6 booking, 6 fleet-query, 5 alarm routes when written
    with psycopg.connect(seeded_url) as conn:
        before = conn.execute(
            "SELECT alarm_id, cleared_at, acknowledged_at FROM alarms ORDER BY 1"
        ).fetchall()
        bookings_before = conn.execute("SELECT booking_id, status FROM bookings ORDER BY 1").fetchall()
    for route in routes:
        where = f"{role} {sorted(route.methods)} {route.path}"
        answer = request(client, route, token, foreign)
        if not route.route.param_convertors:  # a list: whatever it shows, nothing foreign
            assert answer.status_code in (200, 403), (where, answer.text)
            if role in ("service_centre", "fleet_operator") and answer.status_code == 200:
                assert not leaks(answer.json(), foreign), (where, answer.text)
            continue
        assert answer.status_code in (403, 404), (where, answer.text)
        assert answer.headers["content-type"] == "application/problem+json", where
        assert set(answer.json()) == PROBLEM_KEYS, (where, answer.text)  # a problem, no data
        assert not leaks(answer.json(), {**foreign, "vehicle_id": "\0"}), where
        if answer.status_code == 404:  # exactly what a missing one gets
            missing = request(client, route, token, MISSING)
            assert missing.status_code == 404, (where, missing.text)
            same = answer.json()["detail"]
            for name in route.route.param_convertors:
                same = same.replace(foreign[name], MISSING[name])
            assert same == missing.json()["detail"], where
    with psycopg.connect(seeded_url) as conn:  # no act went through
        assert (
            conn.execute("SELECT alarm_id, cleared_at, acknowledged_at FROM alarms ORDER BY 1").fetchall()
            == before
        )
        assert (
            conn.execute("SELECT booking_id, status FROM bookings ORDER BY 1").fetchall() == bookings_before
        )


def test_the_engineer_reads_every_vehicle_with_coarse_positions_and_acts_on_nothing(
    client: TestClient, world: dict[str, Any]
) -> None:
    auth = {"Authorization": f"Bearer {world['tokens']['engineer']}"}
    ids = world["ids"]
    listed = {
        v["vehicle_id"]
        for v in client.get("/v1/vehicles", params={"limit": 1000}, headers=auth).json()["items"]
    }
    assert {"RW-N", "RW-S"} <= listed
    latest = client.get("/v1/vehicles/RW-S/latest", headers=auth).json()["signals"]
    assert latest["Vehicle.CurrentLocation.Latitude"]["value"] == 48.14
    assert latest["Vehicle.CurrentLocation.Longitude"]["value"] == 11.58
    assert latest["Vehicle.Speed"]["value"] == 12.25
    admin = {"Authorization": f"Bearer {world['tokens']['admin']}"}
    exact = client.get("/v1/vehicles/RW-S/latest", headers=admin).json()["signals"]
    assert exact["Vehicle.CurrentLocation.Latitude"]["value"] == 48.137154
    for side in ("north", "south"):
        alarm = ids[side]["alarm_id"]
        assert client.get(f"/v1/alarms/{alarm}", headers=auth).status_code == 200
        for act in ("acknowledge", "resolve"):
            r = client.post(f"/v1/alarms/{alarm}/{act}", headers=auth)
            assert r.status_code == 403 and r.json()["type"] == TYPE_PREFIX + "forbidden"
        r = client.post(f"/v1/bookings/{ids[side]['booking_id']}/complete", headers=auth)
        assert r.status_code == 403
    assert client.get("/v1/bookings", headers=auth).status_code == 403
    assert client.get("/v1/fleets/fl-n/last-location", headers=auth).status_code == 403  # exact positions
    assert "owner" not in json.dumps(client.get("/v1/vehicles", headers=auth).json())
