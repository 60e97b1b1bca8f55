"""The hazard map as people and other systems take it: GeoJSON features, or H3 cells at a chosen
resolution.

What the map holds: each site's position (the centre of a cluster of many vehicles' events, or
the stretch they cover), kind, state, confidence and counts, and the hour it was first and last
reported. What it never holds: a vehicle id, an event's own position or time, or anything that
would let someone follow a vehicle. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import h3
import numpy as np

from analytics.hazards.geo import offset_latlon

COORD_DECIMALS = 6  # 0.1 m: finer would pretend to a precision the map does not have


def _hour(at: Any) -> str | None:
    """A time kept to the hour (UTC): when a hazard was seen, never when a vehicle was there."""
    if at is None:
        return None
    t = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(str(at))
    return t.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0).isoformat()


def _ends(site: Mapping[str, Any]) -> list[list[float]]:
    """The stretch's two ends as [lon, lat] (a point site: its centre twice)."""
    half = float(site.get("half_length_m") or 0.0)
    axis = site.get("axis_deg")
    a = np.radians(0.0 if axis is None else float(axis))
    out = []
    for sign in (-1.0, 1.0):
        lat, lon = offset_latlon(
            np.array(site["lat"]), np.array(site["lon"]), sign * half * np.sin(a), sign * half * np.cos(a)
        )
        out.append([round(float(lon), COORD_DECIMALS), round(float(lat), COORD_DECIMALS)])
    return out


def properties(site: Mapping[str, Any]) -> dict[str, Any]:
    passes = int(site.get("passes") or 0)
    return {
        "id": int(site["site_id"]),
        "kind": site["kind"],
        "state": site["state"],
        "confidence": round(float(site.get("confidence") or 0.0), 3),
        "vehicles": int(site.get("vehicles") or 0),
        "events": int(site.get("events") or 0),
        "passes": passes,
        "event_rate": round(int(site.get("event_passes") or 0) / passes, 3) if passes else None,
        "length_m": round(2 * float(site.get("half_length_m") or 0.0), 1),
        "first_seen_hour": _hour(site.get("first_event_at")),
        "last_seen_hour": _hour(site.get("last_event_at")),
        "thresholds_version": site.get("thresholds_version", ""),
    }


def geojson(sites: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A FeatureCollection: a Point per pothole or junction, a LineString per slippery stretch."""
    features = []
    for s in sites:
        geometry: dict[str, Any]
        if float(s.get("half_length_m") or 0.0) > 0.0:
            geometry = {"type": "LineString", "coordinates": _ends(s)}
        else:
            geometry = {
                "type": "Point",
                "coordinates": [
                    round(float(s["lon"]), COORD_DECIMALS),
                    round(float(s["lat"]), COORD_DECIMALS),
                ],
            }
        features.append({"type": "Feature", "geometry": geometry, "properties": properties(s)})
    return {"type": "FeatureCollection", "features": features}


def cells(sites: Sequence[Mapping[str, Any]], resolution: int) -> list[dict[str, Any]]:
    """H3 cells holding hazards: per cell, the count per kind, the highest confidence and the ids.
    A stretch counts in every cell it runs through. Raises ValueError for a resolution outside 0–15."""
    if not 0 <= resolution <= 15:
        raise ValueError("an H3 resolution is 0 to 15")
    step_m = max(h3.average_hexagon_edge_length(resolution, unit="m") / 2.0, 1.0)
    found: dict[str, dict[str, Any]] = {}
    for s in sites:
        half = float(s.get("half_length_m") or 0.0)
        n = int(np.ceil(2 * half / step_m)) + 1 if half > 0 else 1
        a = np.radians(float(s.get("axis_deg") or 0.0))
        along = np.linspace(-half, half, n) if n > 1 else np.zeros(1)
        lats, lons = offset_latlon(
            np.full(n, float(s["lat"])), np.full(n, float(s["lon"])), along * np.sin(a), along * np.cos(a)
        )
        for cell in {
            h3.latlng_to_cell(float(la), float(lo), resolution) for la, lo in zip(lats, lons, strict=True)
        }:
            blank = {"cell": cell, "resolution": resolution, "kinds": {}, "confidence": 0.0, "hazards": []}
            entry = found.setdefault(cell, blank)
            entry["kinds"][s["kind"]] = entry["kinds"].get(s["kind"], 0) + 1
            entry["confidence"] = max(entry["confidence"], round(float(s.get("confidence") or 0.0), 3))
            entry["hazards"].append(int(s["site_id"]))
    return sorted(found.values(), key=lambda e: e["cell"])
