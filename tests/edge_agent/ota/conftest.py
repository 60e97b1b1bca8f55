"""Helpers of the installer tests: artifact files and a simulated power cut (in process; the
power-cut test proper SIGKILLs a real process: test_power_cut.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from contract.software import EcuSoftware
from edge_agent.ota.artifact import VerifiedArtifact
from edge_agent.ota.preconditions import VehicleConditions

CONFIGURED = (EcuSoftware("ECM", "4.2.1", "ecm-b12"), EcuSoftware("BCM", "1.7.0", "bcm-a3"))
PARKED = VehicleConditions(speed_kmh=0.0, parked_s=600.0, engine_running=False, battery_v=12.6)


class PowerCut(BaseException):
    """Raised by a probe: nothing after it runs, as when the power goes (BaseException, so no
    `except Exception` of the code under test swallows it)."""


def make_artifact(directory: Path, version: str, size: int = 100_000, ecu: str = "ECM") -> VerifiedArtifact:
    """A file of `size` bytes that differ per version, and its metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    seed = hashlib.sha256(f"{ecu}-{version}".encode()).digest()
    data = (seed * (size // len(seed) + 1))[:size]
    path = directory / f"{ecu}-{version}.bin"
    path.write_bytes(data)
    hardware_id = {e.ecu: e.hardware_id for e in CONFIGURED}.get(ecu, "")
    return VerifiedArtifact(path, ecu, version, hashlib.sha256(data).hexdigest(), size, hardware_id)


def cut_at(point: str, times: int = 1):  # type: ignore[no-untyped-def]
    """A probe that cuts the power the `times`-th time `point` is reached."""
    seen = {"n": 0}

    def probe(reached: str) -> None:
        if reached == point:
            seen["n"] += 1
            if seen["n"] == times:
                raise PowerCut(point)

    return probe
