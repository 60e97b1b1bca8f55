"""A person's resolve (analytics.alarm_store.resolve, `POST /v1/alarms/{id}/resolve`) against a real
PostgreSQL, next to the jobs that also move alarms: the next analysis run does not raise the same
episode again; the detector's clear ends the episode and a later raise is a new alarm; a worse
fault raises a new alarm at once (the one-active index holds throughout); the remedy engine sees
the resolve (its remedy resolved, naming who, its visit cancelled); and the resolve waits for the
analysis job's lock on the vehicle's partition rather than interleaving with it."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from analytics.alarm_store import _LOCK_BASE, partition_of, resolve, store_findings
from analytics.findings import Finding, FindingState, Severity
from tests.remedies.test_run import raise_alarm, rows, run, url  # noqa: F401  (url: the fixture)

pytestmark = pytest.mark.postgres
WHO = "service_centre:near-desk"


def _ns(at: dt.datetime) -> int:
    return int(at.timestamp() * 1e9)


def _find(
    db: str, vid: str, state: FindingState, at: dt.datetime, severity: Severity = Severity.MAJOR
) -> None:
    with psycopg.connect(db) as conn:
        store_findings(conn, [Finding(vid, "thermostat_stuck", state, _ns(at), severity, None, "test", {})])


def _alarms(db: str, vid: str) -> list[tuple]:
    return rows(
        db,
        "SELECT alarm_id, severity, cleared_at IS NULL, resolved_by FROM alarms WHERE vehicle_id = %s"
        " ORDER BY alarm_id",
        vid,
    )


def _resolve(db: str, vid: str) -> int:
    ((alarm_id,),) = rows(db, "SELECT alarm_id FROM alarms WHERE vehicle_id = %s AND cleared_at IS NULL", vid)
    with psycopg.connect(db) as conn:
        assert resolve(conn, alarm_id, WHO)
        assert not resolve(conn, alarm_id, WHO)  # not active any more: a second resolve is refused
    return alarm_id


def test_the_next_run_does_not_raise_a_resolved_episode_and_remedies_see_it(url: str) -> None:  # noqa: F811
    now = dt.datetime.now(dt.UTC)
    raise_alarm(url, "V0", "thermostat_stuck", Severity.MAJOR, now - dt.timedelta(minutes=5))
    run(url, now)
    assert rows(url, "SELECT status FROM bookings WHERE vehicle_id = 'V0'") == [("booked",)]
    alarm_id = _resolve(url, "V0")
    _find(url, "V0", FindingState.RAISE, now)  # the detector still sees the fault
    _find(url, "V0", FindingState.RAISE, now + dt.timedelta(minutes=10))
    assert _alarms(url, "V0") == [(alarm_id, "MAJOR", False, WHO)]
    report = run(url, now)
    assert report["resolved"] == 1 and report["bookings_cancelled"] == 1
    ((status, reason),) = rows(url, "SELECT status, reason FROM remedies WHERE alarm_id = %s", alarm_id)
    assert status == "resolved" and reason.startswith(f"resolved by {WHO}")
    assert rows(url, "SELECT status FROM bookings WHERE vehicle_id = 'V0'") == [("cancelled",)]
    history = rows(url, "SELECT change, cause FROM alarm_history WHERE alarm_id = %s ORDER BY at", alarm_id)
    assert history == [("raised", history[0][1]), ("resolved", f"resolved by {WHO}")]


def test_the_detectors_clear_ends_the_episode_and_a_later_raise_is_a_new_alarm(url: str) -> None:  # noqa: F811
    t = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    _find(url, "V1", FindingState.RAISE, t)
    alarm_id = _resolve(url, "V1")
    _find(url, "V1", FindingState.CLEAR, t + dt.timedelta(minutes=1))
    assert _alarms(url, "V1") == [(alarm_id, "MAJOR", False, WHO)]  # as the person left it
    changes = rows(url, "SELECT change FROM alarm_history WHERE alarm_id = %s ORDER BY at", alarm_id)
    assert changes == [("raised",), ("cleared",), ("resolved",)]  # data time, data time, wall clock
    _find(url, "V1", FindingState.RAISE, t + dt.timedelta(minutes=2))
    (old, new) = _alarms(url, "V1")
    assert old == (alarm_id, "MAJOR", False, WHO) and new[1:] == ("MAJOR", True, None)


def test_a_worse_fault_raises_a_new_alarm_at_once(url: str) -> None:  # noqa: F811
    t = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    _find(url, "V2", FindingState.RAISE, t, Severity.MINOR)
    alarm_id = _resolve(url, "V2")
    _find(url, "V2", FindingState.RAISE, t + dt.timedelta(minutes=1), Severity.MINOR)
    _find(url, "V2", FindingState.RAISE, t + dt.timedelta(minutes=2), Severity.CRITICAL)
    (old, new) = _alarms(url, "V2")
    assert old == (alarm_id, "MINOR", False, WHO) and new[1:] == ("CRITICAL", True, None)
    _find(url, "V2", FindingState.CLEAR, t + dt.timedelta(minutes=3))  # now clears the new one
    assert [a[2] for a in _alarms(url, "V2")] == [False, False]


def test_a_resolve_waits_for_the_analysis_jobs_lock(url: str) -> None:  # noqa: F811
    t = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    _find(url, "V3", FindingState.RAISE, t)
    ((alarm_id,),) = rows(url, "SELECT alarm_id FROM alarms WHERE vehicle_id = 'V3'")
    with psycopg.connect(url) as job, psycopg.connect(url) as person:
        job.execute(
            "SELECT pg_advisory_xact_lock(%s)", (_LOCK_BASE + partition_of("V3"),)
        )  # a run in progress
        person.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            resolve(person, alarm_id, WHO)
        job.rollback()
        assert resolve(person, alarm_id, WHO)
    assert _alarms(url, "V3") == [(alarm_id, "MAJOR", False, WHO)]
