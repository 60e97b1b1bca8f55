"""The SQL of the bookings routes: shop visits as a service centre sees them.

Owns: reading bookings and their history, scoped in SQL to the caller's centre (a booking is its
centre's: `bookings.service_centre_id`), so no route can forget the scope. Acting on a booking
(complete, no-show, cancel, reschedule) is `remedies.bookings`'; the routes call it after
`find_booking` has shown the booking is visible. All functions raise psycopg.Error on failure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

_COLUMNS = (
    "b.booking_id, b.vehicle_id, b.service_centre_id, b.remedy_id, r.alarm_id, a.fault, a.severity,"
    " b.skill, b.starts_at, b.ends_at, b.deadline, b.late, b.distance_km, b.status, b.reason,"
    " b.created_at, b.updated_at"
)
_FROM = (
    " FROM bookings b JOIN remedies r ON r.remedy_id = b.remedy_id"
    " LEFT JOIN alarms a ON a.alarm_id = r.alarm_id"
)


def list_bookings(
    conn: psycopg.Connection,
    *,
    only_centre_id: str | None,
    status: str | None,
    since: datetime | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Up to `limit` bookings by start time (those starting at or after `since`), newest first, then
    by id: a keyset page after the (starts_at, booking_id) `after`."""
    where, params = _scope(only_centre_id)
    if status is not None:
        where.append("b.status = %(status)s")
        params["status"] = status
    if since is not None:
        where.append("b.starts_at >= %(since)s")
        params["since"] = since
    if after is not None:
        where.append("(b.starts_at, b.booking_id) < (%(after_ts)s, %(after_id)s)")
        params["after_ts"], params["after_id"] = after
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS}{_FROM}{clause} ORDER BY b.starts_at DESC, b.booking_id DESC"  # noqa: S608
            " LIMIT %(limit)s",
            {**params, "limit": limit},
        ).fetchall()


def find_booking(
    conn: psycopg.Connection, booking_id: int, *, only_centre_id: str | None
) -> dict[str, Any] | None:
    """The booking with its history (oldest first), or None when it does not exist or is another
    centre's."""
    where, params = _scope(only_centre_id)
    where.append("b.booking_id = %(booking_id)s")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS}{_FROM} WHERE {' AND '.join(where)}",  # noqa: S608
            {**params, "booking_id": booking_id},
        ).fetchone()
        if row is None:
            return None
        row["history"] = cur.execute(
            "SELECT at, status, starts_at, reason, actor FROM booking_history WHERE booking_id = %s"
            " ORDER BY at, status",
            (booking_id,),
        ).fetchall()
    return row


def _scope(only_centre_id: str | None) -> tuple[list[str], dict[str, Any]]:
    if only_centre_id is None:
        return [], {}
    return ["b.service_centre_id = %(centre)s"], {"centre": only_centre_id}
