"""The in-car edge agent: sources -> batcher -> MQTT publisher.

Foundation scope: the batching and publishing path that the simulator and the demo drive. Real
sources (OBD-II, CAN), campaigns and store-and-forward come with the edge-agent issue.
"""

from edge_agent.batcher import FleetBatcher
from edge_agent.publisher import MqttPublisher, PublishError, PublishStats
from edge_agent.sequence import SequenceCounter

__all__ = ["FleetBatcher", "MqttPublisher", "PublishError", "PublishStats", "SequenceCounter"]
