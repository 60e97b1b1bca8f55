"""Fleet simulation that drives vehicles through the real agent -> MQTT -> ingest pipeline.

Foundation scope: `DemoFleet` (consistent signals, no faults) and `drive` (pacing and publishing).
Road networks, fault and hazard injection and ground truth come with the simulator issue.
"""

from simulators.demo_fleet import DemoFleet, FleetSpec
from simulators.runner import DriveConfig, VehiclePublishers, drive

__all__ = ["DemoFleet", "DriveConfig", "FleetSpec", "VehiclePublishers", "drive"]
