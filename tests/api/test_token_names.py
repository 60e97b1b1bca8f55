"""Token names are unique among active tokens, in the database (migration 0008): concurrent creates
of one name let exactly one through, and the migration keeps (renames) duplicates it finds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import psycopg
import pytest

from api.auth import Role, TokenNameTaken, create_token, hash_token, issue_token, revoke_token
from ingest.schema.migrate import migrate

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh_url(pg_server) -> Iterator[str]:  # noqa: ANN001
    """A migrated database of this test's own."""
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS fleet_token_names")
        conn.execute("CREATE DATABASE fleet_token_names")
    url = pg_server.get_uri("fleet_token_names")
    with psycopg.connect(url) as conn:
        migrate(conn)
    yield url
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS fleet_token_names WITH (FORCE)")


def test_concurrent_creates_of_one_name_let_exactly_one_through(fresh_url: str) -> None:
    n = 6
    barrier = threading.Barrier(n)
    outcomes: list[str] = []

    def create() -> None:
        with psycopg.connect(fresh_url) as conn:
            barrier.wait()
            try:
                create_token(conn, "ops", Role.ADMIN)
                outcomes.append("created")
            except TokenNameTaken:
                outcomes.append("taken")

    threads = [threading.Thread(target=create) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["created"] + ["taken"] * (n - 1)


def test_replace_rotates_in_one_transaction_and_a_revoked_name_is_free(fresh_url: str) -> None:
    with psycopg.connect(fresh_url) as conn:
        conn.execute("INSERT INTO service_centres (service_centre_id, name) VALUES ('sc-1', 'One')")
        old = create_token(conn, "desk", Role.SERVICE_CENTRE, "sc-1")
        with pytest.raises(TokenNameTaken):
            issue_token(conn, "desk", Role.SERVICE_CENTRE, "sc-1")
        new = issue_token(conn, "desk", Role.SERVICE_CENTRE, "sc-1", replace=True)
        fresh = issue_token(conn, "other", Role.ADMIN, replace=True)
        active = conn.execute("SELECT token_sha256 FROM api_tokens WHERE revoked_at IS NULL").fetchall()
        assert revoke_token(conn, "other") == 1
        create_token(conn, "other", Role.ADMIN)  # the name of a revoked token can be reused
    assert new.replaced == 1 and fresh.replaced == 0
    assert {bytes(r[0]) for r in active} == {hash_token(new.token), hash_token(fresh.token)}
    assert hash_token(old) not in {bytes(r[0]) for r in active}


def test_migration_renames_existing_duplicates_instead_of_failing(
    fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A database from before 0008 may hold active tokens sharing a name: the oldest keeps it,
    newer ones get the first free NAME~N, every token keeps working, and each rename is logged."""
    rows = [  # name, created_at, revoked
        ("ops", "2025-01-01", False),
        ("ops", "2025-01-02", False),
        ("ops", "2025-01-03", False),
        ("ops", "2024-12-01", True),  # revoked: not a duplicate, keeps its name
        ("ops~2", "2025-01-04", False),  # already taken, so the renames skip it
        ("desk", "2025-02-01", False),
        ("desk", "2025-02-02", False),
    ]
    with psycopg.connect(fresh_url) as conn:
        conn.execute("DROP INDEX api_tokens_active_name_key")
        conn.execute("DELETE FROM schema_migrations WHERE version = 8")
        for i, (name, created, revoked) in enumerate(rows):
            conn.execute(
                "INSERT INTO api_tokens (token_sha256, name, role, created_at, revoked_at) "
                "VALUES (%s, %s, 'admin', %s, CASE WHEN %s THEN now() END)",
                (hash_token(f"t{i}"), name, created, revoked),
            )
        conn.commit()
        with caplog.at_level(logging.WARNING, logger="ingest.schema.migrate"):
            report = migrate(conn)
        got = conn.execute(
            "SELECT token_sha256, name, revoked_at IS NOT NULL FROM api_tokens ORDER BY created_at"
        ).fetchall()
    assert report.applied == (8,)
    names = {bytes(sha): (name, revoked) for sha, name, revoked in got}
    assert names == {
        hash_token("t3"): ("ops", True),
        hash_token("t0"): ("ops", False),
        hash_token("t1"): ("ops~3", False),
        hash_token("t2"): ("ops~4", False),
        hash_token("t4"): ("ops~2", False),
        hash_token("t5"): ("desk", False),
        hash_token("t6"): ("desk~2", False),
    }
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3
    assert any("'ops'" in w and "'ops~3'" in w for w in warnings)
