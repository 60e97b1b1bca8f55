"""Application assembly: the one place that turns a database URL into a running FastAPI app.

Owns: the app factory, the connection pool's lifetime (opened at start-up, closed at shutdown) and
the mapping of a lost database to 503. Leaves routes to `api.routes`, queries to `api.repository`.
Nothing is built at import time, so tests and servers can create as many apps as they need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.db import DatabaseUnavailable, open_pool
from api.routes import api_router

API_VERSION = "0.1.0"


def create_app(database_url: str, *, db_timeout_s: float = 5.0, pool_max_size: int = 10) -> FastAPI:
    """Build the API for the database at `database_url`. The database may be down at start-up:
    the pool keeps trying, /health reports 503 and other routes answer 503 until it is back."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = open_pool(database_url, max_size=pool_max_size, timeout_s=db_timeout_s)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.pool.close)

    app = FastAPI(title="fleetpulse API", version=API_VERSION, lifespan=lifespan)
    app.include_router(api_router)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    return app


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "database unavailable"}, status_code=503, headers={"Retry-After": "5"})
