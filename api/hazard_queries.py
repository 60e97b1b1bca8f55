"""The SQL of the map's shared layers: hazard sites and road segments inside a bounding box.

Owns: reading `hazard_sites` (migration 0012) and `road_segments` (migration 0013) by box. Both
hold nothing about a vehicle (docs/hazards.md section 5), so every role may read them and no
scope applies. Leaves the shape of the answers (GeoJSON, H3 cells) to `analytics.hazards.export`
and the routes. All functions raise psycopg.Error on failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.map_params import Bbox

M_PER_DEG_LAT = 111_320.0

# A stretch (slippery) reaches `half_length_m` either side of its centre: a site is in the box when
# the box around its centre, widened by that much, meets it.
_SITES = (
    "SELECT site_id, kind, lat, lon, axis_deg, half_length_m, state, events, vehicles, passes,"
    " event_passes, confidence, first_event_at, last_event_at, thresholds_version"
    " FROM hazard_sites WHERE state = %(state)s"
    " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
    f" AND lat + half_length_m / {M_PER_DEG_LAT} >= %(min_lat)s"
    f" AND lat - half_length_m / {M_PER_DEG_LAT} <= %(max_lat)s"
    f" AND lon + half_length_m / ({M_PER_DEG_LAT} * greatest(cos(radians(lat)), 0.01)) >= %(min_lon)s"
    f" AND lon - half_length_m / ({M_PER_DEG_LAT} * greatest(cos(radians(lat)), 0.01)) <= %(max_lon)s"
    " ORDER BY site_id LIMIT %(limit)s"
)


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows found in a box, at most the limit asked for; `truncated` when there were more."""

    rows: tuple[dict[str, Any], ...]
    truncated: bool


def _box(box: Bbox) -> dict[str, float]:
    return {"min_lon": box.min_lon, "min_lat": box.min_lat, "max_lon": box.max_lon, "max_lat": box.max_lat}


def hazard_sites(conn: psycopg.Connection, box: Bbox, *, state: str, kind: str | None, limit: int) -> Rows:
    """Sites in `state` (and of `kind`, if given) that reach into the box, by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_SITES, {**_box(box), "state": state, "kind": kind, "limit": limit + 1}).fetchall()
    return Rows(tuple(rows[:limit]), len(rows) > limit)


def road_segments(conn: psycopg.Connection, box: Bbox, *, limit: int) -> Rows:
    """Road segments whose bounding box meets the box, by key: lon and lat arrays, class, name,
    speed limit (km/h, None when unknown) and whether it is one-way."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT segment_key, road_class, name, maxspeed_kmh, oneway, lon, lat FROM road_segments"
            " WHERE max_lat >= %(min_lat)s AND min_lat <= %(max_lat)s"
            " AND max_lon >= %(min_lon)s AND min_lon <= %(max_lon)s"
            " ORDER BY segment_key LIMIT %(limit)s",
            {**_box(box), "limit": limit + 1},
        ).fetchall()
    return Rows(tuple(rows[:limit]), len(rows) > limit)


@dataclass(frozen=True, slots=True)
class RoadExtent:
    segments: int
    bbox: Bbox | None  # None when there are no roads


def road_extent(conn: psycopg.Connection) -> RoadExtent:
    """How many road segments there are and the box around all of them."""
    row = conn.execute(
        "SELECT count(*), min(min_lon), min(min_lat), max(max_lon), max(max_lat) FROM road_segments"
    ).fetchone()
    if row is None or not row[0]:
        return RoadExtent(0, None)
    return RoadExtent(int(row[0]), Bbox(*(float(x) for x in row[1:])))
