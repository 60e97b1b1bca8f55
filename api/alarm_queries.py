"""The SQL of the alarm routes: alarms as a caller may see them, with their history.

Owns: reading alarms (the lists, filtered, in keyset pages; one alarm with its history), scoped in
SQL through the alarm's vehicle so no route can forget it: a service centre sees its vehicles'
alarms (the vehicle's home centre), a fleet operator its fleets' vehicles', everyone else every
alarm. Acting on an alarm (acknowledge, resolve) is `analytics.alarm_store`'s; the routes call it
after `find_alarm` has shown the alarm is visible. All functions raise psycopg.Error on failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

_COLUMNS = (
    "a.alarm_id, a.vehicle_id, a.fault, a.severity, a.raised_at, a.since_at, a.updated_at, a.cleared_at,"
    " a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.resolved_by, a.explanation,"
    " a.thresholds_version, v.service_centre_id, v.fleet_id"
)
_FROM = " FROM alarms a JOIN vehicles v ON v.vehicle_id = a.vehicle_id"


@dataclass(frozen=True, slots=True)
class AlarmScope:
    """Which vehicles' alarms a caller sees: those of one centre, of some fleets, or (both None) all."""

    centre_id: str | None = None
    fleet_ids: tuple[str, ...] | None = None

    def sql(self) -> tuple[list[str], dict[str, Any]]:
        where: list[str] = []
        params: dict[str, Any] = {}
        if self.centre_id is not None:
            where.append("v.service_centre_id = %(scope_centre)s")
            params["scope_centre"] = self.centre_id
        if self.fleet_ids is not None:
            where.append("v.fleet_id = ANY(%(scope_fleets)s)")
            params["scope_fleets"] = list(self.fleet_ids)
        return where, params


@dataclass(frozen=True, slots=True)
class AlarmFilters:
    vehicle_id: str | None = None
    service_centre_id: str | None = None
    severity: str | None = None
    fault: str | None = None
    active: bool | None = None
    acknowledged: bool | None = None


def list_alarms(
    conn: psycopg.Connection,
    scope: AlarmScope,
    filters: AlarmFilters,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Up to `limit` visible alarms matching `filters`, newest raise first, then by id descending:
    a keyset page after the (raised_at, alarm_id) `after`."""
    where, params = scope.sql()
    for column, value in (
        ("a.vehicle_id", filters.vehicle_id),
        ("v.service_centre_id", filters.service_centre_id),
        ("a.severity", filters.severity),
        ("a.fault", filters.fault),
    ):
        if value is not None:
            name = column.split(".")[1]
            where.append(f"{column} = %({name})s")
            params[name] = value
    if filters.active is not None:
        where.append("a.cleared_at IS NULL" if filters.active else "a.cleared_at IS NOT NULL")
    if filters.acknowledged is not None:
        where.append("a.acknowledged_at IS NOT NULL" if filters.acknowledged else "a.acknowledged_at IS NULL")
    if after is not None:
        where.append("(a.raised_at, a.alarm_id) < (%(after_ts)s, %(after_id)s)")
        params["after_ts"], params["after_id"] = after
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS}{_FROM}{clause} ORDER BY a.raised_at DESC, a.alarm_id DESC LIMIT %(limit)s",  # noqa: S608
            {**params, "limit": limit},
        ).fetchall()


def find_alarm(conn: psycopg.Connection, alarm_id: int, scope: AlarmScope) -> dict[str, Any] | None:
    """The alarm with its evidence and history (oldest first), or None when it does not exist or
    is outside the scope."""
    where, params = scope.sql()
    where.append("a.alarm_id = %(alarm_id)s")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS}, a.evidence{_FROM} WHERE {' AND '.join(where)}",  # noqa: S608
            {**params, "alarm_id": alarm_id},
        ).fetchone()
        if row is None:
            return None
        row["history"] = cur.execute(
            "SELECT change, at, severity, cause, evidence, recorded_at FROM alarm_history"
            " WHERE alarm_id = %s ORDER BY at, recorded_at, change",
            (alarm_id,),
        ).fetchall()
    return row


def vehicle_visible(conn: psycopg.Connection, vehicle_id: str, scope: AlarmScope) -> bool:
    where, params = scope.sql()
    where.append("v.vehicle_id = %(vehicle_id)s")
    query = f"SELECT 1 FROM vehicles v WHERE {' AND '.join(where)}"  # noqa: S608
    return conn.execute(query, {**params, "vehicle_id": vehicle_id}).fetchone() is not None
