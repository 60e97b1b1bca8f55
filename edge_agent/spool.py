"""The durable on-disk queue between collection and MQTT: SQLite in WAL mode, bounded in bytes.

Owns: keeping every encoded batch until the broker acknowledged it, across broker outages, SIGKILL
and power loss; the per-vehicle sequence counter (stored in the same transaction as the batch it
numbered, so a batch is never re-numbered and a number is never reused); the full policy; and
detecting a corrupt file.

Durability: writes collect in one open transaction that `commit()` ends; the agent commits once per
flush interval (≤ 1 s), and `synchronous=FULL` makes each commit fsync the WAL. So a power cut or
SIGKILL loses at most the samples of one flush interval, and the sender only ever reads committed
rows (`committed_max_id`): nothing is published that could be re-numbered after a crash.

Full policy (`max_bytes` counts payload bytes): before an entry is added, the oldest entries of
the lowest priority are dropped until it fits (periodic data before trigger windows and DTCs);
an entry bigger than the whole queue is dropped itself. Drops are counted in the file
(`dropped_batches`, `dropped_samples`, `dropped_bytes`) and reported in the check-in.

Staging: periodic data is made durable every flush interval but published in larger batches
(better compression, fewer MQTT messages). Each flush `stage()`s its chunk; every batch interval
the agent merges the staged chunks into one batch, `put()`s it with a new seq and `unstage()`s the
chunks in the same transaction, so a crash either keeps the chunks or the batch, never both or
neither. Staged data is bounded by one batch interval and is not counted in `max_bytes`.

Corruption: `DiskQueue()` runs `PRAGMA quick_check`; a file SQLite cannot read, or that fails the
check, is renamed to `<name>.corrupt-<unix time>` (with its -wal/-shm), reported in
`DiskQueue.corrupt_files`, and a fresh queue is created. The agent also calls `recover()` when a
later statement raises `sqlite3.DatabaseError`. The sequence counter of a fresh queue starts at the
current time in microseconds (as `edge_agent.sequence` does), so it still exceeds earlier numbers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    kind     TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    samples  INTEGER NOT NULL,
    payload  BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_priority ON queue (priority, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS staged (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    samples INTEGER NOT NULL,
    payload BLOB    NOT NULL
);
"""
_COUNTERS = ("last_seq", "dropped_batches", "dropped_samples", "dropped_bytes")


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    kind: str
    priority: int
    seq: int
    samples: int
    payload: bytes


class DiskQueue:
    """One SQLite connection, used from one thread (the agent loop)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.corrupt_files: list[Path] = []
        self._conn = self._open_checked()

    # -- opening and corruption -------------------------------------------------------------
    def _open_checked(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)
            return self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA cache_size=-512")  # KiB: the queue is read sequentially; keep RSS small
            (check,) = conn.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            conn.executescript(_SCHEMA)
            counters = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            used, rows, max_id = conn.execute(
                "SELECT coalesce(sum(length(payload)), 0), count(*), coalesce(max(id), 0) FROM queue"
            ).fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        self._counters = {k: int(counters.get(k, 0)) for k in _COUNTERS}
        self._next_seq = max(self._counters["last_seq"] + 1, time.time_ns() // 1000)
        self.bytes_used, self.rows = int(used), int(rows)
        self.committed_max_id = int(max_id)
        self._uncommitted_max_id = self.committed_max_id
        conn.execute("BEGIN")
        return conn

    def _move_aside(self, exc: Exception) -> None:
        stamp = int(time.time())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                os.replace(source, Path(f"{target}{suffix}"))
        self.corrupt_files.append(target)
        log.error(
            "queue file %s is corrupt (%s); moved to %s and started a new queue", self.path, exc, target
        )

    def recover(self, exc: Exception) -> None:
        """After a DatabaseError during use: move the file aside and start a fresh queue."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._move_aside(exc)
        self._conn = self._open()

    # -- writing ------------------------------------------------------------------------------
    def next_seq(self) -> int:
        """The next batch number; it becomes durable with the batch at the next commit."""
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def put(self, kind: str, payload: bytes, *, priority: int, samples: int, seq: int = 0) -> bool:
        """Add an entry (durable at the next commit). False when the full policy dropped it."""
        size = len(payload)
        if seq:
            self._counters["last_seq"] = max(self._counters["last_seq"], seq)
        if size > self.max_bytes:
            self._count_drop(1, samples, size)
            return False
        self._make_room(size, priority)
        if self.bytes_used + size > self.max_bytes:  # only higher-priority data left
            self._count_drop(1, samples, size)
            return False
        cur = self._conn.execute(
            "INSERT INTO queue (kind, priority, seq, samples, payload) VALUES (?, ?, ?, ?, ?)",
            (kind, priority, seq, samples, payload),
        )
        self._uncommitted_max_id = int(cur.lastrowid or 0)
        self.bytes_used += size
        self.rows += 1
        return True

    def _make_room(self, size: int, priority: int) -> None:
        while self.bytes_used + size > self.max_bytes:
            victims = self._conn.execute(
                "SELECT id, samples, length(payload) FROM queue WHERE priority <= ? "
                "ORDER BY priority, id LIMIT 64",
                (priority,),
            ).fetchall()
            if not victims:
                return
            freed: list[int] = []
            for row_id, samples, length in victims:
                freed.append(row_id)
                self._count_drop(1, samples, length)
                self.bytes_used -= length
                self.rows -= 1
                if self.bytes_used + size <= self.max_bytes:
                    break
            self._conn.executemany("DELETE FROM queue WHERE id = ?", [(i,) for i in freed])

    def _count_drop(self, batches: int, samples: int, size: int) -> None:
        self._counters["dropped_batches"] += batches
        self._counters["dropped_samples"] += samples
        self._counters["dropped_bytes"] += size
        log.warning("queue full: dropped a batch of %d samples (%d bytes)", samples, size)

    def stage(self, payload: bytes, samples: int) -> None:
        """Keep a chunk durable (at the next commit) until it is merged into a batch."""
        self._conn.execute("INSERT INTO staged (samples, payload) VALUES (?, ?)", (samples, payload))

    def staged(self) -> list[tuple[int, bytes]]:
        """Staged chunks (committed or not), oldest first."""
        return [(r[0], bytes(r[1])) for r in self._conn.execute("SELECT id, payload FROM staged ORDER BY id")]

    def unstage(self, ids: list[int]) -> None:
        if ids:
            self._conn.execute(f"DELETE FROM staged WHERE id IN ({','.join('?' * len(ids))})", ids)

    def remove(self, ids: list[int]) -> None:
        """Forget acknowledged entries (durable at the next commit; a crash before it re-sends them,
        which ingest deduplicates by (vehicle, seq))."""
        if not ids:
            return
        placeholders = ",".join("?" * len(ids))
        removed = self._conn.execute(
            f"SELECT coalesce(sum(length(payload)), 0), count(*) FROM queue WHERE id IN ({placeholders})", ids
        ).fetchone()
        self._conn.execute(f"DELETE FROM queue WHERE id IN ({placeholders})", ids)
        self.bytes_used -= int(removed[0])
        self.rows -= int(removed[1])

    def commit(self) -> None:
        """End the transaction with an fsync; entries become visible to `read`."""
        self._conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(self._counters.items()),
        )
        self._conn.execute("COMMIT")
        self.committed_max_id = self._uncommitted_max_id
        self._conn.execute("BEGIN")

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
        with contextlib.suppress(sqlite3.Error):
            self.commit()
            self._conn.execute("COMMIT")
        self._conn.close()
