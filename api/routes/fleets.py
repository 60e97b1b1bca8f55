"""The fleet queries over HTTP (docs/fleet-queries.md): `/v1/fleets/{fleet_id}/<query>`.

Owns: parameters, status codes and response shapes of the six queries. Admins may query every
fleet and fleet operators the fleets their token names; a fleet outside the caller's scope gets
the same 404 as one that does not exist (the scope is applied in the queries' SQL,
`api.fleet_queries.sql`); service centres get 403. Leaves the queries to `api.fleet_queries`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator, WithJsonSchema

from api.auth import FleetRole
from api.db import Conn
from api.fleet_queries import (
    DEFAULT_DAYS,
    MAX_DAYS,
    FleetAnswer,
    FleetQuery,
    InvalidUntil,
    UnknownFleet,
    run_query,
)
from api.params import TIMESTAMP_RULE, parse_rfc3339
from api.responses import FORBIDDEN
from api.schemas import Problem
from api.schemas_fleet import (
    ActivityAnswer,
    ActivityOut,
    DrivingAnswer,
    DrivingOut,
    LocationAnswer,
    LocationOut,
    LowFuelAnswer,
    LowFuelOut,
    StationaryAnswer,
    StationaryOut,
)
from contract.batch import VEHICLE_ID_PATTERN

router = APIRouter(
    prefix="/fleets/{fleet_id}",
    tags=["fleet queries"],
    responses={
        403: {**FORBIDDEN[403], "description": "This role may not use fleet queries (service centres)"},
        404: {"model": Problem, "description": "No such fleet, or not one this caller may query"},
    },
)

FleetId = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN.pattern, description="A registry fleet id")]
Until = Annotated[
    dt.datetime | None,
    BeforeValidator(parse_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
    Query(description=f"Answer as of this time (default: now): {TIMESTAMP_RULE}"),
]
Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description=f"UTC days to report, 1-{MAX_DAYS}")]


def _answer(
    conn: Conn, principal: FleetRole, query: FleetQuery, fleet_id: str, until: dt.datetime | None, days: int
) -> FleetAnswer:
    try:
        return run_query(
            conn, query, fleet_id, until=until, days=days, only_fleet_ids=principal.visible_fleet_ids
        )
    except UnknownFleet:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"fleet {fleet_id!r} not found") from None
    except InvalidUntil as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "until"), "msg": str(exc), "input": str(until)}]
        ) from None


@router.get("/last-location")
def last_location(fleet_id: FleetId, principal: FleetRole, conn: Conn, until: Until = None) -> LocationAnswer:
    """Each vehicle's newest latitude and longitude at or before `until`."""
    answer = _answer(conn, principal, FleetQuery.LAST_LOCATION, fleet_id, until, DEFAULT_DAYS)
    items = [LocationOut.model_validate(r) for r in answer.rows]
    return LocationAnswer(**LocationAnswer.header(answer), items=items)  # type: ignore[arg-type]


@router.get("/low-fuel")
def low_fuel(fleet_id: FleetId, principal: FleetRole, conn: Conn, until: Until = None) -> LowFuelAnswer:
    """Vehicles whose newest fuel level (state of charge for an electric vehicle) is below 10 %."""
    answer = _answer(conn, principal, FleetQuery.LOW_FUEL, fleet_id, until, DEFAULT_DAYS)
    items = [LowFuelOut.model_validate(r) for r in answer.rows]
    return LowFuelAnswer(**LowFuelAnswer.header(answer), items=items)  # type: ignore[arg-type]


@router.get("/stationary")
def stationary(fleet_id: FleetId, principal: FleetRole, conn: Conn, until: Until = None) -> StationaryAnswer:
    """Vehicles whose average speed in the last complete 10-minute bucket is below 1 km/h."""
    answer = _answer(conn, principal, FleetQuery.STATIONARY, fleet_id, until, DEFAULT_DAYS)
    items = [StationaryOut.model_validate(r) for r in answer.rows]
    return StationaryAnswer(**StationaryAnswer.header(answer), items=items)  # type: ignore[arg-type]


def _driving(answer: FleetAnswer) -> DrivingAnswer:
    items = [
        DrivingOut(vehicle_id=r.vehicle_id, driving_buckets=r.driving_buckets, driving_hours=r.driving_hours)  # type: ignore[union-attr]
        for r in answer.rows
    ]
    return DrivingAnswer(**DrivingAnswer.header(answer), items=items)  # type: ignore[arg-type]


@router.get("/long-driving")
def long_driving(fleet_id: FleetId, principal: FleetRole, conn: Conn, until: Until = None) -> DrivingAnswer:
    """Vehicles with more than 22 driving 10-minute buckets in the 4 hours before `until`."""
    return _driving(_answer(conn, principal, FleetQuery.LONG_DRIVING, fleet_id, until, DEFAULT_DAYS))


@router.get("/long-daily")
def long_daily(fleet_id: FleetId, principal: FleetRole, conn: Conn, until: Until = None) -> DrivingAnswer:
    """Vehicles with more than 60 driving 10-minute buckets in the 24 hours before `until`."""
    return _driving(_answer(conn, principal, FleetQuery.LONG_DAILY, fleet_id, until, DEFAULT_DAYS))


@router.get("/daily-activity")
def daily_activity(
    fleet_id: FleetId, principal: FleetRole, conn: Conn, until: Until = None, days: Days = DEFAULT_DAYS
) -> ActivityAnswer:
    """Per model and UTC day: the vehicles that drove and their driving hours."""
    answer = _answer(conn, principal, FleetQuery.DAILY_ACTIVITY, fleet_id, until, days)
    items = [
        ActivityOut(
            day=r.day.astimezone(dt.UTC).date(),  # type: ignore[union-attr]
            model_id=r.model_id,  # type: ignore[union-attr]
            vehicles_driving=r.vehicles_driving,  # type: ignore[union-attr]
            driving_buckets=r.driving_buckets,  # type: ignore[union-attr]
            driving_hours=r.driving_hours,  # type: ignore[union-attr]
        )
        for r in answer.rows
    ]
    return ActivityAnswer(**ActivityAnswer.header(answer), items=items)  # type: ignore[arg-type]
