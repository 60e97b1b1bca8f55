"""The fleet queries (the TSBS IoT use case; docs/fleet-queries.md), shared by `fleet query` and the
API's fleet routes: pure definitions and SQL builders, and a thin runner.

Owns: what the six queries mean and how they are answered from the last-state table and the
10-minute aggregate. Leaves HTTP to `api.routes.fleets` and the command line to `fleet`.
"""

from api.fleet_queries.definitions import DEFAULT_DAYS, MAX_DAYS, FleetQuery, InvalidUntil, Window
from api.fleet_queries.records import (
    ActivityRow,
    DrivingRow,
    FleetAnswer,
    LocationRow,
    LowFuelRow,
    StationaryRow,
)
from api.fleet_queries.refresh import refresh_pending
from api.fleet_queries.runner import UnknownFleet, run_query

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "ActivityRow",
    "DrivingRow",
    "FleetAnswer",
    "FleetQuery",
    "InvalidUntil",
    "LocationRow",
    "LowFuelRow",
    "StationaryRow",
    "UnknownFleet",
    "Window",
    "refresh_pending",
    "run_query",
]
