"""The durable on-disk queue between collection and MQTT: SQLite in WAL mode, bounded in bytes on disk.

Owns: keeping every encoded batch until the broker acknowledged it, across broker outages, SIGKILL
and power loss; a reservation of sequence numbers (stored before any number in it is used, so a
number is never reused after a restart); the full policy; telling a full disk from a corrupt file.
The agent does not use this class directly but `edge_agent.spool_router.Spool`, which falls back to
memory while the disk takes no writes (a full disk is not corruption).

Durability: writes collect in one transaction that `commit()` ends; the agent commits once per
flush interval (≤ 1 s), and `synchronous=FULL` makes each commit fsync the WAL. So a power cut or
SIGKILL loses at most the samples of one flush interval, and the sender only reads committed rows
(`committed_max_id`).

Bound (`edge_agent.spool_budget`): `max_bytes` covers queue.sqlite + -wal + -shm on disk. Before a
row is added, `edge_agent.spool_policy` drops by priority until SQLite's used pages plus the pages
the row can need fit the database's share; drops are counted in the file (`dropped_batches`,
`dropped_chunks`, `dropped_samples`, `dropped_bytes`) and reported in the check-in. After a commit
that leaves the WAL over half its budget, or over the filesystem's free space,
`wal_checkpoint(TRUNCATE)` moves it into the database and empties it (so the WAL file's size is
what it holds); before a transaction that would overflow the budget (`make_wal_room`, given the
caller's estimate of the transaction) it is emptied first, and if that fails the transaction is
refused as a full disk. The WAL bound thus needs transactions sized by their estimate, which the
spool router does; the database bound holds for any use of this class.

Staging: periodic data is made durable every flush interval but published in larger batches. Each
flush `stage()`s its chunk; every batch interval the agent merges the staged chunks into one batch,
`put()`s it with a new seq and `unstage()`s the chunks in the same transaction, so a crash keeps
either the chunks or the batch, never both or neither.

Errors (`edge_agent.spool_errors`): only a corrupt file is moved aside (`spool_files.move_aside`:
a name no earlier file has, with its -wal and -shm); a fresh queue then starts with the old
counters and ids, and numbers above the old reservation. SQLite rolls a transaction back on
SQLITE_FULL; `rollback()` makes sure and reloads the counts.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path

from edge_agent.spool_budget import SpoolBudget
from edge_agent.spool_errors import DiskFull, classify
from edge_agent.spool_files import checkpoint, connect, file_bytes, free_bytes, move_aside
from edge_agent.spool_policy import Drop, make_room, used_pages

log = logging.getLogger(__name__)

COUNTERS = ("last_seq", "dropped_batches", "dropped_chunks", "dropped_samples", "dropped_bytes")
SEQ_RESERVE = 1_000_000  # numbers reserved ahead in the file; a restart skips at most this many


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    kind: str
    priority: int
    seq: int
    samples: int
    payload: bytes
    in_memory: bool = False  # held by the memory fallback, not (yet) on disk


class DiskQueue:
    """One SQLite connection, used from one thread (the agent loop). `seq_floor`, `id_floor`,
    `chunk_floor` and `counters` carry a previous queue's state into a new file."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        *,
        seq_floor: int = 0,
        id_floor: int = 0,
        chunk_floor: int = 0,
        counters: dict[str, int] | None = None,
        corrupt_files: list[Path] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.budget = SpoolBudget.of(max_bytes)
        self.corrupt_files: list[Path] = [] if corrupt_files is None else corrupt_files
        self.last_drops: list[Drop] = []  # drops of the last committed transaction
        self._txn_drops: list[Drop] = []
        self._seq_floor, self._id_floor, self._chunk_floor = seq_floor, id_floor, chunk_floor
        self._initial_counters = dict(counters or {})
        self._conn = self._open_checked()

    # -- opening and corruption -------------------------------------------------------------
    def _open_checked(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.Error as exc:
            if classify(exc) != "corrupt":
                raise
            self._move_aside(exc)
            return self._open()

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path, self.budget.wal_bytes)
        try:
            (page,) = conn.execute("PRAGMA page_size").fetchone()
            if page != self.budget.page_bytes:
                self.budget = replace(self.budget, page_bytes=int(page))
            self._conn = conn
            self._load_state()
        except BaseException:
            conn.close()
            raise
        if self._used_pages() > self.budget.db_pages:
            log.warning("queue file %s is bigger than its share of max_bytes; rows are dropped", self.path)
        return conn

    def _load_state(self) -> None:
        """The counts of what is committed (at open, and after a rollback)."""
        stored = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        source = stored or self._initial_counters
        self._counters = {k: int(source.get(k, 0)) for k in COUNTERS}
        self._next_seq = max(self._counters["last_seq"] + 1, time.time_ns() // 1000, self._seq_floor)
        used, rows, max_id = self._conn.execute(
            "SELECT coalesce(sum(length(payload)), 0), count(*), coalesce(max(id), 0) FROM queue"
        ).fetchone()
        ids = dict(self._conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
        (max_chunk,) = self._conn.execute("SELECT coalesce(max(id), 0) FROM staged").fetchone()
        self.bytes_used, self.rows = int(used), int(rows)
        self.next_id = max(int(max_id), int(ids.get("queue", 0)), self._id_floor - 1) + 1
        self.next_chunk_id = max(int(max_chunk), int(ids.get("staged", 0)), self._chunk_floor - 1) + 1
        self.committed_max_id = self._uncommitted_max_id = int(max_id)
        self._txn_drops = []

    def _move_aside(self, exc: BaseException) -> None:
        target = move_aside(self.path)
        self.corrupt_files.append(target)
        log.error("queue file %s is corrupt (%s); moved to %s, started a new queue", self.path, exc, target)

    def recover(self, exc: BaseException) -> None:
        """After corruption during use: move the file aside and start a fresh queue that keeps the
        counters, the id sequences and the seq reservation. Raises when the fresh file cannot be made."""
        self._initial_counters = dict(self._counters)
        self._seq_floor = max(self._next_seq, self._counters["last_seq"] + 1)
        self._id_floor, self._chunk_floor = self.next_id, self.next_chunk_id
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._move_aside(exc)
        self._conn = self._open()

    # -- writing ------------------------------------------------------------------------------
    def _begin(self) -> None:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")

    def next_seq(self) -> int:
        """The next batch number; the reservation covering it is durable at the next commit."""
        seq = self._next_seq
        self._next_seq += 1
        self.note_seq(seq)
        return seq

    @property
    def next_seq_floor(self) -> int:
        """No number below this may be handed out (the file's reservation, or the clock)."""
        return self._next_seq

    def note_seq(self, seq: int) -> None:
        """`seq` is (or may be) in use: keep the stored reservation above it."""
        self._next_seq = max(self._next_seq, seq + 1)
        if seq > self._counters["last_seq"] - SEQ_RESERVE // 2:
            self._counters["last_seq"] = seq + SEQ_RESERVE

    def put(
        self,
        kind: str,
        payload: bytes,
        *,
        priority: int,
        samples: int,
        seq: int = 0,
        entry_id: int | None = None,
        protected: frozenset[int] = frozenset(),
    ) -> bool:
        """Add an entry (durable at the next commit). False when the full policy dropped it."""
        size = len(payload)
        if seq:
            self.note_seq(seq)
        if not self._admit(Drop(entry_id or 0, priority, samples, size, False, "disk"), protected):
            return False
        cur = self._conn.execute(
            "INSERT INTO queue (id, kind, priority, seq, samples, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (entry_id, kind, priority, seq, samples, payload),
        )
        row_id = int(cur.lastrowid or 0)
        self._uncommitted_max_id = max(self._uncommitted_max_id, row_id)
        self.next_id = max(self.next_id, row_id + 1)
        self.bytes_used += size
        self.rows += 1
        return True

    def _used_pages(self) -> int:
        return used_pages(self._conn)

    def _admit(self, candidate: Drop, protected: frozenset[int]) -> bool:
        """Make room for a new row described by `candidate` (what would be dropped if it cannot
        fit); False, with the drop counted, when the full policy gives it up."""
        self._begin()
        fits = candidate.size <= self.budget.max_entry_bytes
        if fits and self._make_room(self.budget.pages_for(candidate.size), candidate.priority, protected):
            return True
        self._drop(candidate)
        return False

    def _make_room(self, need_pages: int, priority: int, protected: frozenset[int]) -> bool:
        return make_room(self._conn, self.budget.db_pages, need_pages, priority, protected, self._victim)

    def _victim(self, drop: Drop) -> None:
        if not drop.chunk:
            self.bytes_used -= drop.size
            self.rows -= 1
        self._drop(drop)

    def _drop(self, drop: Drop) -> None:
        self.count_drop(drop)
        self._txn_drops.append(drop)
        log.debug("queue full: dropped %s", drop)

    def count_drop(self, drop: Drop) -> None:
        drop.add_to(self._counters)

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add drops counted elsewhere (in memory) to the file's counters, at the next commit."""
        for key, value in counts.items():
            self._counters[key] += value

    def stage(
        self,
        payload: bytes,
        samples: int,
        *,
        chunk_id: int | None = None,
        protected: frozenset[int] = frozenset(),
    ) -> bool:
        """Keep a chunk durable (at the next commit) until it is merged into a batch. False when the
        full policy dropped it (only trigger windows, DTCs and entries in flight are left)."""
        if not self._admit(Drop(chunk_id or 0, 0, samples, len(payload), True, "disk"), protected):
            return False
        cur = self._conn.execute(
            "INSERT INTO staged (id, samples, payload) VALUES (?, ?, ?)", (chunk_id, samples, payload)
        )
        self.next_chunk_id = max(self.next_chunk_id, int(cur.lastrowid or 0) + 1)
        return True

    def staged(self) -> list[tuple[int, bytes]]:
        """Staged chunks (committed or not), oldest first."""
        return [(r[0], bytes(r[1])) for r in self._conn.execute("SELECT id, payload FROM staged ORDER BY id")]

    def holds_staged(self, ids: tuple[int, ...]) -> bool:
        """Whether every one of these chunks is still staged (the full policy may have dropped one)."""
        if not ids:
            return True
        placeholders = ",".join("?" * len(ids))
        (found,) = self._conn.execute(
            f"SELECT count(*) FROM staged WHERE id IN ({placeholders})", ids
        ).fetchone()
        return int(found) == len(set(ids))

    def unstage(self, ids: list[int]) -> None:
        if ids:
            self._begin()
            self._conn.execute(f"DELETE FROM staged WHERE id IN ({','.join('?' * len(ids))})", ids)

    def remove(self, ids: list[int]) -> None:
        """Forget acknowledged entries (durable at the next commit; a crash before it re-sends them,
        which ingest deduplicates by (vehicle, seq))."""
        if not ids:
            return
        self._begin()
        placeholders = ",".join("?" * len(ids))
        removed = self._conn.execute(
            f"SELECT coalesce(sum(length(payload)), 0), count(*) FROM queue WHERE id IN ({placeholders})", ids
        ).fetchone()
        self._conn.execute(f"DELETE FROM queue WHERE id IN ({placeholders})", ids)
        self.bytes_used -= int(removed[0])
        self.rows -= int(removed[1])

    def commit(self) -> None:
        """End the transaction with an fsync; entries become visible to `read`. Then checkpoint by
        the WAL budget. Raises sqlite3.Error (the caller then calls `rollback()`)."""
        self._begin()
        self._conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(self._counters.items()),
        )
        self._conn.execute("COMMIT")
        self.committed_max_id = self._uncommitted_max_id
        self.last_drops, self._txn_drops = self._txn_drops, []
        wal = self.wal_file_bytes()
        if wal > self.budget.wal_bytes // 2 or wal > free_bytes(self.path.parent):
            self.checkpoint()

    def rollback(self) -> None:
        """Undo the open transaction (SQLite may have done so already, e.g. on SQLITE_FULL) and reload
        the committed counts. Ids and seqs handed out meanwhile are not reused."""
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        next_id, next_chunk, next_seq = self.next_id, self.next_chunk_id, self._next_seq
        self._load_state()
        self.next_id, self.next_chunk_id = max(self.next_id, next_id), max(self.next_chunk_id, next_chunk)
        self._next_seq = max(self._next_seq, next_seq)

    # -- the WAL ----------------------------------------------------------------------------------
    def wal_file_bytes(self) -> int:
        return file_bytes(self.path, ("-wal",))

    def file_bytes(self) -> int:
        """What the queue takes on disk: the database, its WAL and its shm file."""
        return file_bytes(self.path)

    def checkpoint(self) -> bool:
        """Move the WAL into the database and empty it; False when it could not (e.g. no room for
        the database to grow). Raises only for corruption."""
        return checkpoint(self._conn)

    def make_wal_room(self, txn_wal_bytes: int) -> None:
        """Before a transaction estimated to write `txn_wal_bytes` of WAL: empty the WAL if it
        would overflow its budget. Raises DiskFull when that is needed and fails."""
        if self.wal_file_bytes() + txn_wal_bytes > self.budget.wal_bytes and not self.checkpoint():
            raise DiskFull("the WAL is full and cannot be checkpointed")

    # -- reading ------------------------------------------------------------------------------
    def read(self, after_id: int, upto_id: int | None, limit: int) -> list[Entry]:
        """Committed entries with after_id < id ≤ upto_id (None: all committed), oldest first."""
        upto = self.committed_max_id if upto_id is None else min(upto_id, self.committed_max_id)
        rows = self._conn.execute(
            "SELECT id, kind, priority, seq, samples, payload FROM queue WHERE id > ? AND id <= ? "
            "ORDER BY id LIMIT ?",
            (after_id, upto, limit),
        ).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def close(self) -> None:
        try:
            if self._conn.in_transaction:
                self.commit()
        except sqlite3.Error:
            self.rollback()
        finally:
            self._conn.close()
