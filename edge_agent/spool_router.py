"""The queue the agent uses: the disk queue while the disk takes writes, memory while it does not.

Owns: routing each flush's writes, the state reported in the check-in (`ok`; `disk_full`: the file
is open but takes no writes, or memory still holds data to spill; `memory_only`: no usable file),
spilling the memory backlog back to disk in order when space returns, ids and seqs that stay unique
across both, and rate-limited log lines about all this. It never raises for a disk failure.

Writes are collected during a flush and applied by `commit()`: on disk, in as few transactions as
the WAL budget allows, each group atomic (`atomic()`: a cut's batch and its unstaged chunks); if a
transaction fails with a full disk (after one checkpoint to make room), SQLite has rolled it back
and the groups not yet committed go to memory. While memory holds anything, new writes go there
too, so the spill keeps the order. Every `RETRY_INTERVAL_S` the spool tries again: the pending
deletes first, then the memory backlog in id order, a WAL-budget chunk per transaction. An
acknowledged entry that is still on the full disk is remembered (`_pending_removes`), hidden from
`read`, and deleted at the next transaction that succeeds.

Publishing from memory (the decision): entries held in memory are visible to `read` at once, so a
connected car keeps sending while its disk is full. This is sound because
- an entry's seq and bytes are fixed when it is put and never change (a spilled entry keeps its
  id, seq and payload; one acknowledged while in memory is just forgotten and never spilled);
- the seq is covered by the reservation stored in the file (`spool.SEQ_RESERVE`; the spool keeps it
  at least half a reservation ahead of the newest number), so even when the entry dies with the
  process, a restart cannot hand its number to different data. Without any usable file since
  start-up, numbers come from the clock, as for a fresh queue;
- the cost is the one a crash always had: an entry held in memory is lost when the process dies
  unless it was acknowledged, and an acknowledgement not yet deleted on disk is re-sent after a
  restart (ingest deduplicates by (vehicle, seq)).
A cut whose batch would land in memory while its chunks stay on disk is undone (the batch is
discarded before anyone saw it, the chunks stay staged): a crash would otherwise keep both.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from edge_agent.spool import COUNTERS, DiskQueue, Entry
from edge_agent.spool_budget import DEFAULT_MEMORY_MAX_BYTES, SpoolBudget
from edge_agent.spool_errors import ErrorKind, classify
from edge_agent.spool_files import file_bytes
from edge_agent.spool_memory import MemoryQueue
from edge_agent.spool_ops import (
    Group,
    Op,
    Put,
    Stage,
    Unstage,
    apply_to_disk,
    apply_to_memory,
    wal_estimate,
)
from edge_agent.spool_policy import DROP_KEYS, Drop
from edge_agent.spool_report import SpoolReport

log = logging.getLogger(__name__)

RETRY_INTERVAL_S = 5.0
MAX_TXNS_PER_COMMIT = 8  # spill and delete at most this many transactions per flush
T = TypeVar("T")


class Spool:
    """Used from one thread (the agent loop). `protected` holds the ids in flight (never dropped)."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        *,
        memory_max_bytes: int = DEFAULT_MEMORY_MAX_BYTES,
        retry_interval_s: float = RETRY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.max_bytes = path, max_bytes
        self.budget = SpoolBudget.of(max_bytes)  # raises ValueError below the minimum
        self.memory = MemoryQueue(memory_max_bytes)
        self.disk: DiskQueue | None = None
        self.corrupt_files: list[Path] = []
        self.protected: set[int] = set()
        self.generation = 0  # bumped when ids seen before may be gone or renamed: reset the sender
        self.on_drop: Callable[[Drop], None] | None = None
        self.committed_max_id = 0
        self._clock, self._retry_interval_s = clock, retry_interval_s
        self._retry_at = 0.0
        self._disk_ok = False
        self._last_error = ""
        self._groups: list[Group] = []
        self._group: Group | None = None
        self._pending_removes: set[int] = set()
        self._pending_unstage: set[int] = set()
        self._base_counters = dict.fromkeys(COUNTERS, 0)  # as last committed to a file
        self._unsaved = dict.fromkeys(DROP_KEYS, 0)  # memory drops not yet counted in a file
        self._next_seq = time.time_ns() // 1000
        self._next_id = self._next_chunk_id = time.time_ns() // 1000  # only without a file at start
        self._open_disk(first=True)
        self.committed_max_id = self._next_id - 1
        self.report = SpoolReport(path, self.state)

    # -- state --------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        if self.disk is None:
            return "memory_only"
        return "ok" if self._disk_ok and self.memory.empty else "disk_full"

    @property
    def disk_full_events(self) -> int:
        return self.report.disk_full_events

    @property
    def max_entry_bytes(self) -> int:
        return self.budget.max_entry_bytes

    @property
    def counters(self) -> dict[str, int]:
        """The file's counters as last committed, plus the drops in memory not yet written there."""
        return {k: self._base_counters.get(k, 0) + self._unsaved.get(k, 0) for k in COUNTERS}

    @property
    def rows(self) -> int:
        on_disk = self.disk.rows - len(self._pending_removes) if self.disk is not None else 0
        return max(on_disk, 0) + self.memory.rows

    @property
    def bytes_used(self) -> int:
        """Payload bytes held (on disk this includes acknowledged rows a full disk kept)."""
        return (self.disk.bytes_used if self.disk is not None else 0) + self.memory.payload_bytes

    def file_bytes(self) -> int:
        return file_bytes(self.path)

    # -- writing (applied by commit) ----------------------------------------------------------
    def next_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        if self.disk is not None:
            self.disk.note_seq(seq)
        return seq

    def put(self, kind: str, payload: bytes, *, priority: int, samples: int, seq: int = 0) -> None:
        entry = Entry(self._next_id, kind, priority, seq, samples, payload)
        self._next_id += 1
        self._add(Put(entry))

    def stage(self, payload: bytes, samples: int) -> int:
        chunk_id = self._next_chunk_id
        self._next_chunk_id += 1
        self._add(Stage(chunk_id, samples, payload))
        return chunk_id

    def unstage(self, ids: list[int]) -> None:
        if ids:
            self._add(Unstage(tuple(ids)))

    def _add(self, op: Op) -> None:
        if self._group is not None:
            self._group.append(op)
        else:
            self._groups.append([op])

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """The writes inside land in one transaction (or all in memory)."""
        group: Group = []
        self._group = group
        try:
            yield
        finally:
            self._group = None
            if group:
                self._groups.append(group)

    def staged(self) -> list[tuple[int, bytes]]:
        """The staged chunks a cut may merge now, oldest first: those on the side this flush will be
        written to (disk chunks wait while writes go to memory), plus this flush's own."""
        hidden = set(self._pending_unstage)
        pending: list[tuple[int, bytes]] = []
        for group in [*self._groups, self._group or []]:
            for op in group:
                if isinstance(op, Stage):
                    pending.append((op.chunk_id, op.payload))
                elif isinstance(op, Unstage):
                    hidden.update(op.ids)
        held: list[tuple[int, bytes]] = []
        if self.disk is not None and self._disk_ok and self.memory.empty:
            held = self._disk_call(lambda d: d.staged(), [])
        else:
            held = [(cid, payload) for cid, (_, payload) in self.memory.chunks.items()]
        return sorted(c for c in [*held, *pending] if c[0] not in hidden)

    def remove(self, ids: list[int]) -> None:
        """Forget acknowledged entries: at once in memory, at the next transaction on disk."""
        for entry_id in ids:
            self.protected.discard(entry_id)
            if not self.memory.remove(entry_id):
                self._pending_removes.add(entry_id)

    def commit(self) -> None:
        """Apply this flush's writes (disk or memory), retry the disk when due, make them visible."""
        groups, self._groups = self._groups, []
        if self.disk is not None and self._disk_ok and self.memory.empty:
            groups = self._to_disk(groups)
        for group in groups:
            self._to_memory(group)
        if self._due():
            self._recover_disk()
        self.committed_max_id = self._next_id - 1
        self.report.update(self.state, self._last_error, self.memory.max_bytes, self._retry_interval_s)

    # -- disk -----------------------------------------------------------------------------------
    def _open_disk(self, first: bool = False) -> None:
        try:
            disk = DiskQueue(
                self.path,
                self.max_bytes,
                seq_floor=self._next_seq,
                counters=self._base_counters,
                corrupt_files=self.corrupt_files,
            )
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, classify(exc))
            return
        self.disk, self._disk_ok = disk, True
        self._next_seq = max(self._next_seq, disk.next_seq_floor)
        if first:
            self._next_id, self._next_chunk_id = disk.next_id, disk.next_chunk_id
        else:
            self.generation += 1  # the sender re-reads: the file's rows are back
            if (
                self.memory.entries
                and min(self.memory.entries) < disk.next_id
                or (self.memory.chunks and min(self.memory.chunks) < disk.next_chunk_id)
            ):
                self.memory.renumber(disk.next_id, disk.next_chunk_id)
                self.protected.clear()
            self._next_id = max(self._next_id, disk.next_id, max(self.memory.entries, default=0) + 1)
            self._next_chunk_id = max(
                self._next_chunk_id, disk.next_chunk_id, max(self.memory.chunks, default=0) + 1
            )
        self._base_counters = disk.counters

    def _deletes_per_txn(self) -> int:
        return max(8, self.budget.wal_bytes // (8 * self.budget.frame_bytes))

    def _due(self) -> bool:
        if self.disk is None or not self._disk_ok:
            return self._clock() >= self._retry_at
        k = self._deletes_per_txn()
        return not self.memory.empty or len(self._pending_removes) > k or len(self._pending_unstage) > k

    def _to_disk(self, groups: list[Group]) -> list[Group]:
        """Apply `groups` in transactions within half the WAL budget each; returns those that could
        not be applied because the disk failed."""
        i = 0
        while True:
            j, est = i, 0
            while j < len(groups):
                more = wal_estimate(self.budget, groups[j])
                if j > i and est + more > self.budget.wal_bytes // 2:
                    break
                est, j = est + more, j + 1
            if not self._disk_txn(functools.partial(self._apply, groups=groups[i:j]), est):
                return groups[i:]
            i = j
            if i >= len(groups):
                return []

    def _apply(self, disk: DiskQueue, groups: list[Group]) -> None:
        apply_to_disk(disk, groups, frozenset(self.protected))

    def _disk_txn(self, fn: Callable[[DiskQueue], object], est_bytes: int) -> bool:
        """One transaction: pending deletes (a budget's worth), memory drops to count, then `fn`.
        On SQLITE_FULL, one checkpoint and one more try. False when the disk failed."""
        disk = self.disk
        assert disk is not None
        k = self._deletes_per_txn()
        removes, unstages = sorted(self._pending_removes)[:k], sorted(self._pending_unstage)[:k]
        frame = self.budget.frame_bytes
        for attempt in (0, 1):
            try:
                disk.make_wal_room(est_bytes + 2 * frame * (len(removes) + len(unstages)))
                disk.remove(removes)
                disk.unstage(unstages)
                disk.add_counts(self._unsaved)
                disk.note_seq(self._next_seq - 1)
                fn(disk)
                disk.commit()
            except (sqlite3.Error, OSError) as exc:
                kind = classify(exc)
                with contextlib.suppress(sqlite3.Error, OSError):
                    disk.rollback()
                if kind == "full" and attempt == 0 and self._disk_call(lambda d: d.checkpoint(), False):
                    continue
                self._failed(exc, kind)
                return False
            break
        self._pending_removes.difference_update(removes)
        self._pending_unstage.difference_update(unstages)
        self._unsaved = dict.fromkeys(DROP_KEYS, 0)
        self._base_counters = disk.counters
        self._disk_ok = True
        for drop in disk.last_drops:
            self._dropped(drop)
        return True

    def _recover_disk(self) -> None:
        """Open the file if there is none; then delete what was acknowledged meanwhile and spill the
        memory backlog in id order, a WAL-budget chunk per transaction."""
        if self.disk is None:
            self._open_disk()
            if self.disk is None:
                return
        for _ in range(MAX_TXNS_PER_COMMIT):
            chunks, entries, est = self._spill_chunk()

            def spill(d: DiskQueue, chunks: list[int] = chunks, entries: list[Entry] = entries) -> None:
                self._apply(
                    d, [[Stage(cid, *self.memory.chunks[cid]) for cid in chunks], [Put(e) for e in entries]]
                )

            if not self._disk_txn(spill, est):
                return
            self.memory.unstage(chunks)
            for e in entries:
                self.memory.remove(e.id)
            if self.memory.empty and not self._pending_removes and not self._pending_unstage:
                return

    def _spill_chunk(self) -> tuple[list[int], list[Entry], int]:
        """The oldest memory items whose transaction needs at most half the WAL budget (at least one)."""
        limit = self.budget.wal_bytes // 2
        chunks: list[int] = []
        entries: list[Entry] = []
        size = 0
        est = self.budget.wal_bytes_for(0, 0)
        items = [(cid, len(p), True) for cid, (_, p) in self.memory.chunks.items()]
        items += [(e.id, len(e.payload), False) for e in self.memory.entries.values()]
        for ident, length, is_chunk in items:
            more = self.budget.wal_bytes_for(size + length, len(chunks) + len(entries) + 1)
            if (chunks or entries) and more > limit:
                break
            size, est = size + length, more
            if is_chunk:
                chunks.append(ident)
            else:
                entries.append(self.memory.entries[ident])
        return chunks, entries, est

    def _disk_call(self, fn: Callable[[DiskQueue], T], default: T) -> T:
        """A read or a checkpoint; a failure is handled (corrupt: moved aside) and gives `default`."""
        if self.disk is None:
            return default
        try:
            return fn(self.disk)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, classify(exc))
            return default

    def _failed(self, exc: BaseException, kind: ErrorKind) -> None:
        self._last_error = f"{kind}: {exc}"
        self._retry_at = self._clock() + self._retry_interval_s
        self._disk_ok = False
        if self.disk is None:
            return
        if kind == "corrupt":
            try:
                self.disk.recover(exc)
                self._disk_ok = True
            except (sqlite3.Error, OSError) as again:
                self._last_error = f"{classify(again)}: {again}"
                self._close_disk()
            self._pending_removes.clear()
            self._pending_unstage.clear()
            self.protected.clear()
            self.generation += 1
        elif kind == "io":
            self._close_disk()  # reopened (and checked) at the next retry

    def _close_disk(self) -> None:
        if self.disk is not None:
            with contextlib.suppress(sqlite3.Error, OSError):
                self.disk.close()
        self.disk = None

    # -- memory ---------------------------------------------------------------------------------
    def _to_memory(self, group: Group) -> None:
        for drop in apply_to_memory(self.memory, group, self.protected):
            drop.add_to(self._unsaved)
            self._dropped(drop)

    # -- reading --------------------------------------------------------------------------------
    def read(self, after_id: int, upto_id: int | None, limit: int) -> list[Entry]:
        """Committed entries with after_id < id ≤ upto_id (None: all committed), oldest first, from
        disk (minus acknowledged ones waiting for deletion) and memory."""
        upto = self.committed_max_id if upto_id is None else min(upto_id, self.committed_max_id)
        out: list[Entry] = []
        if self.disk is not None:
            cursor = after_id
            try:
                while len(out) < limit:
                    rows = self.disk.read(cursor, upto, limit)
                    out += [e for e in rows if e.id not in self._pending_removes]
                    if len(rows) < limit:
                        break
                    cursor = rows[-1].id
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc, classify(exc))
                out = []
        out += self.memory.read(after_id, upto, limit)
        out.sort(key=lambda e: e.id)
        return out[:limit]

    def _dropped(self, drop: Drop) -> None:
        self.report.dropped(drop)
        if self.on_drop is not None:
            self.on_drop(drop)

    def close(self) -> None:
        """Apply what is left (one more try of the disk); what memory still holds is lost."""
        self._retry_at = 0.0
        self.commit()
        if not self.memory.empty:
            log.error(
                "spool: stopping with %d entries and %d chunks held in memory (%s); they are lost",
                self.memory.rows,
                len(self.memory.chunks),
                self._last_error,
            )
        self._close_disk()
