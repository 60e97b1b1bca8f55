"""Database access for requests: the pool an app owns and the connection each request borrows.

Owns: pool settings and turning "no connection to be had" into `DatabaseUnavailable`, so routes
never see psycopg_pool's exceptions. Leaves SQL to `api.repository` and the pool's lifetime to
`api.app`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool, PoolTimeout


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
        kwargs={"autocommit": True},
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
