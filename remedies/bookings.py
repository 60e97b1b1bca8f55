"""What people do with a booked visit: reschedule it, cancel it, record that the vehicle did not
come, or that the visit was made. Each act is recorded with who did it (`booking_history`,
`remedy_history`).

Rules:
- Reschedule: the next free slot (`remedies.visits.choose_slot`) at or after the time asked for
  (default: just after the current slot), same skill; the old booking is cancelled.
- Cancel: by the centre or the owner. With `rebook`, a new slot is booked at once (the centre
  cannot take it then); without, the remedy goes back to `proposed` for an operator.
- No-show: recorded; a new visit is booked from now, up to `MAX_NO_SHOWS` missed visits, after
  which the remedy `failed` and a person must contact the owner.
- Completed: the remedy is `done`; the alarm clears when the vehicle's data shows the fault gone.
Each function raises LookupError for a booking that is not open, and psycopg.Error.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from remedies import store
from remedies.run import RemedyReport, book_visit

MAX_NO_SHOWS = 2


def _open(conn: psycopg.Connection, booking_id: int) -> tuple[int, str, dt.datetime, dict]:
    row = conn.execute(
        "SELECT b.remedy_id, b.vehicle_id, b.starts_at, r.details FROM bookings b"
        " JOIN remedies r ON r.remedy_id = b.remedy_id WHERE b.booking_id = %s AND b.status = 'booked'",
        (booking_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"booking {booking_id} is not an open booking")
    return int(row[0]), row[1], row[2], dict(row[3])


def reschedule(
    conn: psycopg.Connection, booking_id: int, actor: str, *, not_before: dt.datetime | None = None
) -> int | None:
    """The new booking's id, or None when no slot is free (the old one is kept then)."""
    try:
        with conn.transaction():
            remedy_id, vehicle_id, starts_at, details = _open(conn, booking_id)
            store.set_booking(conn, booking_id, "cancelled", f"rescheduled by {actor}", actor)
            after = not_before or starts_at + dt.timedelta(minutes=1)
            now = dt.datetime.now(dt.UTC)
            new = book_visit(conn, remedy_id, vehicle_id, details, now, RemedyReport(), not_before=after)
            if new is None:
                raise _Keep
            return new
    except _Keep:
        return None


class _Keep(Exception):
    """Rolls the reschedule back: the old booking stays."""


def cancel(
    conn: psycopg.Connection,
    booking_id: int,
    actor: str,
    reason: str,
    *,
    rebook: bool = False,
    now: dt.datetime | None = None,
) -> int | None:
    """Cancels; with `rebook`, the new booking's id (None when no slot is free), searched from `now`
    (default: the wall clock)."""
    with conn.transaction():
        remedy_id, vehicle_id, _, details = _open(conn, booking_id)
        store.set_booking(conn, booking_id, "cancelled", f"{reason} ({actor})", actor)
        if rebook:
            return book_visit(
                conn, remedy_id, vehicle_id, details, now or dt.datetime.now(dt.UTC), RemedyReport()
            )
        store.set_remedy(conn, remedy_id, "proposed", f"visit cancelled by {actor}: {reason}", actor=actor)
        return None


def no_show(
    conn: psycopg.Connection, booking_id: int, actor: str, *, now: dt.datetime | None = None
) -> int | None:
    """Records the missed visit; the next booking's id (a slot searched from `now`, default the wall
    clock), or None when the remedy failed instead."""
    with conn.transaction():
        remedy_id, vehicle_id, _, details = _open(conn, booking_id)
        store.set_booking(conn, booking_id, "no_show", f"the vehicle did not come ({actor})", actor)
        (missed,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM bookings WHERE remedy_id = %s AND status = 'no_show'", (remedy_id,)
        ).fetchone()
        if missed >= MAX_NO_SHOWS:
            why = f"{missed} missed visits: the service centre contacts the owner"
            store.set_remedy(conn, remedy_id, "failed", why, actor=actor)
            return None
        return book_visit(
            conn, remedy_id, vehicle_id, details, now or dt.datetime.now(dt.UTC), RemedyReport()
        )


def complete(conn: psycopg.Connection, booking_id: int, actor: str) -> None:
    with conn.transaction():
        remedy_id, _, _, _ = _open(conn, booking_id)
        store.set_booking(conn, booking_id, "completed", f"visit made ({actor})", actor)
        store.set_remedy(conn, remedy_id, "done", f"visit made ({actor})", actor=actor)
