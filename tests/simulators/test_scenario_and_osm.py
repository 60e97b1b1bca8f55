"""Scenario files and OpenStreetMap input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contract.signals import BY_PATH
from simulators.engine import FleetSimulation
from simulators.osm import load_osm
from simulators.roads import ROAD_ARTERIAL, ROAD_HIGHWAY, city_grid
from simulators.scenario import Scenario, builtin_scenario_path, load_scenario, parse_scenario

DATA = Path(__file__).with_name("data")


@pytest.mark.parametrize("name", ["city", "smoke", "standard"])
def test_shipped_scenarios_load_and_run(name: str) -> None:
    sc = load_scenario(builtin_scenario_path(name))
    sc = sc.with_overrides(vehicles=max(60, sum(f.vehicles for f in sc.faults) + 10))
    sim = FleetSimulation(sc, city_grid(), 1.7e9)
    out = sim.step()
    assert set(out.signals) <= set(BY_PATH)
    assert len(sim.faults.records) == sum(f.vehicles for f in sc.faults)


def test_unknown_kinds_and_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        parse_scenario({"faults": [{"kind": "gremlins"}]})
    with pytest.raises(ValueError, match="unknown hazard kind"):
        parse_scenario({"hazards": [{"kind": "volcano"}]})
    with pytest.raises(ValueError, match="bad scenario"):
        parse_scenario({"vehicle_count": 3})
    with pytest.raises(ValueError, match="not in the catalogue"):
        FleetSimulation(
            parse_scenario(
                {"vehicles": 5, "faults": [{"kind": "sensor_stuck", "params": {"signal": "Vehicle.Nope"}}]}
            ),
            city_grid(blocks=2),
            1.7e9,
        )


def test_city_grid_has_arterials_lights_and_a_ring_highway() -> None:
    net = city_grid(blocks=8)
    assert (net.edge_class == ROAD_HIGHWAY).any() and (net.edge_class == ROAD_ARTERIAL).any()
    assert net.has_light.any()
    assert (np.diff(net.out_start) > 0).all()  # every node has an exit
    rev = net.reverse[net.reverse >= 0]
    assert (net.reverse[rev] >= 0).all()


def test_osm_file_becomes_a_drivable_network() -> None:
    net = load_osm(DATA / "tiny.osm")
    assert net.n_nodes == 5  # the footway's extra node is not a road
    assert net.has_light.sum() == 1
    limits_kmh = set(np.round(net.edge_speed_limit_ms * 3.6).tolist())
    assert 50.0 in limits_kmh and 30.0 in limits_kmh
    # Primary is two-way (4 edges), the one-way residential street 2 edges, plus the U-turn added at
    # its dead end so that no vehicle gets stuck.
    assert net.n_edges == 7
    sim = FleetSimulation(Scenario(vehicles=20, initially_driving_share=1.0), net, 1.7e9)
    for _ in range(120):
        out = sim.step()
    lat = out.signals["Vehicle.CurrentLocation.Latitude"]
    assert np.nanmin(lat) > 48.098 and np.nanmax(lat) < 48.106
