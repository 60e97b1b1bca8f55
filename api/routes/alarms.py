"""Alarms as a caller may see them: the lists (all visible, or one vehicle's), one alarm with its
evidence and history, and a service centre's acts on its own vehicles' alarms (acknowledge,
resolve).

Owns: HTTP parameters, status codes, who may read and who may act, and the rule that an alarm or
vehicle outside the caller's scope is indistinguishable from one that does not exist (404). Service
centres see and act on their vehicles' alarms; fleet operators read their fleets' alarms and
engineers every alarm (both 403 on the acts, which declare it); admins see and act on every
alarm. Leaves the SQL to `api.alarm_queries` and the acts (the lock against the analytics job, the
history rows, what a resolve holds) to `analytics.alarm_store`. Each act is recorded with the
caller as `role:name`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from analytics import alarm_store
from api import alarm_queries
from api.alarm_queries import AlarmFilters, AlarmScope
from api.auth import Principal, Role, require_role
from api.cursors import Cursor, Keyset, Part
from api.db import Conn
from api.params import Limit
from api.read_audit import ReadLog
from api.responses import FORBIDDEN, INVALID_CURSOR, VEHICLE_NOT_FOUND, Responses
from api.schemas import Problem
from api.schemas_alarms import AlarmDetail, AlarmList, AlarmOut, AlarmSeverity, AlarmState
from contract.batch import VEHICLE_ID_PATTERN

router = APIRouter(tags=["alarms"])

Reader = Annotated[
    Principal, Depends(require_role(Role.ADMIN, Role.SERVICE_CENTRE, Role.FLEET_OPERATOR, Role.ENGINEER))
]
Actor = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.SERVICE_CENTRE))]
AlarmId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The alarm's id")]
VehicleId = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN.pattern, description="1-64 of [A-Za-z0-9_.-]")]
NOT_FOUND: Responses = {
    404: {"model": Problem, "description": "No such alarm, or not visible to this caller"}
}

Severity = Annotated[AlarmSeverity | None, Query(description="Only this severity")]
Fault = Annotated[
    str | None, Query(min_length=1, max_length=100, description="Only this fault kind, e.g. dtc:P0301")
]
State = Annotated[AlarmState | None, Query(description="active: not cleared; cleared: cleared or resolved")]
Acknowledged = Annotated[bool | None, Query(description="true: only acknowledged; false: only not yet")]

ALARMS = Keyset("alarms", (Part.TIME, Part.ID))
VEHICLE_ALARMS = Keyset("vehicle-alarms", (Part.TIME, Part.ID))


def alarm_scope(principal: Principal) -> AlarmScope:
    """The vehicles whose alarms `principal` sees (its role decides)."""
    if principal.role is Role.SERVICE_CENTRE:
        return AlarmScope(centre_id=principal.service_centre_id)
    if principal.role is Role.FLEET_OPERATOR:
        return AlarmScope(fleet_ids=principal.fleet_ids)
    return AlarmScope()


def _page(
    conn: Conn,
    principal: Principal,
    note: ReadLog,
    keyset: Keyset,
    filters: AlarmFilters,
    limit: int,
    cursor: str | None,
) -> AlarmList:
    digest = {k: getattr(filters, k) for k in AlarmFilters.__dataclass_fields__}
    after = keyset.after(cursor, digest)
    rows = alarm_queries.list_alarms(
        conn, alarm_scope(principal), filters, after=(after[0], after[1]) if after else None, limit=limit + 1
    )
    items, next_cursor = keyset.page(rows, limit, lambda a: (a["raised_at"], a["alarm_id"]), digest)
    note(a["vehicle_id"] for a in items)
    return AlarmList(items=[AlarmOut.model_validate(a) for a in items], limit=limit, next_cursor=next_cursor)


@router.get("/alarms", responses=INVALID_CURSOR)
def list_alarms(
    principal: Reader,
    conn: Conn,
    note: ReadLog,
    vehicle_id: Annotated[
        str | None, Query(pattern=VEHICLE_ID_PATTERN.pattern, description="Only this vehicle's")
    ] = None,
    service_centre_id: Annotated[
        str | None,
        Query(
            pattern=VEHICLE_ID_PATTERN.pattern,
            description="Only alarms of vehicles whose home centre this is",
        ),
    ] = None,
    severity: Severity = None,
    fault: Fault = None,
    state: State = None,
    acknowledged: Acknowledged = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> AlarmList:
    """The alarms of the vehicles this caller may see, newest first, a page at a time."""
    filters = AlarmFilters(
        vehicle_id,
        service_centre_id,
        severity,
        fault,
        None if state is None else state == "active",
        acknowledged,
    )
    return _page(conn, principal, note, ALARMS, filters, limit, cursor)


@router.get("/vehicles/{vehicle_id}/alarms", responses={**INVALID_CURSOR, **VEHICLE_NOT_FOUND})
def list_vehicle_alarms(
    vehicle_id: VehicleId,
    principal: Reader,
    conn: Conn,
    note: ReadLog,
    severity: Severity = None,
    fault: Fault = None,
    state: State = None,
    acknowledged: Acknowledged = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> AlarmList:
    """One vehicle's alarms, newest first, a page at a time; 404 for a vehicle this caller may not see."""
    if not alarm_queries.vehicle_visible(conn, vehicle_id, alarm_scope(principal)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"vehicle {vehicle_id!r} not found")
    active = None if state is None else state == "active"
    filters = AlarmFilters(vehicle_id, None, severity, fault, active, acknowledged)
    return _page(conn, principal, note, VEHICLE_ALARMS, filters, limit, cursor)


