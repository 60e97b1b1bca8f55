"""The in-car edge agent: sources -> campaign collector -> durable disk queue -> MQTT.

Two paths share this package:
- the in-car service (`edge_agent.agent.Agent`, run by `fleet agent --config` or
  `python -m edge_agent --config`): sources (`edge_agent.sources`: OBD-II, CAN, simulated),
  campaigns (`campaign`, `expression`, `sampling`, `trigger`, `ring`, `collector`: pure),
  store-and-forward (`spool_router`: SQLite WAL bounded on disk, memory while the disk is full)
  and the MQTT link (`link`: backoff, last will, config);
- the fleet simulator's path (`FleetBatcher`, `MqttPublisher`, `SequenceCounter`), which publishes
  many simulated vehicles at once.
Submodules are imported lazily by their users so that a car loads only what it runs.
"""

from edge_agent.batcher import FleetBatcher
from edge_agent.publisher import MqttPublisher, PublishError, PublishStats
from edge_agent.sequence import SequenceCounter

__all__ = ["FleetBatcher", "MqttPublisher", "PublishError", "PublishStats", "SequenceCounter"]
