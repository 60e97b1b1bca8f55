"""The full policy of the disk queue: which rows go to make room for a new one, in which order.

Owns: `make_room`. The order is the one the agent documents: periodic batches (priority 0) oldest
first, then staged chunks (the newest periodic data, not yet a batch), then trigger windows (1),
then DTCs (2); never an entry in flight (`protected`: it may be delivered any moment, and would
then be counted twice), never one of higher priority than the row that needs the room. Room is
counted in SQLite's own pages (page_count - freelist_count), the measure of the file, so a drop
frees whole pages and may free a little more than the new row needs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.spool_budget import FIXED_PAGES

DROP_KEYS = ("dropped_batches", "dropped_chunks", "dropped_samples", "dropped_bytes")


@dataclass(frozen=True, slots=True)
class Drop:
    """One entry (or staged chunk, `chunk`) the full policy gave up."""

    id: int
    priority: int
    samples: int
    size: int
    chunk: bool
    store: str  # "disk" or "memory"

    def counts(self) -> dict[str, int]:
        """What it adds to the drop counters."""
        return {
            "dropped_chunks" if self.chunk else "dropped_batches": 1,
            "dropped_samples": self.samples,
            "dropped_bytes": self.size,
        }

    def add_to(self, counters: dict[str, int]) -> None:
        """Count this drop in `counters` (keys: DROP_KEYS)."""
        for key, value in self.counts().items():
            counters[key] += value


def used_pages(conn: sqlite3.Connection) -> int:
    (count,) = conn.execute("PRAGMA page_count").fetchone()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    return int(count) - int(free)


def make_room(
    conn: sqlite3.Connection,
    cap_pages: int,
    need_pages: int,
    priority: int,
    protected: frozenset[int],
    on_drop: Callable[[Drop], None],
) -> bool:
    """Delete rows in drop order until `need_pages` more pages fit within `cap_pages`; `on_drop` is
    told of each. False when even that cannot make the room (the rows deleted stay deleted)."""
    if need_pages > cap_pages - FIXED_PAGES:
        return False
    if used_pages(conn) + need_pages <= cap_pages:
        return True  # the usual case: it fits, nothing to drop
    kept = ",".join(str(int(i)) for i in protected)  # integers only: safe to inline
    not_kept = f" AND id NOT IN ({kept})" if kept else ""
    queries = [
        f"SELECT id, priority, samples, length(payload), 0 FROM queue WHERE priority <= 0{not_kept}"
        " ORDER BY id LIMIT 32",
        "SELECT id, 0, samples, length(payload), 1 FROM staged ORDER BY id LIMIT 32",
    ]
    if priority > 0:
        queries.append(
            "SELECT id, priority, samples, length(payload), 0 FROM queue "
            f"WHERE priority > 0 AND priority <= {int(priority)}{not_kept} ORDER BY priority, id LIMIT 32"
        )
    for query in queries:
        while used_pages(conn) + need_pages > cap_pages:
            victims = conn.execute(query).fetchall()
            if not victims:
                break  # nothing of this kind left: the next kind
            for row_id, prio, samples, length, chunk in victims:
                conn.execute(f"DELETE FROM {'staged' if chunk else 'queue'} WHERE id = ?", (row_id,))
                on_drop(Drop(row_id, prio, samples, length, bool(chunk), "disk"))
                if used_pages(conn) + need_pages <= cap_pages:
                    return True
    return used_pages(conn) + need_pages <= cap_pages
