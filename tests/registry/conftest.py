"""A database of the registry tests' own (they import fixed ids), created fresh for each test."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from ingest import migrate

_numbers = itertools.count()


def fresh_database(server_url: str, name: str) -> str:
    """Create (or re-create) database `name` on the server; its URL, not migrated."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return psycopg.conninfo.make_conninfo(server_url, dbname=name)


@pytest.fixture
def registry_url(pg_server_url: str) -> str:
    url = fresh_database(pg_server_url, f"fleet_registry_{next(_numbers)}")
    with psycopg.connect(url) as conn:
        migrate(conn)
    return url
