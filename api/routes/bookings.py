"""Shop visits as a service centre sees them: its bookings, each with its history, and the centre's
acts on them (the visit was made, the owner did not come, cancel, reschedule).

Owns: HTTP parameters, status codes, and the rule that another centre's booking is
indistinguishable from one that does not exist (404). A booking is its centre's; an admin sees
all. Leaves the SQL to `api.booking_queries` and the acts (new slots, the remedy's state, the
history) to `remedies.bookings`, the same code as `fleet bookings`. Each act is recorded with the
caller as `role:name`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from api import booking_queries
from api.auth import Principal, Role, require_role
from api.cursors import Cursor, Keyset, Part
from api.db import Conn
from api.params import Limit, Since
from api.read_audit import ReadLog
from api.responses import FORBIDDEN, INVALID_CURSOR, Responses
from api.schemas import (
    BookingActionOut,
    BookingDetail,
    BookingList,
    BookingOut,
    BookingStatus,
    CancelIn,
    Problem,
    RescheduleIn,
)
from remedies import bookings

T = TypeVar("T")
router = APIRouter(prefix="/bookings", tags=["bookings"], responses=FORBIDDEN)  # 403: fleet operators

Caller = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.SERVICE_CENTRE))]
BookingId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The booking's id")]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No such booking, or another centre's"}}
BAD_BODY: Responses = {400: {"model": Problem, "description": "The body is not JSON"}}
ACTED: Responses = {
    **NOT_FOUND,
    409: {
        "model": Problem,
        "description": "The booking is not open any more (completed, cancelled, no-show)",
    },
}


BOOKINGS = Keyset("bookings", (Part.TIME, Part.ID))


@router.get("", responses=INVALID_CURSOR)
def list_bookings(
    principal: Caller,
    conn: Conn,
    note: ReadLog,
    status_: Annotated[BookingStatus | None, Query(alias="status", description="Only this status")] = None,
    since: Since = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> BookingList:
    """The caller's bookings, newest start first, a page at a time."""
    filters = {"status": status_, "since": since}
    after = BOOKINGS.after(cursor, filters)
    rows = booking_queries.list_bookings(
        conn,
        only_centre_id=principal.visible_centre_id,
        status=status_,
        since=since,
        after=(after[0], after[1]) if after else None,
        limit=limit + 1,
    )
    items, next_cursor = BOOKINGS.page(rows, limit, lambda b: (b["starts_at"], b["booking_id"]), filters)
    note(b["vehicle_id"] for b in items)
    return BookingList(
        items=[BookingOut.model_validate(b) for b in items], limit=limit, next_cursor=next_cursor
    )


@router.get("/{booking_id}", responses=NOT_FOUND)
def get_booking(booking_id: BookingId, principal: Caller, conn: Conn, note: ReadLog) -> BookingDetail:
    booking = _visible(conn, booking_id, principal)
    note([booking.vehicle_id])
    return booking


@router.post("/{booking_id}/complete", responses=ACTED)
def complete(booking_id: BookingId, principal: Caller, conn: Conn) -> BookingActionOut:
    """The visit was made: the booking is completed and its remedy done."""
    _visible(conn, booking_id, principal)
    _act(lambda: bookings.complete(conn, booking_id, _actor(principal)))
    return _outcome(conn, booking_id, None, principal)


@router.post("/{booking_id}/no-show", responses=ACTED)
def no_show(booking_id: BookingId, principal: Caller, conn: Conn) -> BookingActionOut:
    """The vehicle did not come: a new slot is booked, or after the second missed visit the remedy
    fails and the centre contacts the owner."""
    _visible(conn, booking_id, principal)
    new = _act(lambda: bookings.no_show(conn, booking_id, _actor(principal)))
    return _outcome(conn, booking_id, new, principal)


@router.post("/{booking_id}/cancel", responses={**ACTED, **BAD_BODY})
def cancel(booking_id: BookingId, body: CancelIn, principal: Caller, conn: Conn) -> BookingActionOut:
    """Cancel; with `rebook`, book the next free slot at once (else the remedy waits for a decision)."""
    _visible(conn, booking_id, principal)
    new = _act(lambda: bookings.cancel(conn, booking_id, _actor(principal), body.reason, rebook=body.rebook))
    return _outcome(conn, booking_id, new, principal)


@router.post(
    "/{booking_id}/reschedule",
    responses={
        **ACTED,
        **BAD_BODY,
        409: {"model": Problem, "description": "Not open any more, or no free slot (it is kept)"},
    },
)
def reschedule(booking_id: BookingId, body: RescheduleIn, principal: Caller, conn: Conn) -> BookingActionOut:
    """Move the visit to the next free slot at or after `not_before` (any centre with the skill);
    when there is none the booking is kept and the answer is 409."""
    _visible(conn, booking_id, principal)
    new = _act(lambda: bookings.reschedule(conn, booking_id, _actor(principal), not_before=body.not_before))
    if new is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "no free slot at or after that time: the booking is kept"
        )
    return _outcome(conn, booking_id, new, principal)


def _visible(conn: psycopg.Connection, booking_id: int, principal: Principal) -> BookingDetail:
    row = booking_queries.find_booking(conn, booking_id, only_centre_id=principal.visible_centre_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"booking {booking_id} not found")
    return BookingDetail.model_validate(row)


def _act(act: Callable[[], T]) -> T:
    """Run a `remedies.bookings` act; a booking that is not open any more is a 409."""
    try:
        return act()
    except LookupError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


def _outcome(
    conn: psycopg.Connection, booking_id: int, new_id: int | None, principal: Principal
) -> BookingActionOut:
    new = None
    if new_id is not None:
        row = booking_queries.find_booking(conn, new_id, only_centre_id=principal.visible_centre_id)
        new = BookingOut.model_validate(row) if row is not None else None
    return BookingActionOut(
        booking=_visible(conn, booking_id, principal), next_booking=new, rebooked=new_id is not None
    )


def _actor(principal: Principal) -> str:
    return f"{principal.role.value}:{principal.name}"
