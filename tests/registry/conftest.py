"""A database of the registry tests' own (they import fixed ids), created fresh for each test."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from ingest import migrate
from tests.conftest import fresh_database

_numbers = itertools.count()


@pytest.fixture
def registry_url(pg_server_url: str) -> str:
    url = fresh_database(pg_server_url, f"fleet_registry_{next(_numbers)}")
    with psycopg.connect(url) as conn:
        migrate(conn)
    return url
