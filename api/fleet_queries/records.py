"""The rows each fleet query answers with (table-shaped records, not API shapes).

Owns: one frozen dataclass per query and the answer that carries them with its window. Leaves the
HTTP shapes to `api.schemas_fleet` and the SQL to `api.fleet_queries.sql`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from api.fleet_queries.definitions import BUCKET_S, FleetQuery, Window


@dataclass(frozen=True, slots=True)
class LocationRow:
    """Newest latitude and longitude at or before `until`, each with its own time (a row may lack
    one of them when the vehicle sent it NULL)."""

    vehicle_id: str
    latitude_deg: float | None
    latitude_ts: dt.datetime | None
    longitude_deg: float | None
    longitude_ts: dt.datetime | None


@dataclass(frozen=True, slots=True)
class LowFuelRow:
    """`signal` is fuel_level or state_of_charge (which one: docs/fleet-queries.md)."""

    vehicle_id: str
    model_id: str | None
    powertrain: str | None
    signal: str
    level_pct: float
    ts: dt.datetime


@dataclass(frozen=True, slots=True)
class StationaryRow:
    vehicle_id: str
    speed_avg_kmh: float
    speed_samples: int


@dataclass(frozen=True, slots=True)
class DrivingRow:
    """long-driving and long-daily: the 10-minute buckets with average speed above 1 km/h."""

    vehicle_id: str
    driving_buckets: int

    @property
    def driving_hours(self) -> float:
        return self.driving_buckets * BUCKET_S / 3600


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One UTC day and model of the fleet: vehicles with at least one driving bucket that day, and
    their driving buckets summed (`model_id` None: vehicles without a model)."""

    day: dt.datetime
    model_id: str | None
    vehicles_driving: int
    driving_buckets: int

    @property
    def driving_hours(self) -> float:
        return self.driving_buckets * BUCKET_S / 3600


Row = LocationRow | LowFuelRow | StationaryRow | DrivingRow | ActivityRow
ROW_OF: dict[FleetQuery, type[Row]] = {
    FleetQuery.LAST_LOCATION: LocationRow,
    FleetQuery.LOW_FUEL: LowFuelRow,
    FleetQuery.STATIONARY: StationaryRow,
    FleetQuery.LONG_DRIVING: DrivingRow,
    FleetQuery.LONG_DAILY: DrivingRow,
    FleetQuery.DAILY_ACTIVITY: ActivityRow,
}


@dataclass(frozen=True, slots=True)
class FleetAnswer:
    """`refreshed` counts the pending ranges aggregated before answering (0: already current)."""

    query: FleetQuery
    fleet_id: str
    window: Window
    refreshed: int
    rows: tuple[Row, ...]
