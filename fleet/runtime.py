"""Small process helpers shared by the `fleet` commands: migrate on start, run until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any


def migrate_quietly(database_url: str) -> None:
    """Bring the schema up to date (idempotent). Raises psycopg.Error if a migration fails."""
    import psycopg

    from ingest import migrate

    with psycopg.connect(database_url) as conn:
        migrate(conn)


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
