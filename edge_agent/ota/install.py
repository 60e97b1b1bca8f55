"""The installer: runs the install state machine (edge_agent.ota.state) over the A/B slots.

Owns running the machine: save the install record before each action (`record`: temp, fsync,
rename, fsync the directory), run the action (`install_actions`), follow the one table (`state`),
emit the events, finish a result; and `resume()` after a restart, from the saved record. The slots'
files are `slots`'; the marks are `bootstate`'s; the preconditions are pure (`preconditions`).

Use (the agent's integration, one process, single-threaded per state directory):

    installer = Installer(state_dir, configured=config.software, on_event=queue_report)
    installer.resume()                          # once at start-up, before the first check-in
    installer.offer(artifact, conditions, terms)  # for each verified artifact; returns the result
    installer.inventory()                       # the check-in's software list

Both `offer` and `resume` return the last event and never raise for an install that fails: the
result says so. They raise InstallerBusy while another process holds the state directory's lock,
and OSError only when `<state_dir>/ota` cannot even be created or locked.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from contract.software import EcuSoftware
from edge_agent.ota import bootstate
from edge_agent.ota.artifact import Manifest, VerifiedArtifact
from edge_agent.ota.events import InstallEvent
from edge_agent.ota.health import HealthCheck, default_health_check
from edge_agent.ota.install_actions import Actions, Stalled
from edge_agent.ota.install_status import EcuStatus, InstallerStatus, read_status
from edge_agent.ota.inventory import running_inventory
from edge_agent.ota.preconditions import OfferTerms, Refusal, Thresholds, VehicleConditions
from edge_agent.ota.record import InstallerBusy, InstallRecord
from edge_agent.ota.slots import Slots, SlotsCorrupt
from edge_agent.ota.state import (
    MAX_STATE_SAVES,
    TERMINAL,
    UNCAPPED,
    Event,
    Job,
    JobError,
    State,
    next_state,
)

log = logging.getLogger(__name__)

DEFAULT_BOOT_TRIES = 3
BUSY = "busy"

__all__ = ["EcuStatus", "Installer", "InstallerBusy", "InstallerStatus"]


class Installer:
    """The A/B installer of one vehicle's agent, over `<state_dir>/ota`.

    `configured`: the ECUs' software from the agent's configuration (an ECU's first slot is seeded
    from it). `boot_tries`: how many starts a tentative slot gets before the bootloader falls back.
    `health_check`: replaces the default; `ecu_checks`: extra checks per ECU, run after it.
    `on_event`: called with each InstallEvent (an exception there is logged, never stops the
    install). `probe`: called with "saved:<state>", "acted:<state>" and "write:chunk" at those
    points (the power-cut tests stop the process there); `clock`: Unix seconds for the events.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        configured: Iterable[EcuSoftware] = (),
        thresholds: Thresholds | None = None,
        boot_tries: int = DEFAULT_BOOT_TRIES,
        health_check: HealthCheck = default_health_check,
        ecu_checks: Mapping[str, HealthCheck] | None = None,
        on_event: Callable[[InstallEvent], None] | None = None,
        probe: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if boot_tries < 1:
            raise ValueError("boot_tries must be >= 1")
        self.state_dir = state_dir
        self.dir = state_dir / "ota"
        self.slots = Slots(state_dir)
        self.record = InstallRecord(self.dir)
        self.configured = tuple(configured)
        self._on_event = on_event
        self._probe = probe or (lambda point: None)
        self._clock = clock
        self.actions = Actions(
            self.slots,
            state_dir,
            {e.ecu: e for e in self.configured},
            thresholds or Thresholds(),
            boot_tries,
            health_check,
            dict(ecu_checks or {}),
            self._probe,
        )

    # -- the API ---------------------------------------------------------------------------------
    def offer(
        self, artifact: VerifiedArtifact, conditions: VehicleConditions, terms: OfferTerms | None = None
    ) -> InstallEvent:
        """Install `artifact` now if the preconditions hold; returns the last event (its result:
        installed, rolled_back, failed or refused; or stalled, see InstallEvent). An install
        already under way refuses it (precondition "busy"). Raises InstallerBusy, OSError."""
        terms = terms or OfferTerms()
        with self.record.locked():
            pending = self.record.load_or_recover()
            job = Job(
                install_id=terms.offer_id or uuid.uuid4().hex,
                state=State.PRECONDITIONS,
                artifact_path=str(artifact.path),
                ecu=artifact.ecu,
                version=artifact.version,
                sha256=artifact.sha256,
                length_bytes=artifact.length_bytes,
                hardware_id=artifact.hardware_id,
            )
            if pending is not None:
                busy = f"install {pending.install_id} of {pending.ecu} is at {pending.state}"
                job = replace(job, state=State.REFUSED, reason=busy, refusals=((BUSY, busy),))
                event = self._event(job)
                self._emit(event)
                return event
            self._settle_all(except_ecu=None)
            return self._run(job, None, conditions, terms)

    def resume(self) -> InstallEvent | None:
        """After a start: settle any ECU left on an unconfirmed tentative slot, and carry on with
        the saved install (event RESTARTED). Returns its last event, None when none was saved.
        Raises InstallerBusy, OSError."""
        with self.record.locked():
            job = self.record.load_or_recover()
            self._settle_all(except_ecu=None if job is None else job.ecu)
            if job is None:
                return None
            if job.state not in TERMINAL:
                job = replace(job, reason=f"interrupted by a restart in {job.state}")
            return self._run(job, Event.RESTARTED, None, None)

    def status(self) -> InstallerStatus:
        """The saved install (if any) and each ECU's slots, read from disk; never raises."""
        try:
            job: Job | None = self.record.load()
        except (JobError, OSError):
            job = None
        return read_status(self.slots, job)

    def inventory(self) -> tuple[EcuSoftware, ...]:
        """The check-in's software list: each ECU's running slot, else its configured entry."""
        running: dict[str, Manifest] = {}
        unknown = []
        for ecu in self.slots.ecus():
            slots = self.slots.ecu(ecu)
            try:
                manifest = slots.manifest(slots.read_boot().booted)
            except OSError as exc:
                log.error("ECU %s: %s; left out of the inventory", ecu, exc)
                unknown.append(ecu)
                continue
            if manifest is None:
                unknown.append(ecu)
            else:
                running[ecu] = manifest
        return running_inventory(self.configured, running, unknown)

    # -- the machine -----------------------------------------------------------------------------
    def _run(
        self,
        job: Job,
        event: Event | None,
        conditions: VehicleConditions | None,
        terms: OfferTerms | None,
    ) -> InstallEvent:
        state = job.state if event is None else next_state(job.state, event)
        while True:
            if state not in UNCAPPED and job.saves >= MAX_STATE_SAVES:
                job = replace(job, reason=f"state loop detected: {job.saves} saves of this install")
                state = next_state(state, Event.LOOP_DETECTED)
                continue
            job = replace(job, state=state, saves=job.saves + 1)
            try:
                self.record.save(job)
            except OSError as exc:
                if job.saves == 1:  # nothing was ever saved, or done: there is nothing to resume
                    failed = replace(job, state=State.FAILED, reason=f"cannot save the install state: {exc}")
                    event_out = self._event(failed)
                    self._emit(event_out)
                    return event_out
                return self._stalled(job, f"cannot save the install state: {exc}")
            event_out = self._event(job)
            self._emit(event_out)
            self._probe(f"saved:{state}")
            if state in TERMINAL:
                self._finish(job)
                return event_out
            try:
                posted, job = self.actions.act(job, conditions, terms)
            except Stalled as exc:
                return self._stalled(job, str(exc))
            self._probe(f"acted:{state}")
            state = next_state(state, posted)

    def _finish(self, job: Job) -> None:
        """A result was reported: leave the target slot clean, then forget the install."""
        try:
            self.actions.clean_target(job)
            self.record.remove()
        except OSError as exc:  # the record stays; the next resume() repeats the result and this
            log.error("install %s: cannot finish (%s); retried at the next resume", job.install_id, exc)

    def _settle_all(self, except_ecu: str | None) -> None:
        """No install confirms a tentative slot of these ECUs: fall back from it."""
        for ecu in self.slots.ecus():
            if ecu == except_ecu:
                continue
            slots = self.slots.ecu(ecu)
            try:
                state = slots.read_boot()
                settled = bootstate.settle(state)
                if settled != state:
                    log.warning("ECU %s: unconfirmed tentative slot with no install; falling back", ecu)
                    slots.write_boot(settled)
            except (OSError, bootstate.BootError) as exc:
                log.error("ECU %s: cannot settle its slots: %s", ecu, exc)

    # -- events ----------------------------------------------------------------------------------
    def _event(self, job: Job, *, stalled: bool = False) -> InstallEvent:
        running = self._running(job.ecu)
        return InstallEvent(
            install_id=job.install_id,
            ecu=job.ecu,
            state=job.state,
            from_version=job.from_version,
            from_sha256=job.from_sha256,
            to_version=job.version,
            to_sha256=job.sha256,
            running_version="" if running is None else running.version,
            running_sha256="" if running is None else running.sha256,
            time_unix_s=self._clock(),
            reason=job.reason,
            refusals=tuple(Refusal(p, d) for p, d in job.refusals),
            stalled=stalled,
        )

    def _running(self, ecu: str) -> Manifest | None:
        slots = self.slots.ecu(ecu)
        if not slots.exists():
            entry = self.actions.configured.get(ecu)
            return None if entry is None else Manifest(ecu, entry.version, "", 0, entry.hardware_id)
        try:
            return slots.manifest(slots.read_boot().booted)
        except (OSError, SlotsCorrupt):
            return None

    def _stalled(self, job: Job, reason: str) -> InstallEvent:
        log.error("install %s stalled at %s: %s", job.install_id, job.state, reason)
        event = self._event(replace(job, reason=reason), stalled=True)
        self._emit(event)
        return event

    def _emit(self, event: InstallEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:  # reporting must not break the install; its state is saved already
            log.exception("install event handler failed for %s at %s", event.install_id, event.state)
