"""The fleet simulator: thousands of vehicles, vectorised, with faults, hazards and ground truth.

`FleetSimulation` (engine.py) advances one numpy array per state variable across the whole fleet;
`feed` (feeder.py) publishes it through the edge agent's batcher and MQTT publisher; scenarios
(scenario.py, scenarios/*.toml) say what to simulate; ground_truth.py and report.py write what
was injected and pictures of the run. `fleet simulate` and `fleet bench simulator` drive it.
"""

from simulators.engine import FleetSimulation, StepOutput
from simulators.feeder import FeedConfig, FeedStats, feed
from simulators.roads import RoadNetwork, city_grid
from simulators.runner import VehiclePublishers
from simulators.scenario import FaultSpec, HazardSpec, NetworkSpec, Scenario, load_scenario

__all__ = [
    "FaultSpec",
    "FeedConfig",
    "FeedStats",
    "FleetSimulation",
    "HazardSpec",
    "NetworkSpec",
    "RoadNetwork",
    "Scenario",
    "StepOutput",
    "VehiclePublishers",
    "city_grid",
    "feed",
    "load_scenario",
]