@router.get("/alarms/{alarm_id}", responses=NOT_FOUND)
def get_alarm(alarm_id: AlarmId, principal: Reader, conn: Conn, note: ReadLog) -> AlarmDetail:
    """One alarm with its evidence, explanation, thresholds version and every change."""
    alarm = _visible(conn, alarm_id, principal)
    note([alarm.vehicle_id])
    return alarm


@router.post(
    "/alarms/{alarm_id}/acknowledge",
    responses={**NOT_FOUND, **FORBIDDEN, 409: {"model": Problem, "description": "Already acknowledged"}},
)
def acknowledge(alarm_id: AlarmId, principal: Actor, conn: Conn) -> AlarmDetail:
    """Record that the caller has seen the alarm (it stays active: acknowledging is not clearing)."""
    _visible(conn, alarm_id, principal)
    if not alarm_store.acknowledge(conn, alarm_id, _actor(principal)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"alarm {alarm_id} was acknowledged before")
    return _visible(conn, alarm_id, principal)


@router.post(
    "/alarms/{alarm_id}/resolve",
    responses={
        **NOT_FOUND,
        **FORBIDDEN,
        409: {"model": Problem, "description": "Not active: cleared or resolved before"},
    },
)
def resolve(alarm_id: AlarmId, principal: Actor, conn: Conn) -> AlarmDetail:
    """The fault is dealt with: the alarm is cleared now, its remedy resolved at the engine's next
    run (a visit not yet made is cancelled), and the analysis does not raise it again while its
    detector still sees the same episode, unless the fault gets more severe (docs/api.md)."""
    _visible(conn, alarm_id, principal)
    if not alarm_store.resolve(conn, alarm_id, _actor(principal)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"alarm {alarm_id} is not active (cleared or resolved)")
    return _visible(conn, alarm_id, principal)


def _visible(conn: Conn, alarm_id: int, principal: Principal) -> AlarmDetail:
    row = alarm_queries.find_alarm(conn, alarm_id, alarm_scope(principal))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alarm {alarm_id} not found")
    return AlarmDetail.model_validate(row)


def _actor(principal: Principal) -> str:
    return f"{principal.role.value}:{principal.name}"
