"""Alarms in PostgreSQL: load the newest alarm of each (vehicle, fault) a batch of findings
concerns, apply the lifecycle (`analytics.alarms`), and write the alarms and their history in one
transaction, so that alarm state survives a restart and every change is on record.

Owns: the SQL and the lock that keeps two writers off the same vehicles: a transaction-scoped
advisory lock per partition of the vehicle hash (`partition_of`), taken in partition order.
Times are stored to the microsecond, so findings are cut to the microsecond before they apply.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import psycopg

from analytics.alarms import Alarm, Change, Transition, apply_findings
from analytics.findings import Finding, Severity
from contract.timestamps import datetime_of_ns as _ts
from contract.timestamps import ns_of as _ns

PARTITIONS = 64  # the unit of work (and of locking) that jobs split the fleet into
_LOCK_BASE = 0x616C6D00  # "alm\0": advisory lock keys PARTITIONS apart from other users


def partition_of(vehicle_id: str, partitions: int = PARTITIONS) -> int:
    """A stable partition for a vehicle (CRC-32 of its id), the same in every process."""
    return zlib.crc32(vehicle_id.encode()) % partitions


@dataclass(frozen=True)
class AlarmCounts:
    raised: int = 0
    escalated: int = 0
    cleared: int = 0


def store_findings(
    conn: psycopg.Connection, findings: Sequence[Finding], thresholds_version: str = ""
) -> AlarmCounts:
    """Apply `findings` to the stored alarms and write the changes; commits. Raises psycopg.Error."""
    if not findings:
        return AlarmCounts()
    # Times to the database's microseconds (findings from stored rows are already whole ones).
    cut = [replace(f, at_ns=f.at_ns - f.at_ns % 1000) if f.at_ns % 1000 else f for f in findings]
    vehicles = sorted({f.vehicle_id for f in cut})
    with conn.transaction():
        for partition in sorted({partition_of(v) for v in vehicles}):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_BASE + partition,))
        newest = _newest_alarms(conn, vehicles, sorted({f.fault for f in cut}))
        transitions = apply_findings(newest, cut)
        ids: dict[tuple[str, str], int] = {}  # alarms raised by this batch, for its later changes
        for transition in transitions:
            key = (transition.alarm.vehicle_id, transition.alarm.fault)
            ids[key] = _write(conn, transition, ids.get(key, transition.alarm.alarm_id), thresholds_version)
    changes = [t.change for t in transitions]
    return AlarmCounts(
        changes.count(Change.RAISED), changes.count(Change.ESCALATED), changes.count(Change.CLEARED)
    )


def _newest_alarms(
    conn: psycopg.Connection, vehicles: list[str], faults: list[str]
) -> dict[tuple[str, str], Alarm]:
    rows = conn.execute(
        "SELECT DISTINCT ON (vehicle_id, fault) alarm_id, vehicle_id, fault, severity, raised_at, updated_at,"
        " since_at, cleared_at, acknowledged_at IS NOT NULL, resolved_at IS NOT NULL AND NOT EXISTS ("
        "  SELECT 1 FROM alarm_history h WHERE h.alarm_id = a.alarm_id AND h.change = 'cleared')"
        " FROM alarms a WHERE vehicle_id = ANY(%s) AND fault = ANY(%s)"
        " ORDER BY vehicle_id, fault, raised_at DESC, alarm_id DESC",
        (vehicles, faults),
    ).fetchall()
    return {
        (vid, fault): Alarm(
            vid, fault, Severity[severity], _ns(raised), _ns(updated),
            _ns_or_none(since), _ns_or_none(cleared), bool(acked), int(alarm_id), bool(held),
        )
        for alarm_id, vid, fault, severity, raised, updated, since, cleared, acked, held in rows
    }  # fmt: skip


def _write(
    conn: psycopg.Connection, transition: Transition, alarm_id: int | None, thresholds_version: str
) -> int:
    """Write one transition; the alarm's id."""
    alarm, finding = transition.alarm, transition.finding
    evidence = json.dumps(finding.evidence, default=str)
    if transition.change is Change.RAISED:
        row = conn.execute(
            "INSERT INTO alarms (vehicle_id, fault, severity, raised_at, since_at, updated_at, explanation,"
            " evidence, thresholds_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)"
            " RETURNING alarm_id",
            (
                alarm.vehicle_id, alarm.fault, alarm.severity.name, _ts(alarm.raised_ns),
                None if alarm.since_ns is None else _ts(alarm.since_ns), _ts(alarm.updated_ns),
                finding.explanation, evidence, thresholds_version,
            ),
        ).fetchone()  # fmt: skip
        assert row is not None
        alarm_id = int(row[0])
    else:
        assert alarm_id is not None, "a change to an alarm that was never stored"
        conn.execute(
            "UPDATE alarms SET severity = %s, updated_at = %s, cleared_at = %s,"
            " evidence = CASE WHEN %s THEN %s::jsonb ELSE evidence END,"
            " explanation = CASE WHEN %s THEN %s ELSE explanation END WHERE alarm_id = %s",
            (
                alarm.severity.name, _ts(alarm.updated_ns),
                None if alarm.cleared_ns is None else _ts(alarm.cleared_ns),
                transition.change is Change.ESCALATED, evidence,
                transition.change is Change.ESCALATED and bool(finding.explanation),
                finding.explanation, alarm_id,
            ),
        )  # fmt: skip
    conn.execute(
        "INSERT INTO alarm_history (alarm_id, change, at, severity, cause, evidence)"
        " VALUES (%s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT DO NOTHING",
        (
            alarm_id,
            transition.change.value,
            _ts(finding.at_ns),
            alarm.severity.name,
            _cause(transition),
            evidence,
        ),
    )
    return alarm_id


