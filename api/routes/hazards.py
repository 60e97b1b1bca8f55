"""The hazard map over HTTP (docs/map.md, docs/hazards.md): `/hazards` as GeoJSON for a bounding
box, `/hazards/h3` as H3 cells at a chosen resolution.

Owns: parameters and status codes. Every authenticated role may read the map: it is an anonymous
aggregate (positions of clusters of many vehicles' events, kinds, confidence, counts; never a
vehicle id). Leaves the SQL to `api.hazard_queries` and the GeoJSON and H3 shapes to
`analytics.hazards.export`, which `fleet hazards` shares.
"""

from __future__ import annotations

from typing import Annotated, Literal

import h3
from fastapi import APIRouter, Depends, Query

from analytics.hazards import export
from api import hazard_queries
from api.auth import Principal, Role, require_role
from api.db import Conn
from api.map_params import Bbox, bbox
from api.schemas_map import HazardCells, HazardCollection, HazardKind

router = APIRouter(prefix="/hazards", tags=["hazards"])

MAX_HAZARDS = 5000
MIN_RESOLUTION, MAX_RESOLUTION = 5, 13  # ~250 km² to ~44 m² (the cell an event's position keeps)

Caller = Annotated[Principal, Depends(require_role(*Role))]  # every role, including any added later
Box = Annotated[Bbox, Depends(bbox)]
Kind = Annotated[HazardKind | None, Query(description="Only hazards of this kind")]
State = Annotated[
    Literal["confirmed", "candidate", "retracted"],
    Query(description="confirmed: on the map; candidate: not yet confirmed; retracted: withdrawn"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_HAZARDS, description=f"Most hazards to return, 1-{MAX_HAZARDS}")]
Resolution = Annotated[
    int,
    Query(
        ge=MIN_RESOLUTION, le=MAX_RESOLUTION, description=f"H3 resolution, {MIN_RESOLUTION}-{MAX_RESOLUTION}"
    ),
]


def _bbox_list(box: Bbox) -> list[float]:
    return [box.min_lon, box.min_lat, box.max_lon, box.max_lat]


@router.get("")
def list_hazards(
    _caller: Caller,
    conn: Conn,
    box: Box,
    kind: Kind = None,
    state: State = "confirmed",
    limit: Limit = 1000,
) -> HazardCollection:
    """The hazards that reach into the box, as a GeoJSON FeatureCollection by site id: a Point per
    pothole or junction, a LineString per slippery stretch."""
    found = hazard_queries.hazard_sites(conn, box, state=state, kind=kind, limit=limit)
    doc = export.geojson(found.rows)
    return HazardCollection.model_validate(
        {**doc, "bbox": _bbox_list(box), "limit": limit, "truncated": found.truncated}
    )


@router.get("/h3")
def hazard_cells(
    _caller: Caller,
    conn: Conn,
    box: Box,
    resolution: Resolution = 9,
    kind: Kind = None,
    state: State = "confirmed",
    limit: Limit = 1000,
) -> HazardCells:
    """The H3 cells holding the box's hazards: per cell, the count per kind, the highest confidence,
    the site ids and the cell's outline."""
    found = hazard_queries.hazard_sites(conn, box, state=state, kind=kind, limit=limit)
    cells = [{**c, "boundary": _outline(c["cell"])} for c in export.cells(found.rows, resolution)]
    return HazardCells.model_validate(
        {
            "resolution": resolution,
            "cells": cells,
            "bbox": _bbox_list(box),
            "limit": limit,
            "truncated": found.truncated,
        }
    )


def _outline(cell: str) -> list[list[float]]:
    ring = [
        [round(lon, export.COORD_DECIMALS), round(lat, export.COORD_DECIMALS)]
        for lat, lon in h3.cell_to_boundary(cell)
    ]
    return [*ring, ring[0]]
