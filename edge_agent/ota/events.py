"""What the installer tells the agent after each step: the install events that become reports.

Owns the event's fields and its JSON shape. An event is emitted each time the install enters a
state (after that state is saved); the last one carries the result. Events are at least once: a
restart repeats the event of the state it resumes, and a result is repeated until the install's
record is gone, so a report is deduplicated by (install_id, state). Queuing them durably (the
agent's spool) and signing them into reports belong to the agent and `edge_agent.ota.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.ota.preconditions import Refusal
from edge_agent.ota.state import State

RESULTS = {
    State.INSTALLED: "installed",  # the new version runs, committed
    State.ROLLED_BACK: "rolled_back",  # it was switched to, then fell back: the old version runs
    State.FAILED: "failed",  # abandoned before the switch: the old version runs
    State.REFUSED: "refused",  # a precondition failed: nothing was written
}


@dataclass(frozen=True, slots=True)
class InstallEvent:
    """One step of one install, with the versions and SHA-256s before (`from_*`), offered (`to_*`)
    and running now (`running_*`; the running slot's, so after a rollback the old one). `result`
    is None until the install ends. `stalled` says the step could not be saved (e.g. a full disk):
    the install continues at the next `Installer.resume()`."""

    install_id: str
    ecu: str
    state: State
    from_version: str
    from_sha256: str
    to_version: str
    to_sha256: str
    running_version: str
    running_sha256: str
    time_unix_s: float
    reason: str = ""
    refusals: tuple[Refusal, ...] = field(default=())
    stalled: bool = False

    @property
    def result(self) -> str | None:
        return None if self.stalled else RESULTS.get(self.state)

    def as_json(self) -> dict[str, Any]:
        return {
            "install_id": self.install_id,
            "ecu": self.ecu,
            "state": str(self.state),
            "result": self.result,
            "from": {"version": self.from_version, "sha256": self.from_sha256},
            "to": {"version": self.to_version, "sha256": self.to_sha256},
            "running": {"version": self.running_version, "sha256": self.running_sha256},
            "reason": self.reason,
            "refusals": [r.as_json() for r in self.refusals],
            "stalled": self.stalled,
            "time_unix_s": self.time_unix_s,
        }
