"""The agent's OTA wiring: commands from the link to the OTA worker, reports from it into the spool.

Owns, for `edge_agent.agent`: the installer (always: the check-in's software comes from its slots),
the OTA client when `[ota]` is configured and its report key and trusted root are usable (else OTA
is off and every offer is refused with a logged reason), the command dispatch (`take`: parse, count,
log what is refused, hand offers and consents to the worker), the live conditions
(`observe`), and the hand-off of reports: the worker's `sink` waits until the agent loop has put
the report into its durable spool (kind `update`, PRIORITY_REPORT: dropped last) and committed it
(`drain`), so a report survives a restart and a broker outage once the step after it runs.
Before the loop runs (start-up) and after it (shutdown), reports go into the spool directly.
The offers themselves are `edge_agent.ota.client`'s; docs/ota.md, section 5.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edge_agent.collector import PRIORITY_DTC
from edge_agent.commands import NOT_HANDLED, CommandError, parse_command
from edge_agent.config import AgentConfig
from edge_agent.ota.conditions import ConditionTracker
from edge_agent.ota.install import Installer
from edge_agent.ota.preconditions import Thresholds
from edge_agent.ratelimit import LogThrottle

if TYPE_CHECKING:
    from edge_agent.ota.client import OtaClient

log = logging.getLogger(__name__)
PRIORITY_REPORT = PRIORITY_DTC + 1  # update reports: dropped after everything else
REPORT_QUEUE_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclass
class CommandStats:
    commands_received: int = 0
    commands_rejected: int = 0  # not a valid command (CommandError)
    commands_not_handled: int = 0  # valid, for something this agent does not have (an in-car notice)
    last_command_error: str = ""
    offers_refused: int = 0  # offers and consents while OTA is off


class AgentOta:
    def __init__(
        self,
        config: AgentConfig,
        available_paths: Collection[str],
        put: Callable[[bytes, int], None],
        commit: Callable[[], None],
        *,
        probe: Callable[[str], None] | None = None,
    ) -> None:
        """`put(payload, priority)` queues a report in the spool, `commit()` makes it durable."""
        self._put, self._commit = put, commit
        self.stats = CommandStats()
        self._throttle = LogThrottle(log)
        self._inbox: deque[tuple[bytes, threading.Event]] = deque()
        self._threaded = False
        self.software_changed = threading.Event()
        ota = config.ota
        thresholds = (
            Thresholds(ota.min_parked_s, ota.min_battery_v, ota.min_traction_soc_pct) if ota else Thresholds()
        )
        self.installer = Installer(
            config.state_dir,
            configured=config.software,
            thresholds=thresholds,
            on_event=self._on_event,
            probe=probe,
        )
        self.tracker = ConditionTracker(available_paths if ota else ())
        self.client: OtaClient | None = None
        self.disabled_reason = "" if ota else "no [ota] section in the configuration"
        if ota is None:
            return
        # Only now: python-tuf, httpx and cryptography cost memory a car without OTA does not spend.
        from edge_agent.ota.client import ClientSettings, OtaClient
        from edge_agent.ota.offer_store import OfferStore
        from edge_agent.ota.report import ReportKeyError, ReportSigner
        from edge_agent.ota.reporter import Reporter

        try:
            signer = ReportSigner.from_file(ota.report_key)
            ota.trusted_root.read_bytes()
        except (ReportKeyError, OSError) as exc:
            self.disabled_reason = str(exc) if isinstance(exc, ReportKeyError) else f"trusted root: {exc}"
            log.error("OTA is off: %s", self.disabled_reason)
            return
        ota_dir = config.state_dir / "ota"
        reporter = Reporter(
            config.vehicle_id, signer, ota_dir / "report_seq.json", OfferStore(ota_dir / "offers"), self._sink
        )
        settings = ClientSettings(
            ota.trusted_root,
            config.state_dir,
            ota.check_interval_s,
            ota.give_up_after_s,
            ota.download_timeout_s,
        )
        self.client = OtaClient(
            settings,
            self.installer,
            reporter,
            self.tracker,
            self.installer.inventory,
            self.software_changed.set,
        )

    @property
    def paths(self) -> tuple[str, ...]:
        """The signals the preconditions need, beside the campaign's (read only with OTA on)."""
        return self.tracker.paths if self.client is not None else ()

    def observe(self, ts_ns: int, values: Mapping[str, float]) -> None:
        if self.client is not None:
            self.tracker.observe(ts_ns, values)

    # -- start-up, loop, shutdown (the agent loop's thread) -------------------------------------------
    def resume(self) -> None:
        """At start-up: the installer's resume (its events reported straight into the spool) and
        the saved offers re-taken."""
        if self.client is not None:
            self.client.resume()
        else:
            try:
                self.installer.resume()
            except OSError as exc:  # InstallerBusy included
                log.error("cannot resume the OTA installer: %s", exc)

    def start(self) -> None:
        if self.client is not None:
            self._threaded = True
            self.client.start()

    def stop(self) -> None:
        """Stop the worker, taking its reports meanwhile (it finishes the step it is in)."""
        if self.client is None or not self.client.alive:
            self.drain()
            return
        self.client.request_stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.client.alive and time.monotonic() < deadline:
            self.drain()
            self.client.join(0.05)
        if self.client.alive:
            log.warning("the OTA worker is still busy; its step resumes at the next start")
        self.drain()

    def take(self, payloads: list[bytes]) -> None:
        """Dispatch commands from the command topic; a bad one is logged and counted, never raised."""
        for payload in payloads:
            self.stats.commands_received += 1
            try:
                command = parse_command(payload)
            except CommandError as exc:
                if exc.reason == NOT_HANDLED:
                    self.stats.commands_not_handled += 1
                    self._throttle.log(logging.INFO, exc.reason, "command not handled: %s", exc.detail)
                    continue
                self.stats.commands_rejected += 1
                self.stats.last_command_error = str(exc)[:200]
                self._throttle.log(logging.WARNING, exc.reason, "ignored a command: %s", exc)
                continue
            if self.client is None:
                self.stats.offers_refused += 1
                log.warning(
                    "refused %s %s: OTA is off (%s)",
                    type(command).__name__,
                    command.offer_id,
                    self.disabled_reason,
                )
                continue
            self.client.submit(command)

    def drain(self) -> None:
        """Put the reports the worker handed over into the spool, commit, and tell the worker."""
        taken = []
        while self._inbox:
            taken.append(self._inbox.popleft())
        if not taken:
            return
        for payload, _ in taken:
            self._put(payload, PRIORITY_REPORT)
        self._commit()
        for _, done in taken:
            done.set()

    def status(self) -> dict[str, Any]:
        """For the stats file."""
        doc: dict[str, Any] = {"enabled": self.client is not None, "disabled_reason": self.disabled_reason}
        doc.update(asdict(self.stats))
        if self.client is not None:
            doc.update(asdict(self.client.stats))
            doc["pending_offers"] = len(self.client.records)
            doc["reports_queued"] = self.client.reporter.queued
        return doc

    # -- the worker's side ---------------------------------------------------------------------------
    def _sink(self, payload: bytes) -> bool:
        if not self._threaded:  # start-up: on the agent's thread, before the loop runs
            self._put(payload, PRIORITY_REPORT)
            self._commit()
            return True
        done = threading.Event()
        self._inbox.append((payload, done))
        return done.wait(REPORT_QUEUE_TIMEOUT_S)

    def _on_event(self, event: Any) -> None:
        if self.client is not None:
            self.client.on_event(event)
