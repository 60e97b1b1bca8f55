"""The remedy engine against a real PostgreSQL: each alarm gets one remedy however often it runs; a
critical fault is booked within 24 hours at a centre with the skill and room, a full centre is
skipped; a firmware bug joins one campaign per version pair; waiting patches start when a cure
appears; escalation moves a visit earlier; a cleared alarm resolves its remedy and cancels its
visit."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from analytics.alarm_store import store_findings
from analytics.findings import Finding, FindingState, Severity
from remedies.catalogue import load_catalogue
from remedies.run import run_remedies
from tests.conftest import migrated_fresh_database

pytestmark = pytest.mark.postgres
NOW = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)  # a Monday, 07:00 in Berlin
HOURS = json.dumps({d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")})
CATALOGUE = load_catalogue()


@pytest.fixture
def url(pg_server_url: str) -> str:
    url = migrated_fresh_database(pg_server_url, "remedies")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO vehicle_models (model_id, make, model, powertrain, cylinders)"
                     " VALUES ('ice1', 'Make', 'One', 'ice', 4)")  # fmt: skip
        centres = [
            ("full", 48.137, ["engine", "tyres"], 0),  # nearest, but takes no visits
            ("near", 48.140, ["engine"], 2),
            ("far", 48.400, ["engine", "tyres", "diagnostics"], 8),
        ]
        for cid, lat, skills, cap in centres:
            conn.execute(
                "INSERT INTO service_centres (service_centre_id, name, lat, lon, skills, capacity_per_day,"
                " opening_hours, time_zone) VALUES (%s, %s, %s, 11.575, %s, %s, %s, 'Europe/Berlin')",
                (cid, cid, lat, skills, cap, HOURS),
            )
        for i in range(6):
            conn.execute("INSERT INTO vehicles (vehicle_id, model_id) VALUES (%s, 'ice1')", (f"V{i}",))
            conn.execute(
                "INSERT INTO vehicle_latest (vehicle_id, ts, signals) VALUES (%s, %s, '{}')", (f"V{i}", NOW)
            )
            conn.execute(
                "INSERT INTO telemetry (ts, vehicle_id, speed_kmh, latitude_deg, longitude_deg)"
                " VALUES (%s, %s, 0, 48.137, 11.575), (%s, %s, 0, 48.137, 11.575)",
                (NOW - dt.timedelta(hours=2), f"V{i}", NOW - dt.timedelta(hours=1), f"V{i}"),
            )
    return url


def raise_alarm(url: str, vid: str, fault: str, severity: Severity, at: dt.datetime, **evidence) -> None:  # noqa: ANN003
    ns = int(at.timestamp() * 1e9)
    with psycopg.connect(url) as conn:
        store_findings(conn, [Finding(vid, fault, FindingState.RAISE, ns, severity, ns, "test", evidence)])


def clear_alarm(url: str, vid: str, fault: str, at: dt.datetime) -> None:
    ns = int(at.timestamp() * 1e9)
    with psycopg.connect(url) as conn:
        store_findings(conn, [Finding(vid, fault, FindingState.CLEAR, ns, Severity.WARNING, ns, "ok", {})])


def run(url: str, now: dt.datetime = NOW, **kw) -> dict:  # noqa: ANN003
    with psycopg.connect(url) as conn:
        return run_remedies(conn, CATALOGUE, now=now, **kw).as_dict()


def rows(url: str, sql: str, *params) -> list[tuple]:  # noqa: ANN002
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_critical_fault_is_booked_within_24_hours_at_a_centre_with_skill_and_room(url: str) -> None:
    raise_alarm(url, "V0", "thermostat_stuck", Severity.CRITICAL, NOW - dt.timedelta(minutes=30))
    report = run(url)
    assert (report["decided"], report["visits_booked"], report["visits_late"]) == (1, 1, 0)
    ((centre, starts, deadline, late, status),) = rows(
        url, "SELECT service_centre_id, starts_at, deadline, late, status FROM bookings"
    )
    assert centre == "near" and status == "booked" and not late  # "full" is nearer but has no capacity
    assert NOW + dt.timedelta(hours=2) <= starts <= NOW + dt.timedelta(hours=24) and starts < deadline
    ((kind, rstatus, rule),) = rows(url, "SELECT kind, status, rule FROM remedies")
    assert (kind, rstatus, rule) == ("shop_visit", "scheduled", "thermostat-replace")
    assert run(url)["decided"] == 0 and len(rows(url, "SELECT 1 FROM bookings")) == 1  # idempotent


def test_visits_fill_a_centre_then_go_to_the_next(url: str) -> None:
    for i in range(4):
        raise_alarm(url, f"V{i}", "thermostat_stuck", Severity.CRITICAL, NOW)
    assert run(url)["visits_booked"] == 4
    booked = rows(url, "SELECT service_centre_id, starts_at FROM bookings ORDER BY starts_at")
    # "near" takes two visits a day, at 08:00 and 13:00; 08:00 is inside the two hours' notice and
    # its Tuesday slots are past the deadline, so it takes one, and "far" (farther, with room in
    # time) the other three.
    assert sorted(b[0] for b in booked) == ["far", "far", "far", "near"]
    assert len(set(booked)) == 4
    assert all(starts <= NOW + dt.timedelta(hours=24) for _, starts in booked)


def test_firmware_bugs_join_one_campaign_and_waiting_patches_start_when_a_cure_appears(url: str) -> None:
    evidence = {"ecu": "ECM", "version": "4.2.0", "code": "P0606", "cure_version": None}
    for vid in ("V0", "V1"):
        raise_alarm(url, vid, "firmware_bug", Severity.MAJOR, NOW, **evidence)
    report = run(url)
    assert report["patches_waiting"] == 2 and rows(url, "SELECT 1 FROM campaigns") == []
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO software_issues (ecu, software_version, code, cure_version, vehicles_on,"
            " reporting_on, vehicles_off, reporting_off, p_value)"
            " VALUES ('ECM', '4.2.0', 'P0606', '4.2.1', 2, 2, 10, 0, 1e-6)"
        )
    report = run(url)
    assert report["patches_proposed"] == 2 and len(report["campaigns_created"]) == 1
    ((ecu, old, new, status),) = rows(url, "SELECT ecu, from_version, to_version, status FROM campaigns")
    assert (ecu, old, new, status) == ("ECM", "4.2.0", "4.2.1", "proposed")
    assert sorted(rows(url, "SELECT vehicle_id, state FROM campaign_vehicles")) == [
        ("V0", "pending"),
        ("V1", "pending"),
    ]
    assert {r[0] for r in rows(url, "SELECT status FROM remedies")} == {"proposed"}


def test_an_auto_approved_campaign_schedules_the_patch(url: str) -> None:
    evidence = {"ecu": "ECM", "version": "4.2.0", "code": "P0606", "cure_version": "4.2.1"}
    raise_alarm(url, "V0", "firmware_bug", Severity.MAJOR, NOW, **evidence)
    run(url, auto_approve_campaigns=True)
    assert rows(url, "SELECT status, approved_by FROM campaigns") == [("approved", "engine policy")]
    assert rows(url, "SELECT status FROM remedies") == [("scheduled",)]


def test_escalation_moves_the_visit_earlier_and_a_clear_cancels_it(url: str) -> None:
    # The only tyre centre with room opens on Thursdays only, at first: the minor leak waits till then.
    thursday = json.dumps({"thu": [["08:00", "18:00"]]})
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE service_centres SET opening_hours = %s WHERE service_centre_id = 'far'", (thursday,)
        )
    raise_alarm(url, "V0", "tyre_slow_leak", Severity.MINOR, NOW)
    run(url)
    ((first,),) = rows(url, "SELECT starts_at FROM bookings WHERE status = 'booked'")
    assert first.weekday() == 3
    # It now opens every weekday; the leak turns critical: the visit moves to within 24 hours.
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE service_centres SET opening_hours = %s WHERE service_centre_id = 'far'", (HOURS,)
        )
    raise_alarm(url, "V0", "tyre_slow_leak", Severity.CRITICAL, NOW + dt.timedelta(minutes=5))
    later = NOW + dt.timedelta(minutes=10)
    report = run(url, later)
    assert report["visits_moved"] == 1
    ((urgency,),) = rows(url, "SELECT details->>'urgency' FROM remedies")
    assert urgency == "critical"
    ((starts,),) = rows(url, "SELECT starts_at FROM bookings WHERE status = 'booked'")
    assert starts <= NOW + dt.timedelta(hours=24) and starts < first
    assert rows(url, "SELECT starts_at FROM bookings WHERE status = 'cancelled'") == [(first,)]
    clear_alarm(url, "V0", "tyre_slow_leak", NOW + dt.timedelta(minutes=20))
    report = run(url, NOW + dt.timedelta(minutes=30))
    assert report["resolved"] == 1 and report["bookings_cancelled"] == 1
    assert rows(url, "SELECT status FROM remedies") == [("resolved",)]
    assert rows(url, "SELECT count(*) FROM bookings WHERE status = 'booked'") == [(0,)]
    history = [r[0] for r in rows(url, "SELECT status FROM remedy_history ORDER BY at")]
    assert history[0] == "proposed" and history[-1] == "resolved"
