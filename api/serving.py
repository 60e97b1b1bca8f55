"""Serving under load: admission control, load shedding and per-request timings.

Why: with more concurrent requests than database connections, requests used to queue inside the
connection pool and fail with 503 after its 5 s timeout, at random, while the CPU was already
saturated (issue 13: 50 clients, p95 5 s, 10 % 503s). Here a worker process runs at most
`max_active` requests at once (the pool's size, so no request ever waits for a connection), lets
up to `max_waiting` more wait in arrival order, and answers any request beyond those at once with
503 and `Retry-After` (a problem+json body): an overloaded API says so immediately instead of
timing out late. docs/api-serving.md gives the measured limits these numbers come from.

Every response carries a `Server-Timing` header (W3C Server Timing): `queue` (waiting for
admission), `db` (in database calls: `api.db.TimedCursor`) and `app` (the rest of the request's time in
this process), in milliseconds, so a client or a benchmark sees where the time went.

Owns: the middleware. Leaves the pool and the cursor that times database calls to `api.db`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db import db_time
from api.problems import MEDIA_TYPE, ProblemKind

OVERLOADED_TYPE = ProblemKind.OVERLOADED.kind.type
UNMETERED_PATHS = frozenset({"/health"})  # always admitted: a load balancer must see the process


class Admission:
    """Pure ASGI middleware: at most `max_active` requests run, `max_waiting` wait (FIFO), the rest
    get 503 with `Retry-After: retry_after_s`. Counts are per process (one event loop)."""

    def __init__(self, app: ASGIApp, *, max_active: int, max_waiting: int, retry_after_s: int = 1) -> None:
        if max_active < 1 or max_waiting < 0:
            raise ValueError("max_active must be at least 1 and max_waiting at least 0")
        self.app = app
        self.max_active = max_active
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.shed = 0  # requests answered 503 since start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNMETERED_PATHS:
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        if self.active >= self.max_active:
            if len(self._waiters) >= self.max_waiting:
                self.shed += 1
                await self._overloaded(scope, send)
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # the slot is handed over by the request that finishes
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # it was handed a slot it will not use
                else:
                    self._waiters.remove(waiter)
                raise
        else:
            self.active += 1
        admitted = time.perf_counter()
        spent = [0.0]
        token = db_time.set(spent)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                now = time.perf_counter()
                timing = (
                    f"queue;dur={(admitted - arrived) * 1000:.2f}, db;dur={spent[0] * 1000:.2f},"
                    f" app;dur={max(0.0, now - admitted - spent[0]) * 1000:.2f}"
                )
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"server-timing", timing.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            db_time.reset(token)
            self._release()

    def _release(self) -> None:
        """Hand the slot to the longest waiter still waiting, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: `active` stays
                return
        self.active -= 1

    async def _overloaded(self, scope: Scope, send: Send) -> None:
        body = json.dumps(
            {
                "type": OVERLOADED_TYPE,
                "title": ProblemKind.OVERLOADED.kind.title,
                "status": 503,
                "detail": f"more than {self.max_active + self.max_waiting} requests in progress; retry later",
                "instance": scope.get("path", ""),
            }
        ).encode()
        headers = [
            (b"content-type", MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.retry_after_s).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
