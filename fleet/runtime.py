"""Small process helpers shared by the `fleet` commands: migrate on start, run until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from fleet.settings import FleetSettings


def migrate_quietly(database_url: str) -> None:
    """Bring the schema up to date (idempotent). Raises psycopg.Error if a migration fails."""
    import psycopg

    from ingest import migrate

    with psycopg.connect(database_url) as conn:
        migrate(conn)


@contextlib.contextmanager
def migrated_database(settings: FleetSettings) -> Iterator[psycopg.Connection]:
    """A connection to the migrated database of the configured servers (the embedded PostgreSQL
    when none is configured; no broker), for commands that only read or write tables."""
    import psycopg

    from fleet.embedded import servers

    with servers(settings, start_broker=False) as srv:
        migrate_quietly(srv.database_url)
        with psycopg.connect(srv.database_url) as conn:
            yield conn


def run_until_signal(coro: Coroutine[Any, Any, Any]) -> None:
    """Run `coro` until it ends or SIGINT/SIGTERM cancels it (a clean stop, not an error)."""

    async def main() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


def query_ints(database_url: str, sql: str, params: tuple[Any, ...]) -> tuple[int, ...]:
    """Run one short read query and return its first row as ints (zeros for NULL or no row)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, params).fetchone()
    return tuple(int(v or 0) for v in row) if row else ()


def count_dead_letters(database_url: str, since_unix_s: float) -> int:
    """Dead letters received since `since_unix_s` (what a run reports)."""
    row = query_ints(
        database_url,
        "SELECT count(*) FROM dead_letters WHERE received_at >= to_timestamp(%s)",
        (since_unix_s,),
    )
    return row[0] if row else 0


async def poll_counts(
    database_url: str, sql: str, params: tuple[Any, ...], expected: int, timeout_s: float
) -> tuple[int, ...]:
    """Re-run a counting query until its first column reaches `expected` or time runs out: a run
    waits for ingest to store what the broker acknowledged. Returns the last row."""
    deadline = time.monotonic() + timeout_s
    row = await asyncio.to_thread(query_ints, database_url, sql, params)
    while (row[0] if row else 0) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        row = await asyncio.to_thread(query_ints, database_url, sql, params)
    return row