def _cause(transition: Transition) -> str:
    finding = transition.finding
    what = {Change.RAISED: "raised", Change.ESCALATED: "escalated", Change.CLEARED: "cleared"}[
        transition.change
    ]
    return f"{finding.fault} {what} by the detector: {finding.explanation}".strip().rstrip(":")


def acknowledge(conn: psycopg.Connection, alarm_id: int, by: str) -> bool:
    """Record that `by` acknowledged the alarm (at the wall clock: a person's act); False when no such
    alarm exists or it was acknowledged before. Commits."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE alarms SET acknowledged_at = now(), acknowledged_by = %s"
            " WHERE alarm_id = %s AND acknowledged_at IS NULL RETURNING severity, acknowledged_at",
            (by, alarm_id),
        ).fetchone()
        if row is None:
            return False
        conn.execute(
            "INSERT INTO alarm_history (alarm_id, change, at, severity, cause)"
            " VALUES (%s, 'acknowledged', %s, %s, %s)",
            (alarm_id, row[1], row[0], f"acknowledged by {by}"),
        )
    return True


def resolve(conn: psycopg.Connection, alarm_id: int, by: str) -> bool:
    """Record that `by` resolved the active alarm: it is cleared now (cleared_at: the later of its
    newest data time and the wall clock, so it is never before what the alarm last recorded) and
    held until its detector clears the episode (`analytics.alarms`). False when no such alarm
    exists or it is not active. Takes the alarm's partition lock, as `store_findings` does, so a
    job run cannot write over the resolve with the state it read before it. Commits. Raises
    psycopg.Error."""
    row = conn.execute("SELECT vehicle_id FROM alarms WHERE alarm_id = %s", (alarm_id,)).fetchone()
    if row is None:
        return False
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_BASE + partition_of(row[0]),))
        done = conn.execute(
            "UPDATE alarms SET cleared_at = greatest(updated_at, now()), resolved_at = now(),"
            " resolved_by = %s WHERE alarm_id = %s AND cleared_at IS NULL RETURNING severity, resolved_at",
            (by, alarm_id),
        ).fetchone()
        if done is None:
            return False
        conn.execute(
            "INSERT INTO alarm_history (alarm_id, change, at, severity, cause)"
            " VALUES (%s, 'resolved', %s, %s, %s)",
            (alarm_id, done[1], done[0], f"resolved by {by}"),
        )
    return True


def _ns_or_none(at: dt.datetime | None) -> int | None:
    return None if at is None else _ns(at)
