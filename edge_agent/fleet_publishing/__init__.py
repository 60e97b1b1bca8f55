"""Publishing for many vehicles at once: the path the fleet simulator (and `fleet demo`) drives.

Not part of the in-car agent, which publishes one vehicle from its spool (`edge_agent.sender` over
`edge_agent.link`). This path keeps no spool: it cuts a fleet's samples into wire-v1 batches and
publishes them at QoS 1, counting what the broker acknowledged.
- `FleetBatcher` (`batcher`): sampled columns of shape (vehicles,) -> one batch per vehicle per cut;
- `SequenceCounter` (`sequence`): batch sequence numbers that only increase, across restarts too;
- `MqttPublisher` (`publisher`): paho-mqtt at QoS 1, as one vehicle (its own login and last will)
  or as a gateway login publishing for many.
"""

from edge_agent.fleet_publishing.batcher import FleetBatcher
from edge_agent.fleet_publishing.publisher import MqttPublisher, PublishError, PublishStats
from edge_agent.fleet_publishing.sequence import SequenceCounter

__all__ = ["FleetBatcher", "MqttPublisher", "PublishError", "PublishStats", "SequenceCounter"]
