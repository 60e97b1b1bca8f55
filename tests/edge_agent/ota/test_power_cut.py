"""The power-cut test of the A/B install (issue 12's acceptance): a real installer process is
SIGKILLed at each step of the install, restarted, and must come back on a working slot that
reports the right version: the old one when the kill came before the switch was committed, the
new one after it; the old one, rolled back, when the health check fails; and the old one when the
new slot never gets through its health check within its boot tries."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contract.software import EcuSoftware
from edge_agent.ota.artifact import VerifiedArtifact
from edge_agent.ota.bootstate import Mark
from edge_agent.ota.durable import CHUNK_BYTES, file_digest
from edge_agent.ota.install import Installer
from edge_agent.ota.state import State
from tests.edge_agent.ota.conftest import PARKED, make_artifact

DRIVER = Path(__file__).with_name("installer_driver.py")
CONFIGURED = (EcuSoftware("ECM", "4.2.1", "ecm-b12"),)  # as the driver's
SIZE = 64 * 1024
BIG = CHUNK_BYTES + 4096  # two chunks, so that a kill can land in the middle of the write
BEFORE_SWITCH_COMMITTED = [
    "saved:preconditions",
    "acted:preconditions",
    "saved:write",
    "write:chunk",
    "acted:write",
    "saved:verify",
    "acted:verify",
    "saved:switch",
    "acted:switch",  # the marker says "tentative", but the switch is not committed: abandoned
]
NOTHING_WRITTEN = ("saved:preconditions", "acted:preconditions", "saved:write")
AFTER = [
    "saved:reboot",
    "acted:reboot",
    "saved:health_check",
    "acted:health_check",
    "saved:commit",
    "acted:commit",
    "saved:installed",
]
ROLLING_BACK = ["saved:rollback", "acted:rollback", "saved:rolled_back"]


def run(state: Path, *args: str, kill: str = "", health: str = "ok") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(DRIVER), str(state), *args, "--health", health]
    if kill:
        command += ["--kill", kill]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def result_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


@pytest.fixture(scope="module")
def artifact_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, list[str]]]:
    """Per size, the command-line arguments of 4.3.0 and 4.4.0."""
    out: dict[int, dict[str, list[str]]] = {}
    for size in (SIZE, BIG):
        directory = tmp_path_factory.mktemp(f"artifacts-{size}")
        out[size] = {}
        for version in ("4.3.0", "4.4.0"):
            art = make_artifact(directory, version, size=size)
            out[size][version] = [str(art.path), art.sha256, str(art.length_bytes), version]
    return out


@pytest.fixture
def artifacts(
    artifact_sets: dict[int, dict[str, list[str]]], request: pytest.FixtureRequest
) -> dict[str, list[str]]:
    """Small artifacts (fsyncs of a few KiB keep the test quick), but two chunks where the kill
    point is in the middle of the write."""
    point = getattr(request.node, "callspec", None) and request.node.callspec.params.get("point")
    return artifact_sets[BIG if point == "write:chunk" else SIZE]


def test_the_kill_points_are_every_step_of_the_install(tmp_path: Path) -> None:
    """The lists below are every point an install passes: a new step cannot go untested."""
    reached: list[str] = []

    def record(point: str) -> None:
        if point not in reached:
            reached.append(point)

    inst = Installer(tmp_path, configured=CONFIGURED, probe=record)
    art = make_artifact(tmp_path / "dl", "4.3.0", size=BIG)
    assert inst.offer(art, PARKED).result == "installed"
    assert reached == BEFORE_SWITCH_COMMITTED + AFTER

    reached.clear()
    inst = Installer(tmp_path, configured=(), probe=record, ecu_checks={"ECM": lambda ctx: "no"})
    assert inst.offer(make_artifact(tmp_path / "dl", "4.4.0", size=BIG), PARKED).result == "rolled_back"
    assert reached == BEFORE_SWITCH_COMMITTED + AFTER[:4] + ROLLING_BACK


def install_first(state: Path, artifacts: dict[str, list[str]]) -> None:
    """4.3.0 installed in slot b (in this process: not under test here)."""
    path, sha256, length, version = artifacts["4.3.0"]
    art = VerifiedArtifact(Path(path), "ECM", version, sha256, int(length), "ecm-b12")
    assert Installer(state, configured=CONFIGURED).offer(art, PARKED).result == "installed"


def kill_then_restart(
    state: Path, artifact: list[str], point: str, health: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Offer `artifact` in a process killed at `point`, then restart it (it resumes). Returns what
    the restarted process found at its start, and how it ended; checks that it left nothing to
    resume and nothing half written, and that its slot works."""
    before = Installer(state, configured=CONFIGURED).status().ecu_status("ECM")
    killed = run(state, "offer", *artifact, kill=point, health=health)
    assert killed.returncode == -signal.SIGKILL, (point, killed.stdout, killed.stderr)
    restarted = result_of(run(state, "resume", health=health))
    ended_on = restarted["event"]["running"]["version"]
    assert restarted["state"] is None and restarted["inventory"] == {"ECM": ended_on}
    after = Installer(state, configured=CONFIGURED)
    assert after.resume() is None and [e.version for e in after.inventory()] == [ended_on]
    ecm = after.status().ecu_status("ECM")
    if ecm is None:  # killed before its slots were first made: it runs its factory software
        assert ended_on == "4.2.1" and point in ("saved:preconditions", "acted:preconditions")
        return restarted["at_start"]["ECM"], restarted
    assert ecm.boot is not None and ecm.running is not None
    assert ecm.boot.is_valid() and ecm.boot.mark(ecm.boot.booted).mark is Mark.GOOD
    other = ecm.boot.mark(ecm.boot.inactive).mark
    if restarted["event"]["result"] == "installed":  # the old version stays as the fallback
        assert other is Mark.GOOD and ecm.other is not None
        assert ecm.other.version == restarted["event"]["from"]["version"]
    elif point in NOTHING_WRITTEN and before is not None:  # the other slot was not touched
        assert before.boot is not None and before.boot.mark(ecm.boot.inactive).mark is other
        assert ecm.other == before.other
    else:  # the target slot is bad, and emptied
        assert other is Mark.BAD and ecm.other is None
        assert not after.slots.ecu("ECM").image_path(ecm.boot.inactive).exists()
    if not ecm.running.is_factory:
        image = after.slots.ecu("ECM").image_path(ecm.boot.booted)
        assert file_digest(image) == (ecm.running.sha256, ecm.running.length_bytes)
    assert [p.name for p in state.rglob("*.part")] == []
    return restarted["at_start"]["ECM"], restarted


