"""The agent's OTA client: offers and consents in, verify, install, signed reports out.

Owns the worker: one thread that takes the commands the agent hands it (`submit`, from the agent
loop; never on the MQTT callback thread), holds the pending offers (at most one per ECU; a repeated
offer id is ignored; a newer offer for an ECU gives up the one waiting), and steps each offer when
it is due: `received` -> verify with python-tuf (`verify_update`, the agent's trusted root, the
offer's repository) -> `verified` -> `Installer.offer` with the vehicle's live conditions. When a
precondition does not hold it waits `check_interval_s` and tries again, reporting what it waits
for whenever that changes; it gives up (a `failed` report) only for the reasons of
`edge_agent.ota.policy`. Every install event becomes a report (`policy.report_of`, `reporter`).
At start-up (`resume`, on the agent's thread before the worker runs) it lets the installer finish
an install a restart interrupted, and re-takes the offers saved in the state directory.
The decisions are `policy`'s, the records `offer_store`'s; docs/ota.md, section 5.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contract.software import EcuSoftware
from contract.update import Software, UpdateOffer
from edge_agent.commands import Consent
from edge_agent.ota import policy
from edge_agent.ota.artifact import VerifiedArtifact
from edge_agent.ota.conditions import ConditionTracker, local_time_in
from edge_agent.ota.events import InstallEvent
from edge_agent.ota.fetcher import ResumableFetcher
from edge_agent.ota.install import Installer, InstallerBusy
from edge_agent.ota.offer_store import INSTALLING, RECEIVED, VERIFIED, OfferRecord, as_dict
from edge_agent.ota.reporter import Reporter, ReportNotQueued
from edge_agent.ota.state import State
from edge_agent.ota.verify import (
    UpdateRejected,
    UpdateUnavailable,
    VerifierConfig,
    hardware_id_of,
    verify_update,
)

log = logging.getLogger(__name__)
FINAL = ("committed", "rolled_back", "failed")


@dataclass(frozen=True)
class ClientSettings:
    trusted_root: Path
    state_dir: Path
    check_interval_s: float = 60.0
    give_up_after_s: float = 30 * 86400.0
    timeout_s: float = 30.0


@dataclass
class OtaStats:
    offers_received: int = 0
    offers_ignored: int = 0  # a repeated offer id, or a consent for no pending offer
    offers_given_up: int = 0
    installs_finished: int = 0
    worker_errors: int = 0


class OtaClient:
    def __init__(
        self,
        settings: ClientSettings,
        installer: Installer,
        reporter: Reporter,
        tracker: ConditionTracker,
        software: Callable[[], tuple[EcuSoftware, ...]],
        on_software_changed: Callable[[], None],
        *,
        fetcher: ResumableFetcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.installer = installer
        self.reporter = reporter
        self.store = reporter.store
        self.tracker = tracker
        self._software = software
        self._software_changed = on_software_changed
        self._fetcher = fetcher
        self._clock = clock
        self.stats = OtaStats()
        self._inbox: queue.SimpleQueue[UpdateOffer | Consent] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent-ota", daemon=True)
        self.records: dict[str, OfferRecord] = {r.offer_id: r for r in self.store.load()}
        self._due: dict[str, float] = dict.fromkeys(self.records, 0.0)

    # -- the agent's side ---------------------------------------------------------------------------
    def submit(self, command: UpdateOffer | Consent) -> None:
        """Hand a command to the worker (thread-safe, never blocks)."""
        self._inbox.put(command)

    def resume(self) -> None:
        """At start-up, before `start`: finish an interrupted install, then settle the offers whose
        install ended while their result was not reported."""
        try:
            self.installer.resume()
        except (InstallerBusy, OSError) as exc:
            log.error("cannot resume the OTA installer: %s", exc)
        for record in list(self.records.values()):
            self._guarded(record.offer_id, functools.partial(self._settle_installing, record))

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def on_event(self, event: InstallEvent) -> None:
        """The installer's events (`Installer(on_event=...)`): each reported step becomes a report;
        a result finishes the offer. Raises ReportNotQueued, OSError (the installer logs them)."""
        record = self.records.get(event.install_id)
        mapped = policy.report_of(event)
        if record is None or mapped is None:
            if record is None and mapped is not None:
                log.warning("install %s has no OTA offer on record; not reported", event.install_id)
            return
        state, reason = mapped
        if state not in record.reported:
            after = Software(event.running_version or record.before.version, event.running_sha256 or None)
            record = self.reporter.send(record, state, reason=reason, detail=event.reason, after=after)
            self.records[record.offer_id] = record
        if state in FINAL:
            self.stats.installs_finished += 1
            self._finish(record)

    # -- the worker ----------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            wait_s = min([self.settings.check_interval_s, *(d - now for d in self._due.values())])
            try:
                command = self._inbox.get(timeout=max(0.0, wait_s))
            except queue.Empty:
                command = None
            if command is not None:
                self._guarded("command", functools.partial(self._take, command))
            now = time.monotonic()
            for offer_id, due in sorted(self._due.items(), key=lambda item: item[1]):
                if self._stop.is_set() or due > now or offer_id not in self.records:
                    continue
                self._guarded(offer_id, functools.partial(self._step, self.records[offer_id]))
                if offer_id in self._due:  # still pending: next try one interval after this one
                    self._due[offer_id] = time.monotonic() + self.settings.check_interval_s

    def _guarded(self, what: str, step: Callable[[], None]) -> None:
        """One step; a failure is logged and counted, and the offer is tried again later."""
        try:
            step()
        except ReportNotQueued as exc:
            log.warning("%s: %s; tried again later", what, exc)
        except Exception:  # the worker must outlive any one offer's trouble
            self.stats.worker_errors += 1
            log.exception("OTA step for %s failed; tried again later", what)

    def _take(self, command: UpdateOffer | Consent) -> None:
        if isinstance(command, Consent):
            record = self.records.get(command.offer_id)
            if record is None:
                self.stats.offers_ignored += 1
                log.warning("consent for offer %s, which is not pending; ignored", command.offer_id)
                return
            self.records[record.offer_id] = self.store.update(record, consent=command.given)
            self._due[record.offer_id] = 0.0
            log.info(
                "offer %s: the owner %s consent", record.offer_id, "gave" if command.given else "refused"
            )
            return
        offer = command
        if offer.offer_id in self.records or offer.offer_id in self.store.done_ids():
            self.stats.offers_ignored += 1
            log.info("offer %s was received before; ignored", offer.offer_id)
            return
        self.stats.offers_received += 1
        for older in [r for r in self.records.values() if r.offer.ecu == offer.ecu]:
            self._give_up(older, policy.SUPERSEDED, f"offer {offer.offer_id} replaces it")
        record = OfferRecord(offer, int(self._clock() * 1e6), self._running(offer.ecu))
        self.store.save(record)
        self.records[offer.offer_id] = record
        self._due[offer.offer_id] = 0.0
        log.info("offer %s: %s %s for %s", offer.offer_id, offer.urgency, offer.version, offer.ecu)
        window = offer.maintenance_window
        if window is not None and local_time_in(window.timezone, self._clock()) is None:
            self._give_up(record, policy.BAD_WINDOW, f"unknown time zone {window.timezone!r}")

    def _step(self, record: OfferRecord) -> None:
        now_us = int(self._clock() * 1e6)
        if record.phase == INSTALLING:
            self._settle_installing(record)
            return
        if policy.expired(record.received_at_us, now_us, self.settings.give_up_after_s):
            self._give_up(record, policy.EXPIRED, f"not installed within {self.settings.give_up_after_s:g} s")
            return
        if record.phase == RECEIVED:
            verified = self._verify(record)
            if verified is None:
                return
            record = verified
        self._install(record, now_us)

    def _verify(self, record: OfferRecord) -> OfferRecord | None:
        if "downloading" not in record.reported:
            record = self.reporter.send(record, "downloading")
            self.records[record.offer_id] = record
        offer, settings = record.offer, self.settings
        config = VerifierConfig(
            offer.repository_url,
            settings.trusted_root,
            settings.state_dir / "ota" / "tuf",
            settings.state_dir / "ota" / "downloads",
            settings.timeout_s,
        )
        try:
            hardware_id = hardware_id_of(self._software(), offer.ecu)
            target = verify_update(
                config,
                target=offer.target,
                ecu=offer.ecu,
                version=offer.version,
                hardware_id=hardware_id,
                fetcher=self._fetcher,
            )
        except UpdateRejected as exc:
            self._give_up(record, exc.reason, exc.detail)
            return None
        except (UpdateUnavailable, OSError) as exc:
            log.warning("offer %s: cannot fetch the update yet (%s); retrying", offer.offer_id, exc)
            return None
        record = self.store.update(record, phase=VERIFIED, artifact=as_dict(target))
        record = self.reporter.send(record, "verified")
        self.records[record.offer_id] = record
        return record

    def _install(self, record: OfferRecord, now_us: int) -> None:
        offer, art = record.offer, record.artifact or {}
        artifact = VerifiedArtifact(
            Path(art["path"]),
            offer.ecu,
            offer.version,
            art["sha256"],
            int(art["length_bytes"]),
            art["hardware_id"],
        )
        window = offer.maintenance_window
        local = None if window is None else local_time_in(window.timezone, now_us / 1e6)
        conditions = self.tracker.snapshot(
            time.time_ns(), local_time=local, consent_given=record.consent is True
        )
        record = self.store.update(record, phase=INSTALLING)
        self.records[record.offer_id] = record
        try:
            event = self.installer.offer(artifact, conditions, policy.terms_of(offer, now_us))
        except InstallerBusy as exc:
            log.warning("offer %s: installer busy (%s); retrying", offer.offer_id, exc)
            self.records[record.offer_id] = self.store.update(record, phase=VERIFIED)
            return
        if event.state is not State.REFUSED:
            self._settle_installing(self.records.get(record.offer_id, record))
            return
        outcome = policy.after_refusal(event.refusals)
        record = self.store.update(record, phase=VERIFIED)
        self.records[record.offer_id] = record
        if outcome.give_up:
            self._give_up(record, outcome.reason, event.reason)
        elif outcome.waiting_for != record.waiting_for:
            detail = policy.waiting_detail(event.refusals)
            log.info("offer %s: %s", offer.offer_id, detail)
            record = self.reporter.send(record, "verified", detail=detail, remember=False)
            self.records[record.offer_id] = self.store.update(record, waiting_for=outcome.waiting_for)

    def _settle_installing(self, record: OfferRecord) -> None:
        """An offer left `installing` with no install under way: its result was not reported (the
        agent stopped meanwhile). Report it from what runs now."""
        if record.offer_id not in self.records or record.phase != INSTALLING:
            return
        if self.installer.status().state is not None:
            return  # the installer still holds it: resume() finishes it
        running = self._running(record.offer.ecu)
        if running.version == record.offer.version:
            if "committed" not in record.reported:
                record = self.reporter.send(record, "committed", after=running)
            self._finish(record)
        else:
            self._give_up(record, policy.INTERRUPTED, "the install ended without a reported result")

    def _give_up(self, record: OfferRecord, reason: str, detail: str) -> None:
        log.warning("offer %s given up: %s (%s)", record.offer_id, reason, detail)
        self.stats.offers_given_up += 1
        record = self.reporter.send(record, "failed", reason=reason, detail=detail)
        self._finish(record)

    def _finish(self, record: OfferRecord) -> None:
        self.store.finish(record.offer_id)
        self.reporter.forget(record.offer_id)
        self.records.pop(record.offer_id, None)
        self._due.pop(record.offer_id, None)
        path = (record.artifact or {}).get("path")
        if path and not any((r.artifact or {}).get("path") == path for r in self.records.values()):
            Path(path).unlink(missing_ok=True)
        self._software_changed()

    def _running(self, ecu: str) -> Software:
        """What the ECU runs now: its booted slot's version and SHA-256, else its configured entry."""
        status = self.installer.status().ecu_status(ecu)
        if status is not None and status.running is not None:
            return Software(status.running.version, status.running.sha256 or None)
        entry = next((e for e in self._software() if e.ecu == ecu), None)
        return Software(entry.version if entry else "unknown", None)
