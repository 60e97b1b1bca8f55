"""The road network in PostgreSQL (`road_segments`): importing GeoJSON lines and loading the roads
near some positions as a `RoadIndex` for the snapping kernel.

Owns: the table's rows. Each line is keyed by a hash of its coordinates (7 decimals, about 1 cm),
so an import is idempotent: a line already there with the same properties is unchanged, one with
new properties (a changed limit) is updated, and nothing is deleted. Parsing and snapping are
`analytics.driving.roads`'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg

from analytics.driving.roads import RoadIndex, RoadLine, build_road_index


@dataclass(frozen=True)
class RoadImport:
    lines: int
    inserted: int
    updated: int
    unchanged: int


def segment_key(line: RoadLine) -> str:
    text = ";".join(f"{lon:.7f},{lat:.7f}" for lon, lat in line.coords)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def import_road_lines(conn: psycopg.Connection, lines: Sequence[RoadLine]) -> RoadImport:
    """Upsert `lines` in one transaction (a line listed twice counts once: the last wins).
    Raises psycopg.Error."""
    unique = {segment_key(ln): ln for ln in lines}
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE road_import (LIKE road_segments INCLUDING DEFAULTS) ON COMMIT DROP")
        with conn.cursor().copy(
            "COPY road_import (segment_key, road_class, name, maxspeed_kmh, oneway, lon, lat,"
            " min_lat, max_lat, min_lon, max_lon) FROM STDIN"
        ) as copy:
            for key, ln in unique.items():
                lon = [c[0] for c in ln.coords]
                lat = [c[1] for c in ln.coords]
                limit = None if not np.isfinite(ln.maxspeed_kmh) else float(ln.maxspeed_kmh)
                copy.write_row(
                    (
                        key,
                        ln.road_class,
                        ln.name,
                        limit,
                        ln.oneway,
                        lon,
                        lat,
                        min(lat),
                        max(lat),
                        min(lon),
                        max(lon),
                    )
                )
        rows = conn.execute(
            "INSERT INTO road_segments (segment_key, road_class, name, maxspeed_kmh, oneway, lon, lat,"
            " min_lat, max_lat, min_lon, max_lon)"
            " SELECT segment_key, road_class, name, maxspeed_kmh, oneway, lon, lat, min_lat, max_lat,"
            " min_lon, max_lon FROM road_import"
            " ON CONFLICT (segment_key) DO UPDATE SET road_class = excluded.road_class,"
            " name = excluded.name, maxspeed_kmh = excluded.maxspeed_kmh, oneway = excluded.oneway,"
            " imported_at = now()"
            " WHERE (road_segments.road_class, road_segments.name, road_segments.maxspeed_kmh,"
            " road_segments.oneway) IS DISTINCT FROM"
            " (excluded.road_class, excluded.name, excluded.maxspeed_kmh, excluded.oneway)"
            " RETURNING (xmax = 0)"
        ).fetchall()
    inserted = sum(1 for (new,) in rows if new)
    return RoadImport(len(unique), inserted, len(rows) - inserted, len(unique) - len(rows))


def load_road_index(
    conn: psycopg.Connection, lat_deg: np.ndarray, lon_deg: np.ndarray, margin_deg: float = 0.01
) -> RoadIndex | None:
    """The roads whose bounding box meets the box around these positions (plus `margin_deg`, about
    1 km), as an index; None when there are no positions or no roads there. Raises psycopg.Error."""
    ok = np.isfinite(lat_deg) & np.isfinite(lon_deg)
    if not ok.any():
        return None
    lat, lon = lat_deg[ok], lon_deg[ok]
    rows = conn.execute(
        "SELECT lon, lat, maxspeed_kmh, road_class, name, oneway FROM road_segments"
        " WHERE max_lat >= %s AND min_lat <= %s AND max_lon >= %s AND min_lon <= %s ORDER BY segment_key",
        (
            float(lat.min()) - margin_deg,
            float(lat.max()) + margin_deg,
            float(lon.min()) - margin_deg,
            float(lon.max()) + margin_deg,
        ),
    ).fetchall()
    lines = [
        RoadLine(
            tuple(zip(lons, lats, strict=True)),
            float("nan") if limit is None else float(limit),
            road_class,
            name,
            oneway,
        )
        for lons, lats, limit, road_class, name, oneway in rows
    ]
    return build_road_index(lines)
