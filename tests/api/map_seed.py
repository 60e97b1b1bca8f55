"""The map's data on top of tests/api/seed.py: fleets, positions, alarms, a road network and hazard
sites, as the product stores them (the roads through `analytics.road_store` from the simulator's
network export, as `fleet demo` loads them).

The city is the simulator's generated grid around ORIGIN (about 1.6 km square, a ring highway
around it). Hazards: three confirmed ones in town (one per kind), a candidate, and a confirmed
pothole 50 km away, outside any box around the town.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from analytics.driving.roads import parse_road_geojson
from analytics.road_store import import_road_lines
from simulators.network_export import network_geojson
from simulators.roads import city_grid
from tests.api.seed import TS, seed

ORIGIN = (48.137, 11.575)  # lat, lon
TOWN_BOX = {"min_lon": 11.55, "min_lat": 48.125, "max_lon": 11.60, "max_lat": 48.15}
LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"

FLEET_OF = {"VIN-N1": "fleet-a", "VIN-N2": "fleet-b", "VIN-S1": "fleet-a", "VIN-U1": "fleet-b"}
POSITION = {  # vehicle -> (lat, lon); VIN-N3 has none
    "VIN-N1": (48.1390, 11.5730),
    "VIN-N2": (48.1352, 11.5790),
    "VIN-S1": (48.1330, 11.5710),
    "VIN-U1": (48.1410, 11.5775),
}
CENTRES = {"sc-north": (48.1420, 11.5750), "sc-south": (48.1320, 11.5750)}
ALARMS = [  # vehicle, fault, severity, cleared
    ("VIN-N1", "brake_pad_wear", "MAJOR", False),
    ("VIN-N1", "battery_12v", "CRITICAL", True),
    ("VIN-S1", "tyre_slow_leak", "CRITICAL", False),
    ("VIN-U1", "stuck_thermostat", "MINOR", False),
]


@dataclass(frozen=True)
class Site:
    kind: str
    lat: float
    lon: float
    state: str = "confirmed"
    axis_deg: float | None = None
    half_length_m: float = 0.0
    confidence: float = 0.9


SITES = [
    Site("pothole", 48.1371, 11.5741),
    Site("junction", 48.1388, 11.5770, confidence=0.8),
    Site("slippery", 48.1345, 11.5760, axis_deg=90.0, half_length_m=60.0, confidence=0.7),
    Site("pothole", 48.1360, 11.5725, state="candidate", confidence=0.4),
    Site("pothole", 48.5900, 11.5750),  # 50 km north
]


def seed_map(url: str) -> dict[str, int]:
    """seed() and the map's data; returns the site id of each SITES entry by its index as a str
    key ("0", "1", ...) and `roads`, the number of road segments stored."""
    seed(url)
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE hazard_sites, road_segments CASCADE")
        conn.execute(
            "INSERT INTO fleets (fleet_id, name) VALUES ('fleet-a', 'A'), ('fleet-b', 'B')"
            " ON CONFLICT DO NOTHING"
        )
        for vehicle_id, fleet_id in FLEET_OF.items():
            conn.execute("UPDATE vehicles SET fleet_id = %s WHERE vehicle_id = %s", (fleet_id, vehicle_id))
        for centre, (lat, lon) in CENTRES.items():
            conn.execute(
                "UPDATE service_centres SET lat = %s, lon = %s WHERE service_centre_id = %s",
                (lat, lon, centre),
            )
        for vehicle_id, (lat, lon) in POSITION.items():
            position = {LAT: {"value": lat, "ts": TS}, LON: {"value": lon, "ts": TS}}
            conn.execute(
                "INSERT INTO vehicle_latest (vehicle_id, ts, signals) VALUES (%s, %s, %s)"
                " ON CONFLICT (vehicle_id)"
                " DO UPDATE SET signals = vehicle_latest.signals || excluded.signals",
                (vehicle_id, TS, Jsonb(position)),
            )
        for vehicle_id, fault, severity, cleared in ALARMS:
            conn.execute(
                "INSERT INTO alarms (vehicle_id, fault, severity, raised_at, updated_at, cleared_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (vehicle_id, fault, severity, TS, TS, TS if cleared else None),
            )
        ids = {}
        for i, s in enumerate(SITES):
            (site_id,) = conn.execute(  # type: ignore[misc]
                "INSERT INTO hazard_sites (kind, lat, lon, axis_deg, half_length_m, state, events, vehicles,"
                " passes, event_passes, confidence, first_event_at, last_event_at, thresholds_version)"
                " VALUES (%s, %s, %s, %s, %s, %s, 9, 4, 12, 8, %s, %s, %s, 'hazards-1') RETURNING site_id",
                (s.kind, s.lat, s.lon, s.axis_deg, s.half_length_m, s.state, s.confidence, TS, TS),
            ).fetchone()
            ids[str(i)] = int(site_id)
        roads = import_road_lines(conn, parse_road_geojson(network_geojson(city_grid(*ORIGIN, blocks=8))))
    return {**ids, "roads": roads.lines}
