"""The alarm routes against a real PostgreSQL: who sees which alarms (a centre its vehicles', a
fleet operator its fleets', an admin all; others' are 404 like missing ones), the filters, one
alarm with its evidence and history, acknowledge and resolve recorded with who did it (a fleet
operator may not act: 403; a second act is a 409), and paging through every alarm exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.alarm_store import store_findings
from analytics.findings import Finding, FindingState, Severity
from api import create_app
from api.auth import Role, create_token
from api.problems import TYPE_PREFIX
from tests.api.test_pagination import walk

pytestmark = pytest.mark.postgres

S = 1_000_000_000
T0 = 1_772_000_000 * S
R, C = FindingState.RAISE, FindingState.CLEAR
FINDINGS = [
    Finding(
        "VIN-N1", "tyre_slow_leak", R, T0, Severity.WARNING, T0 - 60 * S, "slow leak FL", {"wheel": "FL"}
    ),
    Finding("VIN-N1", "tyre_slow_leak", R, T0 + 600 * S, Severity.MAJOR, None, "25% under", {"drop_kpa": 60}),
    Finding("VIN-N1", "misfire", R, T0 + 5 * S, Severity.MAJOR, None, "misfire", {}),
    Finding("VIN-N1", "misfire", C, T0 + 900 * S),
    Finding("VIN-N2", "battery_12v", R, T0 + 20 * S, Severity.MINOR, None, "low at rest", {}),
    Finding("VIN-S1", "tyre_slow_leak", R, T0 + 30 * S, Severity.CRITICAL, None, "flat", {}),
    Finding("VIN-U1", "thermostat_stuck", R, T0 + 40 * S, Severity.WARNING, None, "cold", {}),
    # Many alarms raised at one instant, so that pages must break ties by id.
    *(
        Finding(("VIN-N2", "VIN-S1", "VIN-U1")[i % 3], f"dtc:P03{i:02d}", R, T0 + 50 * S, Severity.MINOR)
        for i in range(20)
    ),
]
VISIBLE = {
    "admin": {"VIN-N1", "VIN-N2", "VIN-S1", "VIN-U1"},
    "north": {"VIN-N1", "VIN-N2"},
    "south": {"VIN-S1"},
}


@pytest.fixture(scope="module")
def alarm_url(seeded_url: str) -> str:
    with psycopg.connect(seeded_url) as conn:
        conn.execute("INSERT INTO fleets (fleet_id, name) VALUES ('fl-n', 'North trucks'), ('fl-s', 'South')")
        conn.execute("UPDATE vehicles SET fleet_id = 'fl-n' WHERE vehicle_id IN ('VIN-N1', 'VIN-S1')")
        store_findings(conn, FINDINGS, "test/1")
    return seeded_url


@pytest.fixture(scope="module")
def auth(alarm_url: str, tokens: dict[str, str]) -> dict[str, dict[str, str]]:
    with psycopg.connect(alarm_url) as conn:
        operator = create_token(conn, "alarm-operator", Role.FLEET_OPERATOR, fleet_ids=["fl-n"])
    return {k: {"Authorization": f"Bearer {t}"} for k, t in {**tokens, "operator": operator}.items()}


@pytest.fixture(scope="module")
def client(alarm_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(alarm_url)) as c:
        yield c


def alarm_of(client: TestClient, auth: dict, vehicle_id: str, fault: str) -> dict[str, Any]:
    page = client.get("/v1/alarms", params={"vehicle_id": vehicle_id, "fault": fault}, headers=auth["admin"])
    (item,) = page.json()["items"]
    return item


def test_each_caller_sees_its_vehicles_alarms_newest_first(client: TestClient, auth: dict) -> None:
    for caller, vehicles in VISIBLE.items():
        body = client.get("/v1/alarms", params={"limit": 1000}, headers=auth[caller]).json()
        assert {a["vehicle_id"] for a in body["items"]} == vehicles, caller
        assert body["next_cursor"] is None
        keys = [(a["raised_at"], a["alarm_id"]) for a in body["items"]]
        assert keys == sorted(keys, reverse=True)
    operator = client.get("/v1/alarms", headers=auth["operator"]).json()["items"]
    assert {a["vehicle_id"] for a in operator} == {"VIN-N1", "VIN-S1"}  # the fleet's, across centres
    assert all(a["fleet_id"] == "fl-n" for a in operator)


def test_filters(client: TestClient, auth: dict) -> None:
    def ids(**params: str) -> set[tuple[str, str]]:
        body = client.get("/v1/alarms", params={"limit": 1000, **params}, headers=auth["admin"]).json()
        return {(a["vehicle_id"], a["fault"]) for a in body["items"]}

    assert ids(severity="CRITICAL") == {("VIN-S1", "tyre_slow_leak")}
    assert ids(fault="tyre_slow_leak") == {("VIN-N1", "tyre_slow_leak"), ("VIN-S1", "tyre_slow_leak")}
    assert ids(state="cleared") == {("VIN-N1", "misfire")}
    assert ("VIN-N1", "misfire") not in ids(state="active") and len(ids(state="active")) == 24
    assert ids(vehicle_id="VIN-N1") == {("VIN-N1", "tyre_slow_leak"), ("VIN-N1", "misfire")}
    assert {v for v, _ in ids(service_centre_id="sc-south")} == {"VIN-S1"}
    assert ids(acknowledged="true") == set()
    north = client.get("/v1/alarms", params={"service_centre_id": "sc-south"}, headers=auth["north"]).json()
    assert north["items"] == []  # another centre's filter shows nothing, not an error
    for bad in (
        {"severity": "HIGH"},
        {"state": "open"},
        {"fault": ""},
        {"acknowledged": "maybe"},
        {"vehicle_id": "a b"},
    ):
        r = client.get("/v1/alarms", params=bad, headers=auth["admin"])
        assert r.status_code == 422 and r.json()["type"] == TYPE_PREFIX + "invalid-request", bad


def test_a_vehicles_alarms_and_foreign_vehicles_are_404(client: TestClient, auth: dict) -> None:
    mine = client.get("/v1/vehicles/VIN-N1/alarms", headers=auth["north"]).json()
    assert {a["fault"] for a in mine["items"]} == {"tyre_slow_leak", "misfire"}
    active = client.get(
        "/v1/vehicles/VIN-N1/alarms", params={"state": "active"}, headers=auth["north"]
    ).json()
    assert [a["fault"] for a in active["items"]] == ["tyre_slow_leak"]
    for path in ("/v1/vehicles/VIN-S1/alarms", "/v1/vehicles/VIN-U1/alarms", "/v1/vehicles/VIN-NOPE/alarms"):
        r = client.get(path, headers=auth["north"])
        assert r.status_code == 404 and r.json()["type"] == TYPE_PREFIX + "not-found", path
        assert "items" not in r.json()
    assert (
        client.get("/v1/vehicles/VIN-N2/alarms", headers=auth["operator"]).status_code == 404
    )  # not its fleet
    assert client.get("/v1/vehicles/VIN-S1/alarms", headers=auth["operator"]).status_code == 200


def test_one_alarm_with_its_evidence_and_history(client: TestClient, auth: dict) -> None:
    leak = alarm_of(client, auth, "VIN-N1", "tyre_slow_leak")
    body = client.get(f"/v1/alarms/{leak['alarm_id']}", headers=auth["north"]).json()
    assert body["severity"] == "MAJOR" and body["state"] == "active" and body["acknowledged"] is False
    assert body["explanation"] == "25% under" and body["evidence"] == {"drop_kpa": 60}
    assert body["thresholds_version"] == "test/1" and body["service_centre_id"] == "sc-north"
    assert [(h["change"], h["severity"]) for h in body["history"]] == [
        ("raised", "WARNING"),
        ("escalated", "MAJOR"),
    ]
    assert body["history"][0]["evidence"] == {"wheel": "FL"}
    assert client.get(f"/v1/alarms/{leak['alarm_id']}", headers=auth["south"]).status_code == 404
    missing = client.get("/v1/alarms/9223372036854775807", headers=auth["admin"])
    assert missing.status_code == 404 and missing.json()["detail"] == "alarm 9223372036854775807 not found"
    for bad in ("0", "-1", "9223372036854775808", "x"):
        assert client.get(f"/v1/alarms/{bad}", headers=auth["admin"]).status_code == 422


def test_acknowledge_and_resolve_are_recorded_with_who_and_scoped(
    client: TestClient, auth: dict, alarm_url: str
) -> None:
    leak = alarm_of(client, auth, "VIN-N1", "tyre_slow_leak")["alarm_id"]
    flat = alarm_of(client, auth, "VIN-S1", "tyre_slow_leak")["alarm_id"]
    for act in ("acknowledge", "resolve"):
        assert client.post(f"/v1/alarms/{flat}/{act}", headers=auth["north"]).status_code == 404
        r = client.post(f"/v1/alarms/{leak}/{act}", headers=auth["operator"])
        assert r.status_code == 403 and r.json()["type"] == TYPE_PREFIX + "forbidden"
    with psycopg.connect(alarm_url) as conn:
        assert conn.execute(
            "SELECT acknowledged_at, resolved_at, cleared_at FROM alarms WHERE alarm_id = %s", (flat,)
        ).fetchone() == (None, None, None)

    acked = client.post(f"/v1/alarms/{leak}/acknowledge", headers=auth["north"])
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["acknowledged"] and body["acknowledged_by"] == "service_centre:north-desk"
    assert body["state"] == "active" and body["history"][-1]["change"] == "acknowledged"
    again = client.post(f"/v1/alarms/{leak}/acknowledge", headers=auth["north"])
    assert again.status_code == 409 and again.json()["type"] == TYPE_PREFIX + "conflict"

    done = client.post(f"/v1/alarms/{leak}/resolve", headers=auth["north"])
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "cleared" and body["resolved_by"] == "service_centre:north-desk"
    assert body["resolved_at"] and body["cleared_at"] >= body["updated_at"]
    assert [h["change"] for h in body["history"]][-1] == "resolved"
    assert client.post(f"/v1/alarms/{leak}/resolve", headers=auth["north"]).status_code == 409
    assert (
        client.post(f"/v1/alarms/{flat}/resolve", headers=auth["admin"]).json()["resolved_by"] == "admin:ops"
    )
    resolved = client.get(
        "/v1/alarms", params={"state": "cleared", "limit": 1000}, headers=auth["admin"]
    ).json()
    assert {a["alarm_id"] for a in resolved["items"]} >= {leak, flat}


_settings = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@_settings
@given(
    caller=st.sampled_from(["admin", "north", "south", "operator"]),
    limit=st.integers(1, 30),
    severity=st.none() | st.sampled_from(["MINOR", "MAJOR"]),
    vehicle=st.booleans(),
)
def test_walking_the_alarm_pages_returns_every_alarm_once(
    client: TestClient,
    auth: dict,
    alarm_url: str,
    caller: str,
    limit: int,
    severity: str | None,
    vehicle: bool,
) -> None:
    params: dict[str, Any] = {"limit": limit}
    if severity:
        params["severity"] = severity
    token = auth[caller]["Authorization"].split()[1]
    path = (
        "/v1/vehicles/VIN-S1/alarms" if vehicle and caller in ("admin", "south", "operator") else "/v1/alarms"
    )
    items = walk(client, token, path, params)
    with psycopg.connect(alarm_url) as conn:
        want = [
            row[0]
            for row in conn.execute(
                "SELECT a.alarm_id FROM alarms a JOIN vehicles v USING (vehicle_id)"
                " WHERE (%(v)s::text IS NULL OR a.vehicle_id = %(v)s)"
                " AND (%(s)s::text IS NULL OR a.severity = %(s)s)"
                " AND (%(c)s::text IS NULL OR v.service_centre_id = %(c)s)"
                " AND (%(f)s::text IS NULL OR v.fleet_id = %(f)s)"
                " ORDER BY a.raised_at DESC, a.alarm_id DESC",
                {
                    "v": "VIN-S1" if path != "/v1/alarms" else None,
                    "s": severity,
                    "c": {"north": "sc-north", "south": "sc-south"}.get(caller),
                    "f": "fl-n" if caller == "operator" else None,
                },
            ).fetchall()
        ]
    assert [a["alarm_id"] for a in items] == want
