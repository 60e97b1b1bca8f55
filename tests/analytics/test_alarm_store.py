"""Alarms in PostgreSQL: the lifecycle's changes are written with their history, state survives a
new connection (a restart), and storing the same findings again writes nothing."""

from __future__ import annotations

import time

import psycopg
import pytest

from analytics.alarm_store import acknowledge, partition_of, store_findings
from analytics.findings import Finding, FindingState, Severity

pytestmark = pytest.mark.postgres
S = 1_000_000_000


def _vehicle(pg_url: str) -> str:
    vid = f"ALARM-{time.time_ns() % 10**9}"
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO vehicles (vehicle_id) VALUES (%s)", (vid,))
    return vid


def test_lifecycle_is_stored_with_history_and_replays_write_nothing(pg_url: str) -> None:
    vid = _vehicle(pg_url)
    t0 = 1_764_000_000 * S
    findings = [
        Finding(
            vid,
            "tyre_slow_leak",
            FindingState.RAISE,
            t0,
            Severity.WARNING,
            t0 - 60 * S,
            "leak",
            {"wheel": "FL"},
        ),
        Finding(vid, "tyre_slow_leak", FindingState.RAISE, t0 + 600 * S, Severity.MAJOR, None, "25% under"),
        Finding(vid, "misfire", FindingState.RAISE, t0 + 5 * S, Severity.MAJOR),
        Finding(vid, "misfire", FindingState.CLEAR, t0 + 900 * S),
    ]
    with psycopg.connect(pg_url) as conn:
        first = store_findings(conn, findings, "test-1")
    with psycopg.connect(pg_url) as conn:  # a new process: the state comes from the database
        again = store_findings(conn, findings, "test-1")
        alarms = conn.execute(
            "SELECT fault, severity, cleared_at IS NULL, explanation, evidence, since_at IS NOT NULL"
            " FROM alarms WHERE vehicle_id = %s ORDER BY fault",
            (vid,),
        ).fetchall()
        history = conn.execute(
            "SELECT a.fault, h.change, h.severity FROM alarm_history h JOIN alarms a USING (alarm_id)"
            " WHERE a.vehicle_id = %s ORDER BY h.at",
            (vid,),
        ).fetchall()
    assert (first.raised, first.escalated, first.cleared) == (2, 1, 1)
    assert (again.raised, again.escalated, again.cleared) == (0, 0, 0)
    assert alarms == [
        ("misfire", "MAJOR", False, "", {}, False),
        ("tyre_slow_leak", "MAJOR", True, "25% under", {}, True),
    ]
    assert history == [
        ("tyre_slow_leak", "raised", "WARNING"),
        ("misfire", "raised", "MAJOR"),
        ("tyre_slow_leak", "escalated", "MAJOR"),
        ("misfire", "cleared", "MAJOR"),
    ]


def test_acknowledging_is_recorded_once(pg_url: str) -> None:
    vid = _vehicle(pg_url)
    with psycopg.connect(pg_url) as conn:
        store_findings(conn, [Finding(vid, "dtc:P0420", FindingState.RAISE, 1_764_000_000 * S)])
        (alarm_id,) = conn.execute("SELECT alarm_id FROM alarms WHERE vehicle_id = %s", (vid,)).fetchone()
        assert acknowledge(conn, alarm_id, "north-desk") and not acknowledge(conn, alarm_id, "south-desk")
        row = conn.execute(
            "SELECT acknowledged_by, cleared_at IS NULL FROM alarms WHERE alarm_id = %s", (alarm_id,)
        ).fetchone()
    assert row == ("north-desk", True)  # acknowledged and still active: independent states


def test_partitions_are_stable_and_spread() -> None:
    ids = [f"SIM-0001-{i:05d}" for i in range(6400)]
    parts = [partition_of(v) for v in ids]
    assert parts == [partition_of(v) for v in ids]
    counts = [parts.count(p) for p in range(64)]
    assert min(counts) > 50 and max(counts) < 160
