"""Database access for requests: the pool an app owns and the connection each request borrows.

Owns: pool settings and turning "no connection to be had" into `DatabaseUnavailable`, so routes
never see psycopg_pool's exceptions. Leaves SQL to `api.repository` and the pool's lifetime to
`api.app`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool, PoolTimeout

# The current request's database seconds, set by `api.serving.Admission` (a one-element list, so
# that the thread a sync route runs in adds to the same total).
db_time: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "fleet_api_db_time", default=None
)


class TimedCursor(psycopg.Cursor[Any]):
    """A cursor that adds the time of each `execute` (the round trip: the server's work and the
    result's transfer) to the current request's database time, when there is a request."""

    def execute(self, *args: Any, **kwargs: Any) -> TimedCursor:  # type: ignore[override]
        spent = db_time.get()
        if spent is None:
            return super().execute(*args, **kwargs)  # type: ignore[return-value]
        t0 = time.perf_counter()
        try:
            return super().execute(*args, **kwargs)  # type: ignore[return-value]
        finally:
            spent[0] += time.perf_counter() - t0


class DatabaseUnavailable(Exception):
    """No working database connection within the timeout; the caller may retry later."""


def open_pool(database_url: str, *, max_size: int, timeout_s: float) -> ConnectionPool:
    """Start a pool without waiting for the database, so the API can come up before it does."""
    pool: ConnectionPool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        timeout=timeout_s,
        # The API only reads: autocommit keeps no transaction open between statements.
        # TimedCursor: each request's database time goes into its Server-Timing header.
        kwargs={"autocommit": True, "cursor_factory": TimedCursor},
        check=ConnectionPool.check_connection,
        name="fleetpulse-api",
        open=False,
    )
    pool.open(wait=False)
    return pool


def get_pool(request: Request) -> ConnectionPool:
    return request.app.state.pool


def get_conn(pool: Annotated[ConnectionPool, Depends(get_pool)]) -> Iterator[psycopg.Connection]:
    """Lend a connection for one request. Raises DatabaseUnavailable if none can be had or the
    connection breaks during the request."""
    try:
        with pool.connection() as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable(type(exc).__name__) from exc


Conn = Annotated[psycopg.Connection, Depends(get_conn)]
