"""The read audit log: which principal read which vehicles' data, and when (`api_read_audit`).

Owns: collecting one entry per request that answered with vehicle data (the caller as `role:name`,
the path, the vehicles, the time) and writing them in batches, off the request path: a route only
appends to a buffer in memory (`ReadLog`), and a background thread writes what has gathered every
`flush_interval_s` in one statement over a connection of its own (so it never takes a request's
pool slot). Entries that cannot be written (the database is down) are kept and written at the
next flush, up to `max_pending` (beyond it the oldest are dropped, counted and logged); shutdown
flushes what is left. What a crash of the process loses: the entries of at most the last
`flush_interval_s`. Leaves which vehicles a route showed to the route, and reading the log to
`GET /v1/audit/reads` (admins).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from api.auth import Principal, current_principal

log = logging.getLogger(__name__)


class ReadAudit:
    """The buffer and its writer thread (one per app)."""

    def __init__(
        self, database_url: str, *, flush_interval_s: float = 1.0, max_pending: int = 100_000
    ) -> None:
        self._url = database_url
        self._interval_s = flush_interval_s
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: list[tuple[dt.datetime, str, str, list[str]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self.dropped = 0

    def record(self, principal: str, path: str, vehicle_ids: Iterable[str]) -> None:
        """Note that `principal` read the vehicles' data now. No I/O."""
        ids = sorted(set(vehicle_ids))
        if not ids:
            return
        with self._lock:
            self._pending.append((dt.datetime.now(dt.UTC), principal, path, ids))
            if len(self._pending) > self._max_pending:
                drop = len(self._pending) - self._max_pending
                del self._pending[:drop]
                self.dropped += drop
                log.error("read audit: %d entries dropped (the database is unreachable)", drop)

    def flush(self) -> int:
        """Write every pending entry in one statement; how many. On a database error they are kept
        for the next flush (and 0 is returned)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
            with self._conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO api_read_audit (at, principal, path, vehicle_ids) VALUES (%s, %s, %s, %s)",
                    batch,
                )
        except psycopg.Error as exc:
            log.warning("read audit: %d entries kept for the next flush (%s)", len(batch), type(exc).__name__)
            with self._lock:
                self._pending[:0] = batch
            if self._conn is not None:
                self._conn.close()
            return 0
        return len(batch)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="read-audit", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        if self._conn is not None:
            self._conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()


async def read_log(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> Callable[[Iterable[str]], None]:
    """A route's way to note the vehicles whose data it answers with (async: no I/O, so no hop
    through the thread pool)."""
    audit: ReadAudit = request.app.state.read_audit
    who, path = f"{principal.role.value}:{principal.name}", request.url.path
    return lambda vehicle_ids: audit.record(who, path, vehicle_ids)


ReadLog = Annotated[Callable[[Iterable[str]], None], Depends(read_log)]
