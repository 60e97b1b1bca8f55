"""Over-the-air software updates, the server side: signed artifacts (python-tuf) and the protocol.

- `keys`: the TUF signing keys in a key directory outside the served repository;
- `repository`: the TUF repository on disk (root with a threshold of keys, targets with custom
  metadata: ECU, version, hardware ids; snapshot, timestamp), `expiry` its lifetimes (pure);
- `server`: the ASGI app serving metadata and artifacts with Range requests;
- `offers`: update offers with the server's nonce; `vehicle_keys`: each vehicle's report key;
- `reports`: verifying the vehicles' signed update reports (signature, nonce, replay).

docs/ota.md is the user's guide and the protocol. Left to others: the campaign controller (which
vehicles get which offer, waves, thresholds), and the agent's side (`edge_agent.ota`), which
imports nothing from here.
"""
