"""Property test of the installer on real files: any sequence of power cuts (simulated in process
at the installer's durable steps; the SIGKILL test is test_power_cut.py), any health verdict and
any number of boot tries leave one working slot, and the install ends with the version its result
says."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.ota.bootstate import Mark
from edge_agent.ota.durable import file_digest
from edge_agent.ota.install import Installer
from edge_agent.ota.state import State
from tests.edge_agent.ota.conftest import CONFIGURED, PARKED, PowerCut, cut_at, make_artifact

POINTS = [f"{when}:{s}" for s in State for when in ("saved", "acted")] + ["write:chunk"]


def check_working(inst: Installer, versions: set[str]) -> str:
    """The running slot of ECM works; returns its version."""
    (ecm,) = [e for e in inst.inventory() if e.ecu == "ECM"]
    assert ecm.version in versions
    status = inst.status().ecu_status("ECM")
    if status is not None:
        assert status.boot is not None and status.boot.is_valid() and status.running is not None
        assert status.running.version == ecm.version
        if not status.running.is_factory:
            image = inst.slots.ecu("ECM").image_path(status.boot.booted)
            assert file_digest(image) == (status.running.sha256, status.running.length_bytes)
    return ecm.version


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.tuples(st.sampled_from(POINTS), st.integers(1, 2)), max_size=8),
    healthy=st.booleans(),
    boot_tries=st.integers(1, 3),
    second=st.booleans(),
)
def test_any_power_cuts_leave_one_working_slot(
    cuts: list[tuple[str, int]], healthy: bool, boot_tries: int, second: bool
) -> None:
    with tempfile.TemporaryDirectory(prefix="abinstall-prop-") as tmp:
        state = Path(tmp) / "state"
        old, new = "4.2.1", "4.3.0"
        if second:
            first = make_artifact(Path(tmp) / "dl", "4.3.0", size=4096)
            assert Installer(state, configured=CONFIGURED).offer(first, PARKED).result == "installed"
            old, new = "4.3.0", "4.4.0"
        art = make_artifact(Path(tmp) / "dl", new, size=4096)
        checks = {} if healthy else {"ECM": lambda ctx: "unhealthy"}

        def installer(probe_at: tuple[str, int] | None) -> Installer:
            probe = None if probe_at is None else cut_at(*probe_at)
            return Installer(
                state, configured=CONFIGURED, boot_tries=boot_tries, ecu_checks=checks, probe=probe
            )

        pending = list(cuts)
        result = None
        with contextlib.suppress(PowerCut):
            result = installer(pending.pop(0) if pending else None).offer(art, PARKED)
        while result is None:
            check_working(installer(None), {old, new})
            try:
                result = installer(pending.pop(0) if pending else None).resume()
            except PowerCut:
                continue
            assert result is not None  # an install was under way
        inst = installer(None)
        assert inst.resume() is None and inst.status().state is None
        running = check_working(inst, {old, new})
        assert result.running_version == running
        assert (result.result == "installed") == (running == new)
        if result.result == "installed":
            assert healthy
        status = inst.status().ecu_status("ECM")
        if status is None:  # cut before its slots were first made: the configured software runs
            assert not second and running == old and result.result == "failed"
        else:
            assert status.boot is not None and status.boot.mark(status.boot.booted).mark is Mark.GOOD
