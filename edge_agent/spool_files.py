"""The queue's files on disk: their sizes, the filesystem's free space, and moving a corrupt set aside.

Owns: `move_aside`, which renames `queue.sqlite` with its -wal and -shm to
`<name>.corrupt-<unix ns>-<n>`, a name none of the three files has yet, so an earlier moved file is
never overwritten (two corruptions in the same second once shared a name, and the second move
replaced the first file's WAL, whose data was then unreadable).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Iterable
from pathlib import Path

SUFFIXES = ("", "-wal", "-shm")
_counter = itertools.count()


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
