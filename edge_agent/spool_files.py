"""The queue's files on disk: opening them, emptying the WAL, their sizes, the filesystem's free
space, and moving a corrupt set aside.

Owns: `connect` (WAL mode, fsync on every commit, no automatic checkpoint: the queue checkpoints by
its budget, `quick_check`, the schema); `checkpoint` (TRUNCATE, so the WAL file's size is what it
holds); and `move_aside`, which renames `queue.sqlite` with its -wal and -shm to
`<name>.corrupt-<unix ns>-<n>`, a name none of the three files has yet, so an earlier moved file is
never overwritten (two corruptions in the same second once shared a name, and the second move
replaced the first file's WAL, whose data was then unreadable).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from edge_agent.spool_errors import QueueCorrupt, classify

log = logging.getLogger(__name__)

SUFFIXES = ("", "-wal", "-shm")
_counter = itertools.count()

SCHEMA = """
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


def connect(path: Path, wal_limit_bytes: int) -> sqlite3.Connection:
    """Open (or create) the queue file and check it. Raises sqlite3.Error: QueueCorrupt or
    SQLITE_CORRUPT/NOTADB for a damaged file, SQLITE_FULL when a new file cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA page_size=4096")  # only takes effect on a new file
        conn.execute(f"PRAGMA journal_size_limit={wal_limit_bytes}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA cache_size=-512")  # KiB: the queue is read sequentially; keep RSS small
        (check,) = conn.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise QueueCorrupt(check)
        conn.executescript(SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Move the WAL into the database and empty it; False when it could not (e.g. no room for the
    database to grow). Raises only for corruption."""
    try:
        busy, wal_frames, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        if classify(exc) == "corrupt":
            raise
        log.debug("checkpoint failed: %s", exc)
        return False
    return busy == 0 and wal_frames == done


def move_aside(path: Path) -> Path:
    """Rename the database and its -wal/-shm to a fresh name; returns the new database path."""
    while True:
        target = path.with_name(f"{path.name}.corrupt-{time.time_ns()}-{next(_counter)}")
        if not any(Path(f"{target}{s}").exists() for s in SUFFIXES):
            break
    for suffix in SUFFIXES:
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.rename(source, Path(f"{target}{suffix}"))
    return target


def file_bytes(path: Path, suffixes: Iterable[str] = SUFFIXES) -> int:
    """The summed sizes of `path` with each suffix (missing files count 0)."""
    total = 0
    for suffix in suffixes:
        with contextlib.suppress(OSError):
            total += os.stat(f"{path}{suffix}").st_size
    return total


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem of `directory` (0 if unknown)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize
