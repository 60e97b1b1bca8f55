"""The bookings routes against a real PostgreSQL: a centre sees and acts on its own bookings only
(another centre's is a 404 and stays untouched), every act is recorded with the caller, a booking
that is not open any more is a 409, and malformed bodies are 422."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from analytics.findings import Severity
from api import create_app
from api.auth import Role, create_token
from tests.remedies.test_run import raise_alarm, rows, run, url  # noqa: F401  (url: the fixture)

pytestmark = pytest.mark.postgres


@pytest.fixture
def booked(url: str) -> dict[str, int]:  # noqa: F811
    """A thermostat fault booked at `near` (engine work) and a slow leak at `far` (tyres)."""
    now = dt.datetime.now(dt.UTC)
    raise_alarm(url, "V0", "thermostat_stuck", Severity.MAJOR, now - dt.timedelta(minutes=5))
    raise_alarm(url, "V1", "tyre_slow_leak", Severity.MAJOR, now - dt.timedelta(minutes=5))
    run(url, now)
    found = dict(rows(url, "SELECT service_centre_id, booking_id FROM bookings WHERE status = 'booked'"))
    assert set(found) == {"near", "far"}
    return found


@pytest.fixture
def api(url: str) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:  # noqa: F811
    with psycopg.connect(url) as conn:
        tokens = {
            "admin": create_token(conn, "ops", Role.ADMIN),
            "near": create_token(conn, "near-desk", Role.SERVICE_CENTRE, "near"),
            "far": create_token(conn, "far-desk", Role.SERVICE_CENTRE, "far"),
        }
    with TestClient(create_app(url)) as client:
        yield client, {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}


def test_a_centre_sees_only_its_own_bookings(api, booked: dict[str, int]) -> None:  # noqa: ANN001
    client, auth = api
    for centre in ("near", "far"):
        page = client.get("/v1/bookings", headers=auth[centre]).json()
        assert [b["booking_id"] for b in page["items"]] == [booked[centre]] and page["next_cursor"] is None
        assert page["items"][0]["service_centre_id"] == centre and page["items"][0]["status"] == "booked"
        other = booked["far" if centre == "near" else "near"]
        assert client.get(f"/v1/bookings/{other}", headers=auth[centre]).status_code == 404
    everything = client.get("/v1/bookings", headers=auth["admin"]).json()
    assert {b["booking_id"] for b in everything["items"]} == set(booked.values())
    mine = client.get(f"/v1/bookings/{booked['far']}", headers=auth["far"]).json()
    assert mine["fault"] == "tyre_slow_leak" and mine["skill"] == "tyres" and mine["vehicle_id"] == "V1"
    assert [(h["status"], h["actor"]) for h in mine["history"]] == [("booked", "engine")]
    assert client.get("/v1/bookings?status=completed", headers=auth["far"]).json()["items"] == []
    assert client.get("/v1/bookings?status=done", headers=auth["far"]).status_code == 422
    assert client.get("/v1/bookings", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_centre_acts_on_its_own_bookings_only(api, booked: dict[str, int], url: str) -> None:  # noqa: ANN001, F811
    client, auth = api
    far, near = booked["far"], booked["near"]
    for path, body in (
        ("complete", None),
        ("no-show", None),
        ("cancel", {"reason": "x"}),
        ("reschedule", {}),
    ):
        answer = client.post(f"/v1/bookings/{far}/{path}", headers=auth["near"], json=body)
        assert answer.status_code == 404, path
    assert rows(url, "SELECT status FROM bookings WHERE booking_id = %s", far) == [("booked",)]

    done = client.post(f"/v1/bookings/{far}/complete", headers=auth["far"])
    assert done.status_code == 200, done.text
    assert done.json()["booking"]["status"] == "completed" and done.json()["rebooked"] is False
    assert done.json()["booking"]["history"][-1]["actor"] == "service_centre:far-desk"
    assert rows(url, "SELECT status FROM remedies WHERE vehicle_id = 'V1'") == [("done",)]
    again = client.post(f"/v1/bookings/{far}/complete", headers=auth["far"])
    assert again.status_code == 409 and "not an open booking" in again.json()["detail"]

    moved = client.post(f"/v1/bookings/{near}/reschedule", headers=auth["near"], json={})
    assert moved.status_code == 200, moved.text
    out = moved.json()
    assert out["booking"]["status"] == "cancelled" and out["rebooked"] is True
    if out["next_booking"] is not None:  # a later slot may be at another centre, not visible here
        assert out["next_booking"]["starts_at"] > out["booking"]["starts_at"]
    (new_id,) = [b for (b,) in rows(url, "SELECT booking_id FROM bookings WHERE status = 'booked'")]
    cancelled = client.post(
        f"/v1/bookings/{new_id}/cancel", headers=auth["admin"], json={"reason": "owner on holiday"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["booking"]["reason"].startswith(
        "owner on holiday"
    )
    assert rows(url, "SELECT status FROM remedies WHERE vehicle_id = 'V0'") == [("proposed",)]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("cancel", {}),
        ("cancel", {"reason": ""}),
        ("cancel", {"reason": "x" * 201}),
        ("cancel", {"reason": "x", "rebook": "maybe"}),
        ("cancel", {"reason": "x", "extra": 1}),
        ("reschedule", {"not_before": "2026-12-01"}),
        ("reschedule", {"not_before": 1764547200}),
        ("reschedule", {"not_before": "2026-12-01T10:00:00"}),
    ],
)
def test_malformed_bodies_are_422_and_change_nothing(
    api,  # noqa: ANN001
    booked: dict[str, int],
    url: str,  # noqa: F811
    path: str,
    body: dict,
) -> None:
    client, auth = api
    answer = client.post(f"/v1/bookings/{booked['far']}/{path}", headers=auth["far"], json=body)
    assert answer.status_code == 422, answer.text
    assert rows(url, "SELECT status FROM bookings WHERE booking_id = %s", booked["far"]) == [("booked",)]


def test_ids_out_of_range_are_422_not_errors(api, booked: dict[str, int]) -> None:  # noqa: ANN001
    client, auth = api
    for bad in ("0", "-1", "9223372036854775808", "abc"):
        assert client.get(f"/v1/bookings/{bad}", headers=auth["admin"]).status_code == 422
        assert client.post(f"/v1/bookings/{bad}/complete", headers=auth["admin"]).status_code == 422
    assert client.get("/v1/bookings/9223372036854775807", headers=auth["admin"]).status_code == 404
