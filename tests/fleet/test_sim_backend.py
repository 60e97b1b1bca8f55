"""The closed loop's run-level pieces without servers: the run's TUF repository holds each firmware
bug's cure for the hardware ids the simulated vehicles report, the image hash matches what the
simulated vehicles report, and the run's catalogue patches the buggy version to the cure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fleet.sim_backend import cures, run_catalogue, run_repository
from ota.repository import OtaRepository
from remedies.catalogue import OtaPatch, VehicleFacts
from simulators.engine import FleetSimulation
from simulators.fleet_registry import checkin_messages
from simulators.ota_responder import image_sha256
from simulators.roads import city_grid
from simulators.scenario import FaultSpec, Scenario, parse_scenario


def _sim() -> FleetSimulation:
    faults = (
        FaultSpec("firmware_bug", 3, onset_s=0.0, params={"version": "4.2.0", "fixed_version": "4.2.1"}),
        FaultSpec("misfire", 1, onset_s=0.0),
    )
    return FleetSimulation(
        Scenario(seed=5, vehicles=20, ev_share=0.5, faults=faults), city_grid(blocks=3), 1.7e9
    )


def test_the_run_repository_publishes_each_cure_for_the_fleets_hardware(tmp_path: Path) -> None:
    sim = _sim()
    found = cures(sim)
    assert found and {c.version for c in found} == {"4.2.1"} and {c.buggy_version for c in found} == {"4.2.0"}
    targets = OtaRepository(run_repository(tmp_path, sim)).list_targets()
    assert {(t["ecu"], t["version"]) for t in targets} == {(c.ecu, c.version) for c in found}
    assert not (tmp_path / "repo" / "keys").exists() and (tmp_path / "keys").is_dir()
    by_ecu = {t["ecu"]: t for t in targets}
    buggy = [r["vehicle_index"] for r in sim.faults.records if r["kind"] == "firmware_bug"]
    for v, payload in checkin_messages(sim, np.array(buggy)):
        software = {e["ecu"]: e for e in json.loads(payload)["software"]}
        ecu = next(e for e in ("ECM", "VCU") if software.get(e, {}).get("version") == "4.2.0")
        target = by_ecu[ecu]
        assert software[ecu]["hardware_id"] in target["hardware_ids"], v
        # What the simulated vehicle reports as the image's SHA-256 is the signed target's.
        offer = type("O", (), {"target": target["target"]})()
        assert image_sha256(offer) == target["sha256"]  # type: ignore[arg-type]


def test_the_run_catalogue_patches_the_buggy_version_to_its_cure() -> None:
    sim = _sim()
    catalogue = run_catalogue(sim)
    for cure in cures(sim):
        entry = catalogue.match("firmware_bug", VehicleFacts("V", software={cure.ecu: "4.2.0"}))
        assert entry is not None and isinstance(entry.remedy, OtaPatch)
        assert (entry.remedy.ecu, entry.remedy.to_version) == (cure.ecu, "4.2.1")
    # Another version is not this cure's business: the shipped entry applies.
    other = catalogue.match("firmware_bug", VehicleFacts("V", software={"ECM": "4.1.2", "VCU": "4.1.2"}))
    assert other is not None and other.name == "firmware-cure"


def test_a_negative_backend_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="backend_every_s"):
        parse_scenario({"backend_every_s": -1.0})
