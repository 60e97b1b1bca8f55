"""Road speed limits for sample positions: the road network as the analytics know it (parsed from
GeoJSON) and snapping positions to it.

Owns: reading a road network GeoJSON document (LineString / MultiLineString features with a
`maxspeed` property in km/h, a number or an OSM-style string such as "50" or "30 mph"; `class`,
`name` and `oneway` are kept for display) into flat arrays, and the snapping kernel: for each
position, the nearest road piece within `tolerance_m`, preferring pieces that run along the
vehicle's heading (so a car crossing a junction keeps its own road's limit rather than the cross
street's), and that piece's limit; NaN where no road is near or its limit is unknown. A cKDTree over
points laid every `spacing_m` along the pieces finds candidates; the exact point-to-piece distance
decides. Pure: storing segments is `analytics.road_store`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

M_PER_DEG_LAT = 111_320.0
KMH_PER_MPH = 1.609344
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh)?\s*$")


@dataclass(frozen=True)
class RoadLine:
    """One road polyline: coordinates (lon, lat) in degrees, its limit (NaN when unknown)."""

    coords: tuple[tuple[float, float], ...]
    maxspeed_kmh: float
    road_class: str = ""
    name: str = ""
    oneway: bool = False


def parse_maxspeed_kmh(value: Any) -> float:
    """A `maxspeed` property in km/h: a number, or "50", "50 km/h", "30 mph"; NaN otherwise."""
    if isinstance(value, bool) or value is None:
        return float("nan")
    if isinstance(value, int | float):
        return float(value) if value > 0 else float("nan")
    match = _SPEED.match(str(value))
    if not match:
        return float("nan")
    number = float(match.group(1))
    return number * KMH_PER_MPH if match.group(2) == "mph" else number


def parse_road_geojson(doc: Mapping[str, Any]) -> list[RoadLine]:
    """The road lines of a GeoJSON FeatureCollection. Features that are not lines are skipped.
    Raises ValueError when the document is not a FeatureCollection or a line is malformed."""
    if doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ValueError("a road network must be a GeoJSON FeatureCollection")
    out = []
    for i, feature in enumerate(doc["features"]):
        geometry = (feature or {}).get("geometry") or {}
        props = (feature or {}).get("properties") or {}
        kind = geometry.get("type")
        if kind == "LineString":
            parts = [geometry.get("coordinates") or []]
        elif kind == "MultiLineString":
            parts = list(geometry.get("coordinates") or [])
        else:
            continue
        for part in parts:
            try:
                coords = tuple((float(p[0]), float(p[1])) for p in part)
            except (TypeError, ValueError, IndexError):
                raise ValueError(f"feature {i}: coordinates must be [lon, lat] pairs") from None
            if len(coords) < 2 or not all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in coords):
                raise ValueError(f"feature {i}: a line needs two or more [lon, lat] points in range")
            out.append(
                RoadLine(
                    coords,
                    parse_maxspeed_kmh(props.get("maxspeed")),
                    str(props.get("class") or props.get("highway") or ""),
                    str(props.get("name") or ""),
                    props.get("oneway") in (True, "yes", "1", "true"),
                )
            )
    return out


@dataclass(frozen=True)
class RoadIndex:
    """Road pieces (straight pieces between consecutive points of a line) in local metres around
    (lat0, lon0), with a KD-tree over points laid along them."""

    lat0_deg: float
    lon0_deg: float
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    limit_kmh: np.ndarray
    point_piece: np.ndarray  # the piece of each tree point
    tree: cKDTree
    spacing_m: float

    @property
    def n_pieces(self) -> int:
        return int(self.x0.shape[0])

    def to_xy(self, lat_deg: np.ndarray, lon_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (np.asarray(lon_deg) - self.lon0_deg) * M_PER_DEG_LAT * np.cos(np.radians(self.lat0_deg))
        return x, (np.asarray(lat_deg) - self.lat0_deg) * M_PER_DEG_LAT


def build_road_index(lines: list[RoadLine], spacing_m: float = 5.0) -> RoadIndex | None:
    """The index of `lines` (None when there are none). Equirectangular projection around their
    mean position: exact enough within a city or region."""
    if not lines:
        return None
    lon = np.concatenate([np.array([c[0] for c in ln.coords]) for ln in lines])
    lat = np.concatenate([np.array([c[1] for c in ln.coords]) for ln in lines])
    sizes = np.array([len(ln.coords) for ln in lines])
    limit = np.repeat(np.array([ln.maxspeed_kmh for ln in lines], dtype=np.float64), sizes - 1)
    is_last = np.zeros(lon.size, dtype=bool)
    is_last[np.cumsum(sizes) - 1] = True
    a = np.flatnonzero(~is_last)  # a piece runs from point a to a + 1 of the same line
    lat0, lon0 = float(lat.mean()), float(lon.mean())
    x = (lon - lon0) * M_PER_DEG_LAT * np.cos(np.radians(lat0))
    y = (lat - lat0) * M_PER_DEG_LAT
    x0, y0, x1, y1 = x[a], y[a], x[a + 1], y[a + 1]
    length = np.hypot(x1 - x0, y1 - y0)
    per_piece = np.maximum(np.ceil(length / spacing_m).astype(np.int64), 1) + 1
    piece = np.repeat(np.arange(a.size), per_piece)
    first = np.repeat(np.cumsum(per_piece) - per_piece, per_piece)
    frac = (np.arange(piece.size) - first) / (per_piece[piece] - 1)
    px = x0[piece] + frac * (x1 - x0)[piece]
    py = y0[piece] + frac * (y1 - y0)[piece]
    return RoadIndex(lat0, lon0, x0, y0, x1, y1, limit, piece, cKDTree(np.column_stack([px, py])), spacing_m)


def snap_speed_limit_kmh(
    index: RoadIndex | None,
    lat_deg: np.ndarray,
    lon_deg: np.ndarray,
    heading_deg: np.ndarray,
    *,
    tolerance_m: float = 20.0,
    heading_tolerance_deg: float = 40.0,
    candidates: int = 16,
    chunk: int = 500_000,
) -> np.ndarray:
    """Per position, the limit of the nearest road piece within `tolerance_m` (NaN where none, or
    where the position or the piece's limit is unknown). Among pieces within the tolerance, one
    whose direction (either way) is within `heading_tolerance_deg` of the heading wins over a
    nearer one that is not; a NaN heading accepts every direction."""
    n = np.asarray(lat_deg).shape[0]
    out = np.full(n, np.nan)
    if index is None or n == 0:
        return out
    x, y = index.to_xy(lat_deg, lon_deg)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    k = int(min(candidates, index.tree.n))
    for lo in range(0, ok.size, chunk):
        rows = ok[lo : lo + chunk]
        _, pts = index.tree.query(
            np.column_stack([x[rows], y[rows]]), k=k, distance_upper_bound=tolerance_m + index.spacing_m
        )
        pts = np.asarray(pts).reshape(rows.size, k)
        found = pts < index.tree.n
        piece = np.where(found, index.point_piece[np.minimum(pts, index.tree.n - 1)], 0)
        dist = _distance_to_piece(index, piece, x[rows, None], y[rows, None])
        dist = np.where(found, dist, np.inf)
        along = _along(index, piece, np.asarray(heading_deg)[rows, None], heading_tolerance_deg)
        cost = dist + np.where(along, 0.0, tolerance_m)  # a crossing road must be much nearer to win
        best = np.argmin(cost, axis=1)
        pick = np.arange(rows.size)
        near = dist[pick, best] <= tolerance_m
        out[rows[near]] = index.limit_kmh[piece[pick, best]][near]
    return out


def _distance_to_piece(index: RoadIndex, piece: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x0, y0 = index.x0[piece], index.y0[piece]
    dx, dy = index.x1[piece] - x0, index.y1[piece] - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / np.maximum(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy))


def _along(index: RoadIndex, piece: np.ndarray, heading_deg: np.ndarray, tolerance_deg: float) -> np.ndarray:
    """Whether each piece runs along the heading (in either direction); True where heading is NaN."""
    bearing = np.degrees(np.arctan2(index.x1[piece] - index.x0[piece], index.y1[piece] - index.y0[piece]))
    diff = np.abs((heading_deg - bearing + 90.0) % 180.0 - 90.0)
    return ~(diff > tolerance_deg)  # NaN heading: comparison False, so True
