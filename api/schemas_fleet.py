"""The fleet queries' response shapes (docs/fleet-queries.md), kept apart from their records in
`api.fleet_queries.records`.

Owns: what clients see of a fleet answer: the window it covers, whether stale buckets were
refreshed first, and one item list per query, with units in the field names.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from api.fleet_queries import FleetAnswer


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LocationOut(_Row):
    vehicle_id: str
    latitude_deg: float | None = Field(description="WGS84; null if the vehicle never sent one by `until`")
    latitude_ts: datetime | None = Field(description="When that latitude was sampled")
    longitude_deg: float | None
    longitude_ts: datetime | None


class LowFuelOut(_Row):
    vehicle_id: str
    model_id: str | None
    powertrain: str | None
    signal: str = Field(description="fuel_level or state_of_charge (which one: by powertrain)")
    level_pct: float = Field(description="Newest value at or before `until`, below 10 %")
    ts: datetime = Field(description="When that value was sampled")


class StationaryOut(_Row):
    vehicle_id: str
    speed_avg_kmh: float = Field(description="Average of the speed samples of the bucket, below 1 km/h")
    speed_samples: int


class DrivingOut(_Row):
    vehicle_id: str
    driving_buckets: int = Field(description="10-minute buckets with average speed above 1 km/h")
    driving_hours: float = Field(description="driving_buckets / 6")


class ActivityOut(_Row):
    day: date = Field(description="UTC day")
    model_id: str | None = Field(description="null: the fleet's vehicles without a model")
    vehicles_driving: int = Field(description="Vehicles with at least one driving bucket that day")
    driving_buckets: int
    driving_hours: float = Field(description="driving_buckets / 6, summed over the vehicles")


class _Answer(BaseModel):
    query: str
    fleet_id: str
    until: datetime
    window_start: datetime | None = Field(
        description="First bucket read (null: newest values, no lower bound)"
    )
    window_end: datetime = Field(
        description="The last 10-minute edge at or before `until`: buckets end here (exclusive)"
    )
    refreshed_ranges: int = Field(description="Pending ranges aggregated before answering (0: none)")

    @staticmethod
    def header(answer: FleetAnswer) -> dict[str, object]:
        return {
            "query": answer.query.value,
            "fleet_id": answer.fleet_id,
            "until": answer.window.until,
            "window_start": answer.window.start,
            "window_end": answer.window.edge,
            "refreshed_ranges": max(answer.refreshed, 0),
        }


class LocationAnswer(_Answer):
    items: list[LocationOut]


class LowFuelAnswer(_Answer):
    items: list[LowFuelOut]


class StationaryAnswer(_Answer):
    items: list[StationaryOut]


class DrivingAnswer(_Answer):
    items: list[DrivingOut]


class ActivityAnswer(_Answer):
    items: list[ActivityOut]
