"""The road network as GeoJSON: one feature per road (a two-way road once), limits in km/h, and
the lines land where the network's nodes are; and the driving ground truth: trips that do not
overlap, harsh brakes inside trips."""

from __future__ import annotations

import numpy as np

from simulators.network_export import network_geojson
from simulators.roads import city_grid
from simulators.scenario import CitySpec, NetworkSpec, Scenario
from tests.analytics.simulated import simulate


def test_one_feature_per_road_with_its_limit() -> None:
    net = city_grid(blocks=4)
    doc = network_geojson(net)
    assert doc["type"] == "FeatureCollection"
    two_way = int(np.count_nonzero(net.reverse >= 0))
    assert len(doc["features"]) == two_way // 2 + int(np.count_nonzero(net.reverse < 0))
    limits = {f["properties"]["maxspeed"] for f in doc["features"]}
    assert limits == {40.0, 60.0, 110.0, 70.0}
    classes = {f["properties"]["class"] for f in doc["features"]}
    assert classes == {"local", "arterial", "highway", "ramp"}
    lat, lon = net.to_latlon(net.node_x_m, net.node_y_m)
    first = doc["features"][0]["geometry"]["coordinates"][0]
    assert np.isclose(np.hypot(lon - first[0], lat - first[1]).min(), 0.0, atol=1e-6)


def test_driving_truth_trips_do_not_overlap_and_harsh_brakes_are_inside_trips() -> None:
    scenario = Scenario(
        seed=5, vehicles=30, duration_s=1800.0, city=CitySpec(blocks=6), mean_parking_s=300.0,
        network=NetworkSpec(outage_vehicle_share=0.0, duplicate_batch_probability=0.0),
    )  # fmt: skip
    truth = simulate(scenario, ["Vehicle.Speed"]).truth["driving"]
    trips: dict[str, list[tuple[float, float]]] = {}
    for t in truth["trips"]:
        start = -1.0 if t["start_s"] is None else t["start_s"]
        end = 1e9 if t["end_s"] is None else t["end_s"]
        assert end > start
        trips.setdefault(t["vehicle_id"], []).append((start, end))
    for spans in trips.values():
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert truth["harsh_brakes"]
    for h in truth["harsh_brakes"]:
        assert any(s <= h["t_s"] <= e for s, e in trips[h["vehicle_id"]])
    assert all(0.8 <= a <= 1.15 for a in truth["mean_aggression"].values())
