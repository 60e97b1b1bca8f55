"""The road network over HTTP (docs/map.md): `/roads` as GeoJSON lines for a bounding box and
`/roads/extent`, what a map draws when it has no tile server.

Owns: parameters and the GeoJSON shape of `road_segments`, which `fleet roads import`, `fleet demo`
and `fleet simulate` fill (the simulator's network export, or OpenStreetMap lines). Roads are
public knowledge, so every authenticated role may read them. Leaves the SQL to
`api.hazard_queries`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api import hazard_queries
from api.auth import Principal, Role, require_role
from api.db import Conn
from api.map_params import Bbox, bbox
from api.schemas_map import RoadCollection, RoadExtentOut

router = APIRouter(prefix="/roads", tags=["roads"])

MAX_SEGMENTS = 50_000
Caller = Annotated[Principal, Depends(require_role(*Role))]  # every role, including any added later


@router.get("")
def list_roads(
    _caller: Caller,
    conn: Conn,
    box: Annotated[Bbox, Depends(bbox)],
    limit: Annotated[
        int, Query(ge=1, le=MAX_SEGMENTS, description=f"Most segments to return, 1-{MAX_SEGMENTS}")
    ] = 20_000,
) -> RoadCollection:
    """The road segments that reach into the box, as a GeoJSON FeatureCollection of LineStrings."""
    found = hazard_queries.road_segments(conn, box, limit=limit)
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "LineString",
                "coordinates": [[lon, lat] for lon, lat in zip(r["lon"], r["lat"], strict=True)],
            },
            "properties": {
                "road_class": r["road_class"],
                "name": r["name"],
                "maxspeed_kmh": r["maxspeed_kmh"],
                "oneway": r["oneway"],
            },
        }
        for r in found.rows
    ]
    return RoadCollection.model_validate(
        {
            "type": "FeatureCollection",
            "features": features,
            "bbox": [box.min_lon, box.min_lat, box.max_lon, box.max_lat],
            "limit": limit,
            "truncated": found.truncated,
        }
    )


@router.get("/extent")
def road_extent(_caller: Caller, conn: Conn) -> RoadExtentOut:
    """How many road segments are stored and the box around them (where a map starts)."""
    extent = hazard_queries.road_extent(conn)
    box = extent.bbox
    return RoadExtentOut(
        segments=extent.segments,
        bbox=None if box is None else [box.min_lon, box.min_lat, box.max_lon, box.max_lat],
    )
