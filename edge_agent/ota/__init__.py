"""The agent's OTA client: installing a verified software image into the inactive A/B slot.

Built so far (the install):
- `artifact`: `VerifiedArtifact`, the installer's input, and a slot's `Manifest`;
- `preconditions`: parked, enough power, maintenance window, consent (pure);
- `bootstate`: an ECU's A/B boot marker and RAUC's marks (pure); `slots`: the slots on disk;
- `state`: the install state machine's one transition table and its saved record (pure);
- `install`, `install_actions`, `install_status`: the installer (`Installer.offer/resume/status`);
- `health`: the health check after the switch; `events`: what becomes the reports;
- `inventory`: the check-in's software list from the running slots; `durable`: fsync'd writes.

Left to others: verifying the signed metadata and fetching the artifact (`verify`, `fetcher`,
python-tuf), signing the reports (`report`), and the agent's handling of offers on the command
topic. Nothing is imported here, so that a car loads only the modules it runs.
"""
