"""Cursor pagination against a real PostgreSQL: walking every page of a list route, under any page
size and filter, returns every row the caller may see exactly once, in the route's order, even when
many rows share a sort time; a cursor from another route or other filters is a 400 problem."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from api.problems import TYPE_PREFIX

pytestmark = pytest.mark.postgres

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
EXTRA_VEHICLES = [f"PG-{i:02d}" for i in range(23)]
BOOKING_STARTS = [T0 + dt.timedelta(hours=i if i < 8 else i % 4) for i in range(30)]  # many share one
STATUSES = ("booked", "completed", "cancelled", "no_show")


@pytest.fixture(scope="module")
def paged_url(seeded_url: str) -> str:
    """The seed plus 23 vehicles (north, south, none) and 30 bookings on four start times."""
    with psycopg.connect(seeded_url) as conn:
        for i, vid in enumerate(EXTRA_VEHICLES):
            centre = ("sc-north", "sc-south", None)[i % 3]
            conn.execute(
                "INSERT INTO vehicles (vehicle_id, service_centre_id) VALUES (%s, %s)", (vid, centre)
            )
        for i, starts in enumerate(BOOKING_STARTS):
            vid = EXTRA_VEHICLES[i % len(EXTRA_VEHICLES)]
            (alarm_id,) = conn.execute(
                "INSERT INTO alarms (vehicle_id, fault, severity, raised_at, updated_at, cleared_at)"
                " VALUES (%s, %s, 'MAJOR', %s, %s, %s) RETURNING alarm_id",
                (vid, f"pg-fault-{i}", T0, T0, T0),
            ).fetchone()
            (remedy_id,) = conn.execute(
                "INSERT INTO remedies (alarm_id, vehicle_id, fault, kind, status, reason)"
                " VALUES (%s, %s, %s, 'shop_visit', 'scheduled', 'test') RETURNING remedy_id",
                (alarm_id, vid, f"pg-fault-{i}"),
            ).fetchone()
            # Not 'booked' or 'completed' when sharing a slot: a centre's slot holds one visit.
            status = STATUSES[i % 4] if i < 8 else ("cancelled", "no_show")[i % 2]
            conn.execute(
                "INSERT INTO bookings (remedy_id, vehicle_id, service_centre_id, skill, starts_at, ends_at,"
                " deadline, status, reason) VALUES (%s, %s, %s, 'tyres', %s, %s, %s, %s, 'test')",
                (remedy_id, vid, ("sc-north", "sc-south")[i % 2], starts, starts + dt.timedelta(hours=1),
                 starts + dt.timedelta(days=1), status),
            )  # fmt: skip
    return seeded_url


@pytest.fixture(scope="module")
def client(paged_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(paged_url)) as c:
        yield c


def walk(client: TestClient, token: str, path: str, params: dict[str, Any]) -> list[dict]:
    """Every item of every page, following next_cursor to the end."""
    items: list[dict] = []
    query = dict(params)
    for _ in range(1000):
        r = client.get(path, params=query, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= query["limit"]
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        assert body["items"], "a page before the last is never empty"
        query["cursor"] = body["next_cursor"]
    raise AssertionError("more than 1000 pages")


def expected(url: str, sql: str, *args: object) -> list[Any]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(sql, args).fetchall()]  # type: ignore[arg-type]


_settings = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@_settings
@given(caller=st.sampled_from(["admin", "north", "south"]), limit=st.integers(1, 32))
def test_walking_the_vehicle_pages_returns_every_vehicle_once(
    client: TestClient, tokens: dict[str, str], paged_url: str, caller: str, limit: int
) -> None:
    items = walk(client, tokens[caller], "/v1/vehicles", {"limit": limit})
    centre = {"admin": None, "north": "sc-north", "south": "sc-south"}[caller]
    want = expected(
        paged_url,
        "SELECT vehicle_id FROM vehicles WHERE %s::text IS NULL OR service_centre_id = %s"
        " ORDER BY vehicle_id",
        centre,
        centre,
    )
    assert [v["vehicle_id"] for v in items] == want


@_settings
@given(
    caller=st.sampled_from(["admin", "north", "south"]),
    limit=st.integers(1, 32),
    status=st.none() | st.sampled_from(STATUSES),
    since_h=st.none() | st.integers(0, 8),
)
def test_walking_the_booking_pages_returns_every_booking_once(
    client: TestClient,
    tokens: dict[str, str],
    paged_url: str,
    caller: str,
    limit: int,
    status: str | None,
    since_h: int | None,
) -> None:
    params: dict[str, Any] = {"limit": limit}
    since = None if since_h is None else T0 + dt.timedelta(hours=since_h)
    if status:
        params["status"] = status
    if since:
        params["since"] = since.isoformat()
    items = walk(client, tokens[caller], "/v1/bookings", params)
    centre = {"admin": None, "north": "sc-north", "south": "sc-south"}[caller]
    want = expected(
        paged_url,
        "SELECT booking_id FROM bookings WHERE (%s::text IS NULL OR service_centre_id = %s)"
        " AND (%s::text IS NULL OR status = %s) AND (%s::timestamptz IS NULL OR starts_at >= %s)"
        " ORDER BY starts_at DESC, booking_id DESC",
        centre, centre, status, status, since, since,
    )  # fmt: skip
    assert [b["booking_id"] for b in items] == want
    assert len(set(want)) == len(want)


def test_a_cursor_from_another_route_or_filter_is_a_400_problem(
    client: TestClient, tokens: dict[str, str]
) -> None:
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    vehicles = client.get("/v1/vehicles", params={"limit": 1}, headers=auth).json()["next_cursor"]
    bookings = client.get("/v1/bookings", params={"limit": 1, "status": "cancelled"}, headers=auth)
    booking_cursor = bookings.json()["next_cursor"]
    for path, params in (
        ("/v1/bookings", {"cursor": vehicles}),
        ("/v1/vehicles", {"cursor": booking_cursor}),
        ("/v1/bookings", {"cursor": booking_cursor, "status": "no_show"}),  # other filters
        ("/v1/bookings", {"cursor": booking_cursor}),
        ("/v1/vehicles", {"cursor": "not a cursor"}),
        ("/v1/vehicles", {"cursor": vehicles[:-2]}),
        ("/v1/vehicles", {"cursor": "x" * 5000}),
    ):
        r = client.get(path, params=params, headers=auth)
        assert r.status_code == 400, (path, params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == TYPE_PREFIX + "invalid-cursor"
    ok = client.get("/v1/bookings", params={"cursor": booking_cursor, "status": "cancelled"}, headers=auth)
    assert ok.status_code == 200


def test_a_cursor_shows_nothing_outside_the_callers_scope(client: TestClient, tokens: dict[str, str]) -> None:
    """A cursor holds a position, not a right: the admin's cursor in a centre's hands pages on
    through that centre's vehicles only."""
    admin = client.get(
        "/v1/vehicles", params={"limit": 1}, headers={"Authorization": f"Bearer {tokens['admin']}"}
    )
    rest = walk(client, tokens["north"], "/v1/vehicles", {"limit": 5, "cursor": admin.json()["next_cursor"]})
    assert rest and all(v["service_centre_id"] == "sc-north" for v in rest)
