"""Over-the-air software updates, the server side: signed artifacts (python-tuf) and the protocol.

- `keys`: the TUF signing keys in a key directory outside the served repository;
- `repository`: the TUF repository on disk (root with a threshold of keys, targets with custom
  metadata: ECU, version, hardware ids; snapshot, timestamp), `expiry` its lifetimes (pure);
- `server`: the ASGI app serving metadata and artifacts with Range requests;
- `offers`: update offers with the server's nonce; `vehicle_keys`: each vehicle's report key;
- `reports`: verifying the vehicles' signed update reports (signature, nonce, replay);
- `rollout` (pure) and `controller`: campaigns in waves (docs/remedies.md).

docs/ota.md is the signed-update guide and the protocol. The agent's side is `edge_agent.ota`,
which imports nothing from here.
"""
