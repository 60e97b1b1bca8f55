"""Log lines that can repeat every second (a full disk, drops) at most once a minute per kind.

Owns: `LogThrottle`. The lines held back are counted and the count is appended to the next line of
the same kind, so the log stays short on a car that is stuck in one state for days and nothing is
hidden. The counters themselves are exact and go out in the check-in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class LogThrottle:
    def __init__(
        self, logger: logging.Logger, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._clock = clock
        self._next_s: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def ready(self, key: str) -> bool:
        """Whether a line of kind `key` would be logged now."""
        return self._clock() >= self._next_s.get(key, float("-inf"))

    def log(self, level: int, key: str, msg: str, *args: object, exc_info: bool = False) -> bool:
        """Log unless a line of kind `key` was logged within the interval. Returns whether it logged."""
        now = self._clock()
        if now < self._next_s.get(key, float("-inf")):
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._next_s[key] = now + self._interval_s
        held = self._held.pop(key, 0)
        if held:
            msg, args = msg + " (%d similar lines held back)", (*args, held)
        self._log.log(level, msg, *args, exc_info=exc_info)
        return True
