"""Application assembly: the one place that turns a database URL into a running FastAPI app.

Owns: the app factory and the lifetime of the connection pool and the read audit log's writer
(started at start-up, closed at shutdown).
Errors become problem details (a lost database a 503) in `api.problems`. Leaves routes to
`api.routes`, queries to `api.repository`.
Nothing is built at import time, so tests and servers can create as many apps as they need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.db import open_pool
from api.map_page import MapConfig
from api.problems import install_handlers, problem_openapi
from api.read_audit import ReadAudit
from api.routes import api_router
from api.serving import Admission

API_VERSION = "0.1.0"
DEFAULT_MAX_WAITING = 256  # per worker process; docs/api-serving.md says where it comes from


def create_app(
    database_url: str,
    *,
    db_timeout_s: float = 5.0,
    pool_max_size: int = 10,
    max_waiting: int = DEFAULT_MAX_WAITING,
    map_config: MapConfig | None = None,
) -> FastAPI:
    """Build the API for the database at `database_url`. The database may be down at start-up:
    the pool keeps trying, /health reports 503 and other routes answer 503 until it is back.
    At most `pool_max_size` requests run at once and `max_waiting` wait; the rest are shed with
    503 at once (`api.serving.Admission`). `map_config` sets the map page's tile server (default:
    none, the page draws the roads)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = open_pool(database_url, max_size=pool_max_size, timeout_s=db_timeout_s)
        app.state.read_audit = ReadAudit(database_url)
        app.state.read_audit.start()
        try:
            yield
        finally:
            await run_in_threadpool(app.state.read_audit.close)
            await run_in_threadpool(app.state.pool.close)

    app = FastAPI(title="fleetpulse API", version=API_VERSION, lifespan=lifespan)
    app.state.map_config = map_config or MapConfig()
    app.include_router(api_router)
    install_handlers(app)
    app.openapi = problem_openapi(app, app.openapi)  # type: ignore[method-assign]
    app.add_middleware(Admission, max_active=pool_max_size, max_waiting=max_waiting)
    return app
