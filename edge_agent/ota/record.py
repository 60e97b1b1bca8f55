"""The install record on disk (`<state_dir>/ota/install.json`, Mender's state store) and the lock
that keeps one installer process per state directory.

Owns saving the record durably (temp file, fsync, rename, fsync the directory), reading it back,
moving an unreadable one aside, and the flock. What the record holds is `state.Job`; when it is
saved is the installer's (edge_agent.ota.install).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from edge_agent.ota.durable import fsync_dir, write_atomic
from edge_agent.ota.state import Job, JobError

log = logging.getLogger(__name__)

RECORD = "install.json"
LOCK = "lock"


class InstallerBusy(RuntimeError):
    """Another process holds this state directory's installer lock."""


class InstallRecord:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.path = directory / RECORD

    def save(self, job: Job) -> None:
        """Raises OSError (then the previous record stays as it was)."""
        write_atomic(self.path, job.to_json())

    def load(self) -> Job | None:
        """The saved install, None when there is none. Raises JobError, OSError."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return Job.from_json(data)

    def load_or_recover(self) -> Job | None:
        """The saved install; an unreadable record is moved aside (`install.json.corrupt-<ns>`),
        logged, and taken as no install."""
        try:
            return self.load()
        except (JobError, OSError) as exc:
            aside = self.path.with_name(f"{RECORD}.corrupt-{time.time_ns()}")
            log.error("unreadable install record (%s); moved to %s", exc, aside.name)
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
                fsync_dir(self.dir)
            return None

    def remove(self) -> None:
        """Raises OSError."""
        self.path.unlink(missing_ok=True)
        fsync_dir(self.dir)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock (released by the kernel when the process dies). Raises
        InstallerBusy, OSError."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InstallerBusy(f"another process installs in {self.dir}") from None
            yield
        finally:
            os.close(fd)
