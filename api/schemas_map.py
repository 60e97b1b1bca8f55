"""The response shapes of the map routes: hazards and roads as GeoJSON (RFC 7946), hazards by H3
cell, vehicle positions as GeoJSON, and active alarm counts per service centre.

Owns: what clients see of these layers. Coordinates are [longitude, latitude] in WGS84 degrees, as
RFC 7946 orders them. A collection says which box it answers (`bbox`), the `limit` it was cut at
and whether more features were there (`truncated`): foreign members, which GeoJSON allows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

HazardKind = Literal["pothole", "slippery", "junction"]
Position = list[float]  # [lon, lat]


class PointGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: Position = Field(min_length=2, max_length=2, description="[lon, lat], degrees")


class LineGeometry(BaseModel):
    type: Literal["LineString"]
    coordinates: list[Position] = Field(min_length=2, description="[[lon, lat], ...], degrees")


class HazardProperties(BaseModel):
    """An anonymous aggregate (docs/hazards.md section 5): no vehicle id, no event's own position
    or time."""

    id: int = Field(description="The site id, stable while the site lives")
    kind: HazardKind
    state: Literal["candidate", "confirmed", "retracted"]
    confidence: float = Field(ge=0, le=1, description="Belief that the hazard is still there")
    vehicles: int = Field(description="Distinct vehicles that had an event there")
    events: int
    passes: int = Field(description="Visits counted as evidence, with or without an event")
    event_rate: float | None = Field(description="Share of the passes with an event; null without passes")
    length_m: float = Field(description="A slippery stretch's length; 0 for a point")
    first_seen_hour: str | None = Field(description="Hour (UTC, ISO 8601) of the first event")
    last_seen_hour: str | None = Field(description="Hour (UTC, ISO 8601) of the newest event")
    thresholds_version: str


class HazardFeature(BaseModel):
    type: Literal["Feature"]
    geometry: PointGeometry | LineGeometry = Field(description="A Point, or a LineString for a stretch")
    properties: HazardProperties


class HazardCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[HazardFeature] = Field(description="By site id")
    bbox: list[float] = Field(
        min_length=4, max_length=4, description="The box asked: [west, south, east, north]"
    )
    limit: int
    truncated: bool = Field(description="More hazards are in the box than `limit`: ask for a smaller box")


class HazardCell(BaseModel):
    cell: str = Field(description="H3 cell index (hexadecimal)")
    resolution: int
    kinds: dict[str, int] = Field(
        description="Hazards in the cell by kind (a stretch counts in every cell it crosses)"
    )
    confidence: float = Field(description="The highest confidence of the hazards in the cell")
    hazards: list[int] = Field(description="Their site ids")
    boundary: list[Position] = Field(description="The cell's outline, [[lon, lat], ...], closed")


class HazardCells(BaseModel):
    resolution: int
    cells: list[HazardCell] = Field(description="By cell index")
    bbox: list[float] = Field(
        min_length=4, max_length=4, description="The box asked: [west, south, east, north]"
    )
    limit: int = Field(description="At most this many hazards were put into cells")
    truncated: bool


class RoadProperties(BaseModel):
    road_class: str = Field(description="e.g. local, arterial, highway, ramp (OSM: the highway tag)")
    name: str
    maxspeed_kmh: float | None = Field(description="Speed limit; null when unknown")
    oneway: bool


class RoadFeature(BaseModel):
    type: Literal["Feature"]
    geometry: LineGeometry
    properties: RoadProperties


class RoadCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[RoadFeature]
    bbox: list[float] = Field(
        min_length=4, max_length=4, description="The box asked: [west, south, east, north]"
    )
    limit: int
    truncated: bool


class RoadExtentOut(BaseModel):
    segments: int = Field(
        description="Road segments stored (`fleet roads import`, `fleet demo`, `fleet simulate`)"
    )
    bbox: list[float] | None = Field(
        description="[west, south, east, north] around them all; null without roads"
    )


class ActiveAlarm(BaseModel):
    fault: str
    severity: str
    raised_at: datetime


class VehicleMapProperties(BaseModel):
    vehicle_id: str
    fleet_id: str | None
    service_centre_id: str | None
    model_id: str | None
    position_ts: datetime | None = Field(description="When the vehicle reported this position; null: never")
    alarms: list[ActiveAlarm] = Field(description="Its active alarms, by fault")


class VehicleFeature(BaseModel):
    type: Literal["Feature"]
    id: str = Field(description="The vehicle id")
    geometry: PointGeometry | None = Field(description="Its newest position; null when it never sent one")
    properties: VehicleMapProperties


class VehicleCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[VehicleFeature] = Field(description="By vehicle id")
    limit: int
    truncated: bool = Field(description="More vehicles match than `limit`")


Severity = Literal["CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE"]


class CentreAlarmCounts(BaseModel):
    service_centre_id: str
    name: str
    lat: float | None
    lon: float | None
    active: dict[Severity, int] = Field(description="Active (not cleared) alarms by severity")
    total: int
    vehicles_with_alarms: int


class AlarmCounts(BaseModel):
    items: list[CentreAlarmCounts] = Field(description="By centre id")
