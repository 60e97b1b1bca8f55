"""Reading an OpenStreetMap XML file (.osm) into a `RoadNetwork`.

Owns: choosing the drivable ways, their speed limits (the `maxspeed` tag, else a default per
road class), one-way streets, and traffic signals. A small parser on xml.etree: enough for a
city district exported from openstreetmap.org; it does not read PBF files or turn restrictions.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from simulators.roads import (
    M_PER_DEG_LAT,
    ROAD_ARTERIAL,
    ROAD_HIGHWAY,
    ROAD_LOCAL,
    ROAD_RAMP,
    RoadNetwork,
    build_network,
)

CLASS_OF = {
    "motorway": ROAD_HIGHWAY,
    "trunk": ROAD_HIGHWAY,
    "primary": ROAD_ARTERIAL,
    "secondary": ROAD_ARTERIAL,
    "tertiary": ROAD_ARTERIAL,
    "unclassified": ROAD_LOCAL,
    "residential": ROAD_LOCAL,
    "living_street": ROAD_LOCAL,
    "service": ROAD_LOCAL,
}
DEFAULT_KMH = {ROAD_HIGHWAY: 110.0, ROAD_ARTERIAL: 50.0, ROAD_LOCAL: 30.0, ROAD_RAMP: 60.0}


def _road_class(highway: str) -> int | None:
    if highway.endswith("_link"):
        return ROAD_RAMP if highway[: -len("_link")] in CLASS_OF else None
    return CLASS_OF.get(highway)


def _speed_kmh(tag: str | None, road_class: int) -> float:
    if tag:
        parts = tag.split()
        try:
            value = float(parts[0])
        except ValueError:
            return DEFAULT_KMH[road_class]
        return value * 1.609 if len(parts) > 1 and parts[1] == "mph" else value
    return DEFAULT_KMH[road_class]


def load_osm(path: Path) -> RoadNetwork:
    """Parse an .osm XML file. Raises ValueError when it holds no drivable road, and
    xml.etree.ElementTree.ParseError for malformed XML."""
    root = ET.parse(path).getroot()
    coords: dict[str, tuple[float, float]] = {}
    signals: set[str] = set()
    for node in root.iter("node"):
        nid = node.get("id", "")
        coords[nid] = (float(node.get("lat", "nan")), float(node.get("lon", "nan")))
        if any(t.get("k") == "highway" and t.get("v") == "traffic_signals" for t in node.iter("tag")):
            signals.add(nid)
    pieces: list[tuple[str, str, float, int, bool]] = []
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        road_class = _road_class(tags.get("highway") or "")
        if road_class is None:
            continue
        refs = [nd.get("ref", "") for nd in way.iter("nd") if nd.get("ref") in coords]
        oneway = tags.get("oneway") in ("yes", "1", "true") or tags.get("highway") == "motorway"
        if tags.get("oneway") == "-1":
            refs, oneway = refs[::-1], True
        speed_ms = _speed_kmh(tags.get("maxspeed"), road_class) / 3.6
        pieces.extend((a, b, speed_ms, road_class, not oneway) for a, b in zip(refs, refs[1:], strict=False))
    if not pieces:
        raise ValueError(f"{path}: no drivable roads (highway=* ways) found")
    used = sorted({p[0] for p in pieces} | {p[1] for p in pieces})
    index = {nid: i for i, nid in enumerate(used)}
    lat = np.array([coords[n][0] for n in used])
    lon = np.array([coords[n][1] for n in used])
    lat0, lon0 = float(lat.mean()), float(lon.mean())
    x = (lon - lon0) * M_PER_DEG_LAT * np.cos(np.radians(lat0))
    y = (lat - lat0) * M_PER_DEG_LAT
    return build_network(
        lat0,
        lon0,
        x,
        y,
        np.array([n in signals for n in used], dtype=bool),
        np.array([(index[a], index[b]) for a, b, *_ in pieces], dtype=np.int64),
        np.array([p[2] for p in pieces]),
        np.array([p[3] for p in pieces]),
        np.array([p[4] for p in pieces], dtype=bool),
    )
