"""A database of the registry tests' own (they import fixed ids), created fresh for each test."""

from __future__ import annotations

import pytest

from tests.conftest import migrated_fresh_database


@pytest.fixture
def registry_url(pg_server_url: str) -> str:
    return migrated_fresh_database(pg_server_url, "fleet_registry")
