"""The API application as `fleet api` serves it: built from the settings in each worker process.

uvicorn starts `--workers N` processes from an import string, so the app is built by this factory
in each of them, from the FLEET_* environment (`fleet api` puts the embedded database's URL there
before it starts them). Leaves the app itself to `api.app`.
"""

from __future__ import annotations

from fastapi import FastAPI

from api import MapConfig, create_app
from fleet.settings import FleetSettings


def app_from_settings() -> FastAPI:
    """The API for the configured database. Raises RuntimeError when no database URL is set, and
    ValueError for a malformed FLEET_MAP_TILE_URL (`fleet api` checks it before it starts)."""
    settings = FleetSettings()
    if not settings.database_url:
        raise RuntimeError("FLEET_DATABASE_URL is not set (fleet api sets it for its workers)")
    return create_app(
        settings.database_url,
        db_timeout_s=settings.api_db_timeout_s,
        pool_max_size=settings.api_pool_size,
        max_waiting=settings.api_max_waiting,
        map_config=MapConfig(settings.map_tile_url, settings.map_tile_attribution),
    )
