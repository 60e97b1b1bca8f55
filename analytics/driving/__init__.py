"""Driving behaviour: trips, harsh events, speeding against road limits, night driving, and a
0-100 score per trip and per vehicle. Pure kernels on columns; the shell that stores trips is
`analytics.driving_job`, the one that stores the road network `analytics.road_store`.
"""

from analytics.driving.config import DRIVING_THRESHOLDS_VERSION, DrivingThresholds, EventRule, TripRules
from analytics.driving.events import harsh_events
from analytics.driving.roads import (
    RoadIndex,
    RoadLine,
    build_road_index,
    parse_road_geojson,
    snap_speed_limit_kmh,
)
from analytics.driving.score import SIGNALS, TripTable, VehicleScores, score_trips, vehicle_scores
from analytics.driving.trips import Trips, find_trips

__all__ = [
    "DRIVING_THRESHOLDS_VERSION",
    "SIGNALS",
    "DrivingThresholds",
    "EventRule",
    "RoadIndex",
    "RoadLine",
    "TripRules",
    "TripTable",
    "Trips",
    "VehicleScores",
    "build_road_index",
    "find_trips",
    "harsh_events",
    "parse_road_geojson",
    "score_trips",
    "snap_speed_limit_kmh",
    "vehicle_scores",
]
