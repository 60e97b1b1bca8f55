"""The API's routers, gathered in one place: adding a resource means one module and one line here.

Every router but health is behind a bearer token and under `/v1` (the version of the API: a
breaking change would come as `/v2` beside it), so it is included with the responses that
implies (401, 503; `api.responses`), declared here once, not route by route, and with the check
that refuses query parameters its routes do not have (422, after the token check).
"""

from fastapi import APIRouter, Depends

from api.params import reject_unknown_query_params
from api.responses import AUTHENTICATED
from api.routes import (
    alarms,
    audit,
    bookings,
    fleets,
    hazards,
    health,
    map_page,
    roads,
    vehicle_map,
    vehicles,
)

PUBLIC_ROUTERS = (health.router, map_page.router)
AUTHENTICATED_ROUTERS = (
    vehicles.router,
    bookings.router,
    fleets.router,
    alarms.router,
    audit.router,
    hazards.router,
    roads.router,
    vehicle_map.router,
)

API_PREFIX = "/v1"

api_router = APIRouter()
for _router in PUBLIC_ROUTERS:
    api_router.include_router(_router)
for _router in AUTHENTICATED_ROUTERS:
    api_router.include_router(
        _router,
        prefix=API_PREFIX,
        responses=AUTHENTICATED,
        dependencies=[Depends(reject_unknown_query_params)],
    )

__all__ = ["API_PREFIX", "api_router"]
