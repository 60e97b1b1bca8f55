"""The simulated road network as GeoJSON: what the analytics load to know each road's speed limit
(`fleet roads import`) and what a map draws.

Owns: one LineString feature per road piece (a two-way road's two directed edges become one
feature, `oneway` false), with properties `class` (local, arterial, highway, ramp), `maxspeed`
(km/h, a number) and `name` (None: the generated city has no street names). Coordinates are
[lon, lat] in WGS84 (RFC 7946).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from simulators.roads import RoadNetwork

CLASS_NAMES = ("local", "arterial", "highway", "ramp")


def network_geojson(net: RoadNetwork) -> dict[str, Any]:
    """The FeatureCollection of `net`'s roads."""
    e = np.arange(net.n_edges)
    keep = (net.reverse < 0) | (e < net.reverse)  # one feature per two-way pair
    lat, lon = net.to_latlon(net.node_x_m, net.node_y_m)
    features = []
    for edge in np.flatnonzero(keep):
        a, b = int(net.edge_src[edge]), int(net.edge_dst[edge])
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [
                        [round(float(lon[a]), 7), round(float(lat[a]), 7)],
                        [round(float(lon[b]), 7), round(float(lat[b]), 7)],
                    ],
                },
                "properties": {
                    "class": CLASS_NAMES[int(net.edge_class[edge])],
                    "maxspeed": round(float(net.edge_speed_limit_ms[edge]) * 3.6, 1),
                    "name": None,
                    "oneway": bool(net.reverse[edge] < 0),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_network_geojson(net: RoadNetwork, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(network_geojson(net)))
    return path
