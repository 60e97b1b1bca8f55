"""The in-car agent's sender: drains the spool over the MQTT link, fairly and at least once.

Owns: choosing which queued entries go out next, the in-flight bookkeeping, and telling the spool
to forget each entry the broker acknowledged (PUBACK); the spool hides it from reads at once and
deletes it on disk in its next commit. It never decides what is queued (the
agent's loop does) nor how the connection is kept (`edge_agent.link`).

Fairness: at each (re)connection the queue is split at its newest committed entry. Entries after it
are "live", the ones before are the "backlog". The sender alternates between the oldest unsent live
entry and the oldest unsent backlog entry (`interleave`), so the backlog goes out in order while
fresh data keeps flowing. An entry leaves the queue only when the broker acknowledged it. Entries in
flight are protected from the spool's full policy (`Spool.protected`); when the spool's ids may have
changed (`Spool.generation`: a corrupt file replaced, a file reopened) or the link reconnected
(`epoch`), the sender starts over: what was in flight is re-sent with the same seq and bytes, and
ingest deduplicates.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from contract import topics
from edge_agent.spool import Entry
from edge_agent.spool_router import Spool


class SenderLink(Protocol):
    """What the sender needs of a link (`edge_agent.link.AgentLink`)."""

    connected: threading.Event
    epoch: int

    def publish(self, topic: str, payload: bytes) -> tuple[int, int] | None: ...

    def take_acks(self) -> list[tuple[int, int]]: ...


@dataclass
class SendStats:
    """Telemetry the broker acknowledged (DTC messages are sent too, but not counted here)."""

    batches_acked: int = 0
    batches_acked_from_memory: int = 0  # published while held in memory (the disk took no writes)
    samples_acked: int = 0
    telemetry_bytes_acked: int = 0


@dataclass(frozen=True)
class _Inflight:
    entry_id: int
    kind: str
    samples: int
    size_bytes: int
    from_memory: bool


class Sender:
    """Used from the agent loop's thread only (as the spool is). Call `pump` often."""

    def __init__(self, queue: Spool, link: SenderLink, vehicle_id: str, max_inflight: int) -> None:
        self.queue = queue
        self.link = link
        self.vehicle_id = vehicle_id
        self.max_inflight = max_inflight
        self.stats = SendStats()
        self._generation = queue.generation
        self._epoch = -1  # no connection seen yet: the first pump while connected starts an epoch
        self._inflight: dict[int, _Inflight] = {}  # by MQTT message id of the current epoch
        self._live_floor = 0  # the newest committed id when this epoch started
        self._live_cursor = 0
        self._backlog_cursor = 0
        self._backlog_done = True
        self._turn = 0

    @property
    def in_flight(self) -> int:
        """Entries published and not yet acknowledged on this connection."""
        return len(self._inflight)

    def follow_spool(self) -> None:
        """Start over when the spool's ids may have changed (re-read the queue at the next pump)."""
        if self.queue.generation == self._generation:
            return
        self._generation = self.queue.generation
        self._epoch = -1
        self._inflight.clear()
        self.queue.protected.clear()

    def pump(self) -> None:
        """Account acknowledgements and publish queued entries up to the in-flight limit."""
        self.follow_spool()
        self._take_acks()
        if not self.link.connected.is_set():
            return
        if self.link.epoch != self._epoch:
            self._new_epoch(self.link.epoch)
        room = self.max_inflight - len(self._inflight)
        if room <= 0:
            return
        live = (
            self.queue.read(self._live_cursor, None, room)
            if self.queue.committed_max_id > self._live_cursor
            else []
        )
        backlog = [] if self._backlog_done else self.queue.read(self._backlog_cursor, self._live_floor, room)
        if len(backlog) < room:
            self._backlog_done = True
        for entry, is_live in interleave(live, backlog, self._turn)[:room]:
            sent = self.link.publish(topics.topic_for(self.vehicle_id, entry.kind), entry.payload)
            if sent is None:  # the connection dropped meanwhile: read the backlog again next time
                self._backlog_done = False
                return
            self._inflight[sent[1]] = _Inflight(
                entry.id, entry.kind, entry.samples, len(entry.payload), entry.in_memory
            )
            self.queue.protected.add(entry.id)
            if is_live:
                self._live_cursor = entry.id
            else:
                self._backlog_cursor = entry.id
            self._turn += 1

    def _take_acks(self) -> None:
        """Forget acknowledged entries now, so that a reconnect does not send them again."""
        acked: list[int] = []
        for epoch, mid in self.link.take_acks():
            done = self._inflight.pop(mid, None) if epoch == self._epoch else None
            if done is None:  # an ack of an earlier connection: that entry is re-sent anyway
                continue
            acked.append(done.entry_id)
            if done.kind == topics.TELEMETRY:
                self.stats.batches_acked += 1
                self.stats.batches_acked_from_memory += done.from_memory
                self.stats.samples_acked += done.samples
                self.stats.telemetry_bytes_acked += done.size_bytes
        self.queue.remove(acked)

    def _new_epoch(self, epoch: int) -> None:
        """A new connection: forget what was in flight and split the queue into backlog and live."""
        self._epoch = epoch
        self._inflight.clear()
        self.queue.protected.clear()
        self._live_floor = self._live_cursor = self.queue.committed_max_id
        self._backlog_cursor = 0
        self._backlog_done = False


def interleave(live: list[Entry], backlog: list[Entry], turn: int) -> list[tuple[Entry, bool]]:
    """Alternate live and backlog entries (each list keeps its order), live first when `turn` is
    even; once one list runs out the other follows. Returns (entry, is_live) pairs."""
    out: list[tuple[Entry, bool]] = []
    li, bi = 0, 0
    prefer_live = turn % 2 == 0
    while li < len(live) or bi < len(backlog):
        if (prefer_live and li < len(live)) or bi >= len(backlog):
            out.append((live[li], True))
            li += 1
        else:
            out.append((backlog[bi], False))
            bi += 1
        prefer_live = not prefer_live
    return out
