"""Road limits: GeoJSON parsing (limits as numbers or OSM strings, malformed input refused) and
snapping (the nearest road within the tolerance, the vehicle's own road at a junction, NaN when
no road is near)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.driving.roads import (
    M_PER_DEG_LAT,
    build_road_index,
    parse_maxspeed_kmh,
    parse_road_geojson,
    snap_speed_limit_kmh,
)

LAT0, LON0 = 48.137, 11.575
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))


def _line(x0: float, y0: float, x1: float, y1: float, maxspeed: object) -> dict:
    coords = [[LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT] for x, y in ((x0, y0), (x1, y1))]
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": {"maxspeed": maxspeed, "class": "local"},
    }


def _at(x_m: float, y_m: float) -> tuple[float, float]:
    return LAT0 + y_m / M_PER_DEG_LAT, LON0 + x_m / M_PER_DEG_LON


# An east-west arterial at 60 crossing a north-south street at 30, at the origin.
CROSS = {"type": "FeatureCollection", "features": [_line(-500, 0, 500, 0, 60), _line(0, -500, 0, 500, "30")]}


def test_maxspeed_numbers_and_strings() -> None:
    assert parse_maxspeed_kmh(50) == 50.0
    assert parse_maxspeed_kmh("50") == 50.0
    assert parse_maxspeed_kmh("50 km/h") == 50.0
    assert parse_maxspeed_kmh("30 mph") == pytest.approx(48.28, abs=0.01)
    for unknown in (None, "none", "signals", True, 0, -5):
        assert math.isnan(parse_maxspeed_kmh(unknown))


def test_parsing_keeps_lines_and_refuses_what_is_not_a_network() -> None:
    lines = parse_road_geojson(CROSS)
    assert [ln.maxspeed_kmh for ln in lines] == [60.0, 30.0]
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}
    assert len(parse_road_geojson({"type": "FeatureCollection", "features": [point]})) == 0
    with pytest.raises(ValueError):
        parse_road_geojson({"type": "Feature"})
    bad = _line(0, 0, 1, 1, 50)
    bad["geometry"]["coordinates"] = [[0, 0]]
    with pytest.raises(ValueError):
        parse_road_geojson({"type": "FeatureCollection", "features": [bad]})


def test_snapping_takes_the_near_road_and_the_own_road_at_a_junction() -> None:
    index = build_road_index(parse_road_geojson(CROSS))
    pts = [(200, 4), (3, 200), (2, 3), (2, 3), (2, 3), (200, 60)]
    heading = [90.0, 0.0, 90.0, 180.0, np.nan, 90.0]
    lat, lon = np.array([_at(x, y) for x, y in pts]).T
    got = snap_speed_limit_kmh(index, lat, lon, np.array(heading), tolerance_m=20.0)
    assert got[:2].tolist() == [60.0, 30.0]
    assert got[2] == 60.0 and got[3] == 30.0  # at the junction: the road it drives along
    assert got[4] in (30.0, 60.0)  # no heading: the nearest
    assert math.isnan(got[5])  # 60 m off any road


def test_no_network_or_no_position_gives_nan() -> None:
    assert np.isnan(snap_speed_limit_kmh(None, np.array([LAT0]), np.array([LON0]), np.array([0.0]))).all()
    index = build_road_index(parse_road_geojson(CROSS))
    got = snap_speed_limit_kmh(index, np.array([np.nan]), np.array([LON0]), np.array([0.0]))
    assert np.isnan(got).all()
    assert build_road_index([]) is None
