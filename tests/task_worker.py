"""A procrastinate worker for tests: on its own event loop in a thread, stopped gracefully."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import procrastinate


@contextmanager
def running_worker(
    app: procrastinate.App, queue: str, *, concurrency: int, name: str | None = None
) -> Iterator[None]:
    """Run a worker of `app` on `queue` while the block runs; cancel it and wait for it after."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, asyncio.Task] = {}
    named = {"name": name} if name is not None else {}

    async def main() -> None:
        async with app.open_async():
            holder["task"] = asyncio.current_task()  # type: ignore[assignment]
            started.set()
            await app.run_worker_async(
                queues=[queue], concurrency=concurrency, fetch_job_polling_interval=0.2,
                install_signal_handlers=False, **named,
            )  # fmt: skip

    def run() -> None:
        with suppress(asyncio.CancelledError):
            loop.run_until_complete(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(20)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(holder["task"].cancel)
        thread.join(30)
        loop.close()
