"""The agent's OTA client: verifying an offered update, installing it into the inactive A/B slot,
and reporting.

Verification and reports:
- `verify`: `verify_update`, python-tuf's `ngclient` from the root.json shipped with the vehicle's
  provisioning, the target checked against the offer and the ECU's hardware id, the artifact
  fetched and checked (`VerifiedTarget`, which carries every field of the installer's
  `VerifiedArtifact`);
- `fetcher`: the HTTP transport under python-tuf, with resumable, length-capped artifact downloads;
- `report`: the vehicle's signed update reports (`ReportSigner`, `build_report`, `ReportCounter`).

The install:
- `artifact`: `VerifiedArtifact`, the installer's input, and a slot's `Manifest`;
- `preconditions`: parked, enough power, maintenance window, consent (pure);
- `bootstate`: an ECU's A/B boot marker and RAUC's marks (pure); `slots`: the slots on disk;
- `state`: the install state machine's one transition table and its saved record (pure);
- `install`, `install_actions`, `install_status`, `record`: the installer (`Installer.offer`,
  `.resume`, `.status`, `.inventory`) and its saved record;
- `health`: the health check after the switch; `events`: what becomes the reports;
- `inventory`: the check-in's software list from the running slots; `durable`: fsync'd writes.

The agent's client:
- `client`: the worker that takes offers and consents, verifies, installs and reports (`policy`:
  its decisions, pure; `offer_store`: the pending offers on disk; `reporter`: signed reports into
  the agent's spool; `conditions`: the live conditions from the signals). The agent's wiring is
  `edge_agent.agent_ota`.

Nothing is imported here, so that a car loads only the modules it runs. docs/ota.md describes the
protocol, the install and the client.
"""
