"""A process that runs the installer, for the power-cut test (test_power_cut.py): it SIGKILLs itself
the first time the installer reaches `--kill` (e.g. "saved:write", "write:chunk", "acted:switch"),
so the kill lands exactly after that durable step and before the next one.

    python installer_driver.py STATE_DIR offer ARTIFACT SHA256 LENGTH VERSION [--kill P] [--health fail]
    python installer_driver.py STATE_DIR resume [--kill P] [--health fail]

Prints one JSON line: what the process found at its start (each ECU's running version, and whether
its image matches its manifest) and the last event and inventory when it ended.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from contract.software import EcuSoftware
from edge_agent.ota.artifact import VerifiedArtifact
from edge_agent.ota.durable import file_digest
from edge_agent.ota.install import Installer
from edge_agent.ota.preconditions import VehicleConditions

CONFIGURED = (EcuSoftware("ECM", "4.2.1", "ecm-b12"),)
PARKED = VehicleConditions(speed_kmh=0.0, parked_s=600.0, engine_running=False, battery_v=12.6)


def found(installer: Installer) -> dict[str, object]:
    """Each ECU as found at start-up: the version it reports, and whether the running slot works (a
    valid marker, and an image that matches its manifest; an ECU without slots yet runs its
    factory software)."""
    out: dict[str, object] = {
        e.ecu: {"version": e.version, "works": True, "booted": None} for e in installer.inventory()
    }
    for ecu in installer.status().ecus:
        if ecu.boot is None or ecu.running is None:
            out[ecu.ecu] = {"version": None, "works": False, "error": ecu.error}
            continue
        image = installer.slots.ecu(ecu.ecu).image_path(ecu.boot.booted)
        if ecu.running.is_factory:
            works = True
        else:
            works = file_digest(image) == (ecu.running.sha256, ecu.running.length_bytes)
        out[ecu.ecu] = {"version": ecu.running.version, "works": works, "booted": ecu.boot.booted}
    assert {k: v["version"] for k, v in out.items()} == {e.ecu: e.version for e in installer.inventory()}  # type: ignore[index]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("mode", choices=("offer", "resume"))
    parser.add_argument("artifact", nargs="*")
    parser.add_argument("--kill", default="")
    parser.add_argument("--health", choices=("ok", "fail"), default="ok")
    parser.add_argument("--boot-tries", type=int, default=3)
    args = parser.parse_args()

    def probe(point: str) -> None:
        if point == args.kill:
            os.kill(os.getpid(), signal.SIGKILL)

    checks = {"ECM": lambda ctx: "injected: the ECU does not answer"} if args.health == "fail" else {}
    installer = Installer(
        args.state_dir, configured=CONFIGURED, boot_tries=args.boot_tries, ecu_checks=checks, probe=probe
    )
    at_start = found(installer)
    if args.mode == "offer":
        path, sha256, length, version = args.artifact
        artifact = VerifiedArtifact(Path(path), "ECM", version, sha256, int(length), "ecm-b12")
        event = installer.offer(artifact, PARKED)
    else:
        event = installer.resume()
    doc = {
        "at_start": at_start,
        "event": None if event is None else event.as_json(),
        "inventory": {e.ecu: e.version for e in installer.inventory()},
        "state": None if installer.status().state is None else str(installer.status().state),
    }
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
