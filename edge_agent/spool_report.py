"""What the spool tells the log: state changes and drop summaries, each at most once a minute.

Owns: `SpoolReport`. The exact counters go out in the check-in; the log says when the spool's state
changes and sums up the drops since its previous line, so a car stuck on a full disk for days writes
a line a minute, not one a second.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.ratelimit import LogThrottle
from edge_agent.spool_policy import DROP_KEYS, Drop

log = logging.getLogger("edge_agent.spool")


class SpoolReport:
    def __init__(self, path: Path, state: str) -> None:
        self.path = path
        self.state = state
        self.disk_full_events = int(state != "ok")  # times the spool left state ok (or never had it)
        self._unlogged = dict.fromkeys(DROP_KEYS, 0)
        self._throttle = LogThrottle(log)

    def dropped(self, drop: Drop) -> None:
        drop.add_to(self._unlogged)

    def update(self, state: str, cause: str, memory_max_bytes: int, retry_s: float) -> None:
        """After each commit: log a new state, and the drops if a minute has passed."""
        if state != self.state:
            self.disk_full_events += self.state == "ok"
            if state == "ok":
                self._throttle.log(logging.INFO, "state", "spool: writing to %s again", self.path)
            else:
                self._throttle.log(
                    logging.WARNING,
                    "state",
                    "spool: %s (%s); holding new data in memory (up to %d bytes), retrying every %.0f s",
                    state,
                    cause,
                    memory_max_bytes,
                    retry_s,
                )
            self.state = state
        u = self._unlogged
        if (u["dropped_batches"] or u["dropped_chunks"]) and self._throttle.ready("drops"):
            self._throttle.log(
                logging.WARNING,
                "drops",
                "spool full (%s): dropped %d batches and %d staged chunks (%d samples, %d bytes)",
                state,
                u["dropped_batches"],
                u["dropped_chunks"],
                u["dropped_samples"],
                u["dropped_bytes"],
            )
            self._unlogged = dict.fromkeys(DROP_KEYS, 0)
