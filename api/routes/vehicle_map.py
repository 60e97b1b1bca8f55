"""The role-scoped layers of the fleet map (docs/map.md): `/vehicle-positions` as GeoJSON and
`/alarm-counts`, the active alarms per service centre.

Owns: parameters, status codes and which vehicles a role's map shows (`scope_of`): a service
centre its own vehicles, a fleet operator its fleets' vehicles, an admin all of them; any other
role gets 403. Leaves the SQL (where the scope is applied) to `api.map_queries`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api import map_queries
from api.auth import Principal, Role, require_role
from api.db import Conn
from api.map_queries import Scope, VehicleFilter
from api.responses import FORBIDDEN
from api.schemas_map import AlarmCounts, CentreAlarmCounts, Severity, VehicleCollection
from contract.batch import VEHICLE_ID_PATTERN

MAP_ROLES = (Role.ADMIN, Role.SERVICE_CENTRE, Role.FLEET_OPERATOR)  # the roles `scope_of` knows
# 403 is documented when a role exists that the guard refuses (e.g. one added after these routes).
router = APIRouter(tags=["fleet map"], responses=FORBIDDEN if set(MAP_ROLES) != set(Role) else {})

MAX_VEHICLES = 10_000
FAULT_PATTERN = (
    r"^[A-Za-z0-9_.:-]{1,200}$"  # fault kinds: `tyre_slow_leak`, `dtc:P0217`, `sensor_stuck:<VSS path>`
)
MapRole = Annotated[Principal, Depends(require_role(*MAP_ROLES))]
RegistryId = Annotated[str | None, Query(pattern=VEHICLE_ID_PATTERN.pattern, description="A registry id")]


def scope_of(principal: Principal) -> Scope:
    """The vehicles `principal` may see on the map. Raises ValueError for a role without a map
    scope (the route's role guard admits none)."""
    if principal.role is Role.ADMIN:
        return Scope()
    if principal.role is Role.SERVICE_CENTRE:
        return Scope(centre_id=principal.service_centre_id)
    if principal.role is Role.FLEET_OPERATOR:
        return Scope(fleet_ids=principal.fleet_ids)
    raise ValueError(f"no map scope for role {principal.role}")


@router.get("/vehicle-positions")
def vehicle_positions(
    principal: MapRole,
    conn: Conn,
    fleet_id: RegistryId = None,
    service_centre_id: RegistryId = None,
    fault: Annotated[
        str | None,
        Query(
            pattern=FAULT_PATTERN,
            description="Only vehicles with an active alarm of this fault, e.g. brake_pad_wear or dtc:P0217",
        ),
    ] = None,
    severity: Annotated[
        Severity | None, Query(description="Only vehicles with an active alarm of this severity")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_VEHICLES, description=f"Most vehicles to return, 1-{MAX_VEHICLES}")
    ] = 5000,
) -> VehicleCollection:
    """The caller's vehicles as a GeoJSON FeatureCollection by vehicle id: each one's newest
    position (null geometry when it never sent one), registry ids and active alarms. A filter for
    a fleet or centre outside the caller's scope gives an empty collection."""
    narrow = VehicleFilter(fleet_id, service_centre_id, fault, severity)
    found = map_queries.vehicle_positions(conn, scope_of(principal), narrow, limit=limit)
    features = [
        {
            "type": "Feature",
            "id": r["vehicle_id"],
            "geometry": None
            if r["lat"] is None or r["lon"] is None
            else {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
            "properties": {
                k: r[k] for k in ("vehicle_id", "fleet_id", "service_centre_id", "model_id", "alarms")
            }
            | {"position_ts": r["position_ts"]},
        }
        for r in found.rows
    ]
    return VehicleCollection.model_validate(
        {"type": "FeatureCollection", "features": features, "limit": limit, "truncated": found.truncated}
    )


@router.get("/alarm-counts")
def alarm_counts(principal: MapRole, conn: Conn, fleet_id: RegistryId = None) -> AlarmCounts:
    """Active alarms by severity per service centre, over the caller's vehicles (of `fleet_id`, if
    given): every centre for an admin, its own for a service centre, and for a fleet operator the
    centres its fleets' vehicles belong to."""
    rows = map_queries.alarm_counts(conn, scope_of(principal), fleet_id=fleet_id)
    items = [
        CentreAlarmCounts(
            service_centre_id=r["service_centre_id"],
            name=r["name"],
            lat=r["lat"],
            lon=r["lon"],
            active={s: int(r[s]) for s in map_queries.SEVERITIES},
            total=sum(int(r[s]) for s in map_queries.SEVERITIES),
            vehicles_with_alarms=int(r["vehicles_with_alarms"]),
        )
        for r in rows
    ]
    return AlarmCounts(items=items)
