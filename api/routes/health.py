"""Liveness and readiness for load balancers and operators: the only route without auth.

Owns: reporting whether the database answers, and the storage mode it was migrated in. It reveals
nothing about vehicles or tokens.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Response, status
from psycopg_pool import ConnectionPool, PoolTimeout

from api import repository
from api.db import get_pool
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"model": Health, "description": "Database unreachable"}})
def get_health(pool: Annotated[ConnectionPool, Depends(get_pool)], response: Response) -> Health:
    try:
        with pool.connection() as conn:
            mode = repository.read_storage_mode(conn)
    except (PoolTimeout, psycopg.OperationalError):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="degraded", database="unavailable", storage_mode=None)
    return Health(status="ok", database="ok", storage_mode=mode)
