"""Vehicles as seen by a caller: the fleet list (cursor pages), each vehicle's latest state
(positions coarsened for an engineer, `api.privacy.positions`), its DTC reports, its connection
status and its software inventory. Each answer is noted in the read audit log (`api.read_audit`).

Owns: HTTP parameters, status codes and the rule that a vehicle outside the caller's scope is
indistinguishable from one that does not exist. Leaves SQL and scoping to `api.repository`, who the
caller is to `api.auth`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from api import repository
from api.auth import AnyRole
from api.cursors import Cursor, Keyset, Part
from api.db import Conn
from api.params import Limit, Since
from api.privacy.positions import coarsen_signals
from api.read_audit import ReadLog
from api.responses import FORBIDDEN, INVALID_CURSOR, VEHICLE_NOT_FOUND
from api.schemas import (
    DtcHistory,
    DtcReportOut,
    EcuSoftwareOut,
    LatestOut,
    SoftwareInventory,
    StatusOut,
    VehicleList,
    VehicleOut,
)
from contract.batch import VEHICLE_ID_PATTERN

router = APIRouter(prefix="/vehicles", tags=["vehicles"], responses=FORBIDDEN)  # 403: fleet operators
# Engineers read every vehicle, with positions coarsened (`api.privacy.positions`).

VehicleId = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN.pattern, description="1-64 of [A-Za-z0-9_.-]")]


VEHICLES = Keyset("vehicles", (Part.VEHICLE_ID,))


@router.get("", responses=INVALID_CURSOR)
def list_vehicles(
    principal: AnyRole, conn: Conn, note: ReadLog, limit: Limit = 100, cursor: Cursor = None
) -> VehicleList:
    """The vehicles this caller may see, by id, a page at a time."""
    after = VEHICLES.after(cursor, {})
    rows = repository.list_vehicles(
        conn, only_centre_id=principal.visible_centre_id, after=after[0] if after else None, limit=limit + 1
    )
    items, next_cursor = VEHICLES.page(rows, limit, lambda v: (v.vehicle_id,), {})
    note(v.vehicle_id for v in items)
    return VehicleList(
        items=[VehicleOut.model_validate(v) for v in items], limit=limit, next_cursor=next_cursor
    )


@router.get(
    "/{vehicle_id}/latest",
    responses={404: {**VEHICLE_NOT_FOUND[404], "description": "No such vehicle, not visible, or no data"}},
)
def get_latest(vehicle_id: VehicleId, principal: AnyRole, conn: Conn, note: ReadLog) -> LatestOut:
    record = repository.find_latest(conn, vehicle_id, only_centre_id=principal.visible_centre_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"vehicle {vehicle_id!r} not found")
    if record.ts is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"vehicle {vehicle_id!r} has not sent any data yet")
    note([vehicle_id])
    if principal.coarse_positions:
        record = dataclasses.replace(record, signals=coarsen_signals(record.signals))
    return LatestOut.from_record(record)


@router.get("/{vehicle_id}/dtc", responses=VEHICLE_NOT_FOUND)
def get_dtc_reports(
    vehicle_id: VehicleId,
    principal: AnyRole,
    conn: Conn,
    note: ReadLog,
    since: Since = None,
    limit: Limit = 100,
) -> DtcHistory:
    """The trouble codes a vehicle reported, newest first: what a service centre checks before
    booking a visit. Each report is the whole set stored at that moment, so the first is current."""
    records = repository.find_dtc_reports(
        conn, vehicle_id, only_centre_id=principal.visible_centre_id, since=since, limit=limit
    )
    if records is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"vehicle {vehicle_id!r} not found")
    note([vehicle_id])
    reports = [DtcReportOut.model_validate(r) for r in records]
    return DtcHistory(
        vehicle_id=vehicle_id, current=reports[0] if reports else None, reports=reports, limit=limit
    )


@router.get("/{vehicle_id}/status", responses=VEHICLE_NOT_FOUND)
def get_status(vehicle_id: VehicleId, principal: AnyRole, conn: Conn, note: ReadLog) -> StatusOut:
    """Whether the vehicle's unit is connected, and what its agent last reported about itself
    (which campaign it runs, how much data waits in its queue, what it had to drop)."""
    record = repository.find_status(conn, vehicle_id, only_centre_id=principal.visible_centre_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"vehicle {vehicle_id!r} not found")
    note([vehicle_id])
    return StatusOut.model_validate(record)


@router.get("/{vehicle_id}/software", responses=VEHICLE_NOT_FOUND)
def get_software(vehicle_id: VehicleId, principal: AnyRole, conn: Conn, note: ReadLog) -> SoftwareInventory:
    """The software version each ECU runs, as the vehicle's agent last reported it (not the
    agent's own version, which is in the status): what a service centre checks before a visit."""
    records = repository.find_software(conn, vehicle_id, only_centre_id=principal.visible_centre_id)
    if records is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"vehicle {vehicle_id!r} not found")
    note([vehicle_id])
    return SoftwareInventory(vehicle_id=vehicle_id, ecus=[EcuSoftwareOut.model_validate(r) for r in records])