@pytest.mark.parametrize("first", [True, False], ids=["from_factory", "from_ota_image"])
@pytest.mark.parametrize("point", BEFORE_SWITCH_COMMITTED + AFTER)
def test_killed_at_each_step_it_comes_back_on_a_working_slot_with_the_right_version(
    tmp_path: Path, artifacts: dict[str, list[str]], point: str, first: bool
) -> None:
    state = tmp_path / "state"
    old, new = "4.2.1", "4.3.0"
    if not first:  # the old version is an image of ours in slot b; the install goes into slot a
        install_first(state, artifacts)
        old, new = "4.3.0", "4.4.0"
    at_start, restarted = kill_then_restart(state, artifacts[new], point, "ok")
    assert at_start["works"], at_start  # the slot it came back on works (marker valid, image intact)
    event = restarted["event"]
    if point in BEFORE_SWITCH_COMMITTED:
        assert at_start["version"] == old
        assert event["result"] == "failed" and event["running"]["version"] == old
        assert event["reason"].startswith("interrupted by a restart in ")
    else:
        assert event["result"] == "installed" and event["running"]["version"] == new
        assert event["running"]["sha256"] == artifacts[new][1]
    assert restarted["inventory"] == {"ECM": event["running"]["version"]}
    final = result_of(run(state, "resume"))
    assert (
        final["at_start"]["ECM"]["works"]
        and final["at_start"]["ECM"]["version"] == event["running"]["version"]
    )
    leftovers = [p.name for p in state.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


@pytest.mark.parametrize("point", BEFORE_SWITCH_COMMITTED + AFTER[:4] + ROLLING_BACK)
def test_killed_at_each_step_of_a_failing_install_it_comes_back_on_the_old_version(
    tmp_path: Path, artifacts: dict[str, list[str]], point: str
) -> None:
    state = tmp_path / "state"
    install_first(state, artifacts)
    at_start, restarted = kill_then_restart(state, artifacts["4.4.0"], point, "fail")
    assert at_start["works"], at_start
    event = restarted["event"]
    expected = "failed" if point in BEFORE_SWITCH_COMMITTED else "rolled_back"
    assert event["result"] == expected and event["running"]["version"] == "4.3.0"


def test_a_new_slot_that_never_gets_through_its_health_check_falls_back(
    tmp_path: Path, artifacts: dict[str, list[str]]
) -> None:
    """The agent does not come back up: every start with the new slot dies in the health check.
    After its three boot tries the bootloader falls back, and the old version is reported."""
    state = tmp_path / "state"
    killed = run(state, "offer", *artifacts["4.3.0"], kill="saved:health_check")
    assert killed.returncode == -signal.SIGKILL
    for _ in range(2):  # the second and third tries die too
        again = run(state, "resume", kill="saved:health_check")
        assert again.returncode == -signal.SIGKILL
    restarted = result_of(run(state, "resume"))
    assert restarted["at_start"]["ECM"]["version"] == "4.3.0"  # it was on trial when the power went
    event = restarted["event"]
    assert event["result"] == "rolled_back" and "not confirmed within 3 starts" in event["reason"]
    assert event["running"]["version"] == "4.2.1" and restarted["inventory"] == {"ECM": "4.2.1"}
    assert restarted["state"] is None and event["state"] == State.ROLLED_BACK
