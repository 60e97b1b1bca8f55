"""The installer (edge_agent.ota.install) in process, on real files: the install, refusals, a
corrupted slot, a failed health check, the loop cap, recovery from a lost or broken record."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from contract.software import EcuSoftware
from edge_agent.ota.bootstate import BAD, Mark
from edge_agent.ota.events import InstallEvent
from edge_agent.ota.health import HealthContext
from edge_agent.ota.install import Installer, InstallerBusy
from edge_agent.ota.preconditions import OfferTerms, VehicleConditions
from edge_agent.ota.slots import IMAGE, MANIFEST
from edge_agent.ota.state import MAX_STATE_SAVES, State
from tests.edge_agent.ota.conftest import CONFIGURED, PARKED, PowerCut, cut_at, make_artifact


def installer(state_dir: Path, events: list[InstallEvent] | None = None, **kw: object) -> Installer:
    return Installer(
        state_dir,
        configured=CONFIGURED,
        on_event=None if events is None else events.append,
        **kw,  # type: ignore[arg-type]
    )


def versions(inst: Installer) -> dict[str, str]:
    return {e.ecu: e.version for e in inst.inventory()}


def test_an_install_runs_every_step_and_the_inventory_follows_the_running_slot(tmp_path: Path) -> None:
    events: list[InstallEvent] = []
    inst = installer(tmp_path / "state", events)
    art = make_artifact(tmp_path / "dl", "4.3.0")
    assert versions(inst) == {"ECM": "4.2.1", "BCM": "1.7.0"}  # no slots yet: the configuration
    result = inst.offer(art, PARKED, OfferTerms(offer_id="offer-7"))
    assert result.result == "installed" and result.install_id == "offer-7"
    assert [e.state for e in events] == [
        State.PRECONDITIONS,
        State.WRITE,
        State.VERIFY,
        State.SWITCH,
        State.REBOOT,
        State.HEALTH_CHECK,
        State.COMMIT,
        State.INSTALLED,
    ]
    assert [e.running_version for e in events] == ["4.2.1"] * 5 + ["4.3.0"] * 3
    assert (result.from_version, result.from_sha256) == ("4.2.1", "")  # the factory software: no hash
    assert (result.to_version, result.to_sha256) == ("4.3.0", art.sha256)
    assert (result.running_version, result.running_sha256) == ("4.3.0", art.sha256)
    assert versions(inst) == {"ECM": "4.3.0", "BCM": "1.7.0"}
    assert next(e for e in inst.inventory() if e.ecu == "ECM").hardware_id == "ecm-b12"
    status = inst.status()
    assert status.state is None and not (tmp_path / "state/ota/install.json").exists()
    ecm = status.ecu_status("ECM")
    assert ecm is not None and ecm.boot is not None
    assert ecm.boot.booted == "b" and ecm.boot.a.mark is ecm.boot.b.mark is Mark.GOOD
    assert ecm.other is not None and ecm.other.version == "4.2.1"  # the fallback
    assert (tmp_path / "state/ota/ecus/ECM/b/image").read_bytes() == art.path.read_bytes()
    assert json.loads(json.dumps(result.as_json()))["running"] == {"version": "4.3.0", "sha256": art.sha256}

    second = make_artifact(tmp_path / "dl", "4.4.0")
    assert inst.offer(second, PARKED).result == "installed"
    ecm = inst.status().ecu_status("ECM")
    assert ecm is not None and ecm.boot is not None and ecm.boot.booted == "a"  # the other slot
    assert ecm.running is not None and ecm.running.version == "4.4.0"
    assert ecm.other is not None and ecm.other.version == "4.3.0"


def test_refusals_name_the_precondition_and_write_nothing(tmp_path: Path) -> None:
    events: list[InstallEvent] = []
    inst = installer(tmp_path / "state", events)
    art = make_artifact(tmp_path / "dl", "4.3.0")
    moving = VehicleConditions(speed_kmh=40, parked_s=0, engine_running=True, battery_v=13.9)
    refused = inst.offer(art, moving, OfferTerms(consent_required=True))
    assert refused.result == "refused"
    assert [r.precondition for r in refused.refusals] == ["parked", "consent"]
    assert "moving at 40 km/h" in refused.reason
    assert not (tmp_path / "state/ota/ecus/ECM").exists()  # not even seeded
    assert inst.status().state is None

    other = make_artifact(tmp_path / "dl", "1.0", ecu="TCU")
    assert [r.precondition for r in inst.offer(other, PARKED).refusals] == ["ecu"]
    wrong_hw = make_artifact(tmp_path / "dl", "4.3.0")
    wrong_hw = type(wrong_hw)(wrong_hw.path, "ECM", "4.3.0", wrong_hw.sha256, wrong_hw.length_bytes, "ecm-c1")
    assert [r.precondition for r in inst.offer(wrong_hw, PARKED).refusals] == ["hardware_id"]
    assert inst.offer(art, PARKED).result == "installed"
    again = inst.offer(art, PARKED)
    assert [r.precondition for r in again.refusals] == ["already_running"]
    assert versions(inst)["ECM"] == "4.3.0"
    ecm = inst.status().ecu_status("ECM")
    assert ecm is not None and ecm.other is not None and ecm.other.version == "4.2.1"  # fallback kept


def test_a_corrupted_slot_is_caught_and_never_made_active(tmp_path: Path) -> None:
    state = tmp_path / "state"
    art = make_artifact(tmp_path / "dl", "4.3.0")

    def flip(point: str) -> None:
        if point == "acted:write":  # the slot is written: flip one byte of it
            image = state / "ota/ecus/ECM/b" / IMAGE
            data = bytearray(image.read_bytes())
            data[len(data) // 2] ^= 0x01
            image.write_bytes(bytes(data))

    events: list[InstallEvent] = []
    inst = installer(state, events, probe=flip)
    result = inst.offer(art, PARKED)
    assert result.result == "failed" and "sha256" in result.reason
    assert State.SWITCH not in [e.state for e in events]
    ecm = inst.status().ecu_status("ECM")
    assert ecm is not None and ecm.boot is not None
    assert (ecm.boot.booted, ecm.boot.b) == ("a", BAD)
    assert not (state / "ota/ecus/ECM/b" / IMAGE).exists()  # the bad image does not hold the disk
    assert versions(inst)["ECM"] == "4.2.1"


def test_an_artifact_longer_or_other_than_its_metadata_is_never_installed(tmp_path: Path) -> None:
    inst = installer(tmp_path / "state")
    art = make_artifact(tmp_path / "dl", "4.3.0")
    with open(art.path, "ab") as fh:  # endless data: more bytes than the metadata lists
        fh.write(b"\0" * 10)
    result = inst.offer(art, PARKED)
    assert result.result == "failed" and "more than the 100000 bytes" in result.reason
    art = make_artifact(tmp_path / "dl", "4.3.1")
    art.path.write_bytes(b"y" * art.length_bytes)  # same length, other bytes
    assert inst.offer(art, PARKED).result == "failed"
    art.path.unlink()
    assert "No such file" in inst.offer(art, PARKED).reason
    assert versions(inst)["ECM"] == "4.2.1"


def test_a_failed_health_check_rolls_back_and_the_old_version_is_reported(tmp_path: Path) -> None:
    seen: list[HealthContext] = []

    def ecm_check(ctx: HealthContext) -> str | None:
        seen.append(ctx)
        return "ECM answers with the old calibration"

    events: list[InstallEvent] = []
    inst = installer(tmp_path / "state", events, ecu_checks={"ECM": ecm_check})
    result = inst.offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED)
    assert result.result == "rolled_back"
    assert result.reason == "health check failed: ECM answers with the old calibration"
    assert [e.state for e in events][-3:] == [State.HEALTH_CHECK, State.ROLLBACK, State.ROLLED_BACK]
    assert (result.running_version, result.to_version) == ("4.2.1", "4.3.0")
    assert seen[0].manifest == seen[0].expected and seen[0].slot == "b"
    assert versions(inst)["ECM"] == "4.2.1"
    ecm = inst.status().ecu_status("ECM")
    assert ecm is not None and ecm.boot is not None and (ecm.boot.booted, ecm.boot.b) == ("a", BAD)

    def broken(ctx: HealthContext) -> str | None:
        raise RuntimeError("the hook itself is broken")

    inst = installer(tmp_path / "state", ecu_checks={"ECM": broken})
    result = inst.offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED)
    assert result.result == "rolled_back" and "RuntimeError: the hook itself is broken" in result.reason


def test_the_default_health_check_sees_a_slot_changed_after_the_switch(tmp_path: Path) -> None:
    state = tmp_path / "state"

    def tamper(point: str) -> None:
        if point == "acted:switch":
            (state / "ota/ecus/ECM/b" / IMAGE).write_bytes(b"short")

    result = installer(state, probe=tamper).offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED)
    assert result.result == "rolled_back" and "image holds 5 bytes, not 100000" in result.reason


def test_a_restart_before_the_switch_abandons_the_install_and_one_after_finishes_it(tmp_path: Path) -> None:
    art = make_artifact(tmp_path / "dl", "4.3.0")
    inst = installer(tmp_path / "s1", probe=cut_at("acted:verify"))
    with pytest.raises(PowerCut):
        inst.offer(art, PARKED)
    assert inst.status().state is State.VERIFY
    busy = inst.offer(make_artifact(tmp_path / "dl", "4.4.0"), PARKED)
    assert busy.result == "refused" and busy.refusals[0].precondition == "busy"
    result = installer(tmp_path / "s1").resume()
    assert result is not None and result.result == "failed" and result.running_version == "4.2.1"
    assert installer(tmp_path / "s1").resume() is None  # finished: nothing left to resume

    inst = installer(tmp_path / "s2", probe=cut_at("saved:health_check"))
    with pytest.raises(PowerCut):
        inst.offer(art, PARKED)
    result = installer(tmp_path / "s2").resume()
    assert result is not None and result.result == "installed" and result.running_version == "4.3.0"


def test_the_save_counter_forces_a_rollback(tmp_path: Path) -> None:
    """A tentative boot that dies during every health check, with many boot tries: Mender's cap on
    state saves ends it."""
    art = make_artifact(tmp_path / "dl", "4.3.0")
    restarts = 0
    result = None
    with pytest.raises(PowerCut):
        installer(tmp_path / "state", boot_tries=1000, probe=cut_at("saved:health_check")).offer(art, PARKED)
    while result is None:
        restarts += 1
        assert restarts <= MAX_STATE_SAVES
        try:
            result = installer(
                tmp_path / "state", boot_tries=1000, probe=cut_at("saved:health_check")
            ).resume()
        except PowerCut:
            continue
    assert result.result == "rolled_back" and "state loop detected" in result.reason
    assert versions(installer(tmp_path / "state"))["ECM"] == "4.2.1"


def test_a_lost_or_broken_record_leaves_every_ecu_on_its_confirmed_slot(tmp_path: Path) -> None:
    state = tmp_path / "state"
    art = make_artifact(tmp_path / "dl", "4.3.0")
    with pytest.raises(PowerCut):
        installer(state, probe=cut_at("saved:health_check")).offer(art, PARKED)
    assert versions(installer(state))["ECM"] == "4.3.0"  # booted tentatively
    record = state / "ota/install.json"
    record.write_bytes(b'{"schema": 1, "state": "commi')  # damaged
    assert installer(state).resume() is None
    assert [p.name.startswith("install.json.corrupt-") for p in (state / "ota").iterdir()].count(True) == 1
    assert versions(installer(state))["ECM"] == "4.2.1"  # the unconfirmed slot fell back
    ecm = installer(state).status().ecu_status("ECM")
    assert ecm is not None and ecm.boot is not None and ecm.boot.b == BAD


def test_a_broken_boot_marker_leaves_that_ecu_out_and_refuses_installs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    inst = installer(state)
    assert inst.offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED).result == "installed"
    (state / "ota/ecus/ECM/boot.json").write_bytes(b"\x00garbage")
    assert versions(inst) == {"BCM": "1.7.0"}  # unknown, not guessed
    status = inst.status().ecu_status("ECM")
    assert status is not None and status.boot is None and "unreadable boot marker" in status.error
    refused = inst.offer(make_artifact(tmp_path / "dl", "4.4.0"), PARKED)
    assert [r.precondition for r in refused.refusals] == ["slots"]
    assert inst.offer(make_artifact(tmp_path / "dl", "1.8.0", ecu="BCM"), PARKED).result == "installed"


def test_one_process_at_a_time_and_a_failing_event_handler_does_not_stop_the_install(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "ota").mkdir(parents=True)
    fd = os.open(state / "ota/lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(InstallerBusy):
            installer(state).resume()
    finally:
        os.close(fd)

    def failing(event: InstallEvent) -> None:
        raise OSError("spool full")

    inst = Installer(state, configured=CONFIGURED, on_event=failing)
    assert inst.offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED).result == "installed"


def test_an_ecu_first_seen_in_slots_is_reported_with_its_manifest(tmp_path: Path) -> None:
    state = tmp_path / "state"
    inst = installer(state)
    assert inst.offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED).result == "installed"
    bare = Installer(state, configured=(EcuSoftware("BCM", "1.7.0", "bcm-a3"),))  # ECM left out of the config
    assert versions(bare) == {"BCM": "1.7.0", "ECM": "4.3.0"}
    (state / "ota/ecus/ECM/b" / MANIFEST).write_bytes(b"{")
    assert versions(bare) == {"BCM": "1.7.0"}


def test_an_artifact_without_the_ecus_hardware_id_is_refused(tmp_path: Path) -> None:
    art = make_artifact(tmp_path / "dl", "4.3.0")
    bare = type(art)(art.path, "ECM", "4.3.0", art.sha256, art.length_bytes)  # no hardware id
    refused = installer(tmp_path / "state").offer(bare, PARKED)
    assert [r.as_json() for r in refused.refusals] == [
        {"precondition": "hardware_id", "detail": "built for no hardware id, the ECU is ecm-b12"}
    ]


def test_a_half_seeded_ecu_runs_its_configured_software_and_is_seeded_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "ota/ecus/ECM/a").mkdir(parents=True)  # the power went before its boot marker was written
    inst = installer(state)
    assert versions(inst) == {"ECM": "4.2.1", "BCM": "1.7.0"} and inst.status().ecus == ()
    assert inst.offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED).result == "installed"


def test_a_state_that_cannot_be_saved_is_never_acted_on(tmp_path: Path) -> None:
    state = tmp_path / "state"
    blocker = state / "ota/install.json.part"  # the save's temporary file cannot be created
    blocker.mkdir(parents=True)
    inst = installer(state)
    first = inst.offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED)
    assert first.result == "failed" and "cannot save the install state" in first.reason
    assert not (state / "ota/ecus/ECM").exists()  # nothing was done
    blocker.rmdir()

    def block_saves(point: str) -> None:
        if point == "acted:write":
            blocker.mkdir()

    events: list[InstallEvent] = []
    stalled = installer(state, events, probe=block_saves).offer(
        make_artifact(tmp_path / "dl", "4.3.0"), PARKED
    )
    assert stalled.stalled and stalled.result is None and stalled.state is State.VERIFY
    assert [e.state for e in events][-2:] == [State.WRITE, State.VERIFY]  # the last one: stalled
    assert stalled.running_version == "4.2.1" and versions(inst)["ECM"] == "4.2.1"
    assert inst.status().state is State.WRITE  # the last saved state, resumed later
    again = inst.resume()
    assert again is not None and again.stalled  # still cannot save
    blocker.rmdir()
    done = inst.resume()
    assert done is not None and done.result == "failed" and versions(inst)["ECM"] == "4.2.1"
    assert inst.offer(make_artifact(tmp_path / "dl", "4.3.0"), PARKED).result == "installed"
