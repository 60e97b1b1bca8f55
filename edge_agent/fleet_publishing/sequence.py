"""Per-vehicle batch sequence numbers that only increase, across restarts too.

Owns: handing out `seq` values. Without a state file the counter starts at the current Unix time in
microseconds, which exceeds any number handed out by an earlier run that published fewer than one
batch per microsecond; with a state file it resumes after the last value it reserved.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

_RESERVE = 1000  # values reserved per state-file write, so the file is written rarely


class SequenceCounter:
    def __init__(self, state_file: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._state_file = state_file
        start = time.time_ns() // 1000
        if state_file is not None and state_file.exists():
            # A corrupt state file is ignored: the clock-based start still only increases.
            with contextlib.suppress(ValueError):
                start = max(start, int(state_file.read_text().strip()))
        self._next = start
        self._reserved_until = start
        self._reserve()

    def _reserve(self) -> None:
        self._reserved_until = self._next + _RESERVE
        if self._state_file is not None:
            tmp = self._state_file.with_suffix(".tmp")
            tmp.write_text(str(self._reserved_until))
            os.replace(tmp, self._state_file)

    def next(self) -> int:
        with self._lock:
            if self._next >= self._reserved_until:
                self._reserve()
            value = self._next
            self._next += 1
            return value
