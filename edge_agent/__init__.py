"""The in-car edge agent, and the many-vehicle publishing path the simulator uses.

The in-car agent (run by `fleet agent --config` or `python -m edge_agent --config`):
- `agent`: the orchestrator, one loop: source -> collector -> spool -> sender;
- `service`, `__main__`: process start-up and signals; `config`: the agent's TOML file;
- `sources/`: OBD-II, CAN (`can/`: the demo DBC) and simulated signal sources;
- `campaign`, `expression`, `sampling`, `trigger`, `ring`, `collector`: campaigns (pure);
- `spool_router` and the `spool*` modules: store-and-forward, SQLite WAL bounded on disk, memory
  while the disk is full;
- `sender`: drains the spool over the link, live and backlog interleaved, at least once;
- `link`: the MQTT connection (backoff, last will, check-in, campaigns on the config topic);
- `ota/`: installing software into A/B slots per ECU (the check-in's software list comes from it);
- `ratelimit`: rate-limited log lines.

The many-vehicle path (`edge_agent.fleet_publishing`: `FleetBatcher`, `MqttPublisher`,
`SequenceCounter`) publishes a simulated fleet at once through the same wire format and topics;
the car never imports it.

Nothing is imported here, so that a car loads only the modules it runs.
"""
