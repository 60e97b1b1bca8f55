"""The agent's OTA client: verifying an offered update before it is installed, and reporting.

Built so far (verification and reports):
- `verify`: `verify_update`, python-tuf's `ngclient` from the root.json shipped with the vehicle's
  provisioning, the target checked against the offer and the ECU's hardware id, the artifact
  fetched and checked (`VerifiedTarget`, the installer's input);
- `fetcher`: the HTTP transport under python-tuf, with resumable, length-capped artifact downloads;
- `report`: the vehicle's signed update reports (`ReportSigner`, `build_report`, `ReportCounter`).

Left to others: the A/B install (slots, preconditions, the install state machine, the health
check) and the agent's handling of offers on the command topic. Nothing is imported here, so that
a car loads only the modules it runs. docs/ota.md describes the protocol.
"""
