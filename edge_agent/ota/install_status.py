"""What `Installer.status()` shows: the saved install, and each ECU's slots as they are on disk.

Owns reading them without changing anything (no lock, never raises), for the agent's stats file,
the check-in and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.ota.artifact import Manifest
from edge_agent.ota.bootstate import BootState
from edge_agent.ota.slots import Slots
from edge_agent.ota.state import Job, State


@dataclass(frozen=True, slots=True)
class EcuStatus:
    ecu: str
    boot: BootState | None  # None when the marker is unreadable (see error)
    running: Manifest | None  # the booted slot's manifest
    other: Manifest | None  # the other slot's manifest (the fallback after a commit)
    error: str = ""


@dataclass(frozen=True, slots=True)
class InstallerStatus:
    state: State | None  # the saved install's state; None when no install is under way
    install_id: str
    ecu: str
    target: str
    saves: int
    ecus: tuple[EcuStatus, ...]

    def ecu_status(self, ecu: str) -> EcuStatus | None:
        return next((e for e in self.ecus if e.ecu == ecu), None)


def read_status(slots: Slots, job: Job | None) -> InstallerStatus:
    ecus = []
    for name in slots.ecus():
        ecu = slots.ecu(name)
        try:
            boot = ecu.read_boot()
        except OSError as exc:
            ecus.append(EcuStatus(name, None, None, None, str(exc)))
            continue
        ecus.append(EcuStatus(name, boot, ecu.manifest(boot.booted), ecu.manifest(boot.inactive)))
    return InstallerStatus(
        state=None if job is None else job.state,
        install_id="" if job is None else job.install_id,
        ecu="" if job is None else job.ecu,
        target="" if job is None else job.target,
        saves=0 if job is None else job.saves,
        ecus=tuple(ecus),
    )
