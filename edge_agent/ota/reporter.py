"""Turning an offer's steps into signed reports and handing them to the agent's durable spool.

Owns: numbering (`ReportCounter`, on disk), building (`build_report`), signing (`ReportSigner`)
and queuing one report, then remembering in the offer's record that its state was reported (so a
restart does not send a progress report twice; a report whose queuing was not confirmed is sent
again). The spool itself is the agent's (`sink`: returns True once the report is committed to it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from contract.update import Software
from edge_agent.ota.offer_store import OfferRecord, OfferStore
from edge_agent.ota.report import ReportCounter, ReportSigner, build_report

log = logging.getLogger(__name__)


class ReportNotQueued(RuntimeError):
    """The spool did not confirm the report (the agent is stopping): the step is tried again."""


class Reporter:
    def __init__(
        self,
        vehicle_id: str,
        signer: ReportSigner,
        counter_path: Path,
        store: OfferStore,
        sink: Callable[[bytes], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.signer = signer
        self.counter = ReportCounter(counter_path)
        self.store = store
        self.sink = sink
        self.clock = clock
        self.queued = 0

    def send(
        self,
        record: OfferRecord,
        state: str,
        *,
        reason: str | None = None,
        detail: str = "",
        after: Software | None = None,
        remember: bool = True,
    ) -> OfferRecord:
        """Queue the report of `state` for `record`; returns the record as saved (with `state` among
        `reported` when `remember`). Raises ReportNotQueued, OSError (the counter or the record
        cannot be written)."""
        artifact = record.artifact or {}
        report = build_report(
            record.offer,
            vehicle_id=self.vehicle_id,
            seq=self.counter.next_seq(record.offer_id),
            ts_us=int(self.clock() * 1e6),
            state=state,
            before=record.before,
            after=after or record.before,
            target_sha256=artifact.get("sha256"),
            reason=reason,
            detail=detail,
        )
        if not self.sink(self.signer.sign(report)):
            raise ReportNotQueued(f"report {state} of {record.offer_id} was not queued")
        self.queued += 1
        log.info("offer %s: report %s%s queued", record.offer_id, state, f" ({reason})" if reason else "")
        if remember and state not in record.reported:
            return self.store.update(record, reported=(*record.reported, state))
        return record

    def forget(self, offer_id: str) -> None:
        """The offer is finished: drop its counter. Raises OSError."""
        self.counter.forget(offer_id)
