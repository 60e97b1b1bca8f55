"""Several ingest workers starting together on a fresh database (native mode): what each runs at
start-up (`migrate_quietly`, then `TelemetryStore.ensure_partitions`) and `fleet_maintain()` may
all run at once, each on its own connection, and none of them fails.

Before migration 0007 the partition function raced: every caller saw a day's partition missing,
all ran CREATE TABLE, and all but one failed (unique violation on pg_type) -- the worker crash.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from fleet.runtime import migrate_quietly
from ingest import TelemetryStore
from ingest.schema.migrate import available_migrations, migrate

pytestmark = pytest.mark.postgres

CALLERS = 6
DAYS = 10  # ensure_partitions' default window: today - 2 .. today + 7
_names = itertools.count()


@pytest.fixture
def fresh_url(pg_server_url: str) -> Iterator[str]:
    """An empty database of its own on the session's server (dropped afterwards)."""
    name = f"fleet_start_{next(_names)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    yield make_conninfo(pg_server_url, dbname=name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _all_at_once(jobs: list[Callable[[], object]]) -> tuple[list[object], list[BaseException]]:
    """Run the jobs on threads released together by a barrier; return results and errors."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = []
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results.append(job())
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def _partitions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'telemetry'::regclass AND c.relname ~ '^telemetry_p[0-9]{8}$' "
            "ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def _worker_start(url: str) -> int:
    """What `fleet ingest` runs before serving (fleet/cli_ingest.py)."""
    migrate_quietly(url)
    store = TelemetryStore(url)
    try:
        return store.ensure_partitions()
    finally:
        store.close()


def test_workers_starting_together_on_a_fresh_database_all_succeed(fresh_url: str) -> None:
    created, errors = _all_at_once([lambda: _worker_start(fresh_url)] * CALLERS)
    assert errors == []
    assert sorted(created) == [0] * (CALLERS - 1) + [DAYS]  # one caller made them, the rest waited
    assert len(_partitions(fresh_url)) == DAYS
    with psycopg.connect(fresh_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [v for v, _ in available_migrations()]


def test_concurrent_partition_callers_move_default_rows_exactly_once(fresh_url: str) -> None:
    """Rows that arrived before their day's partition existed wait in the default partition; with
    partition creation and `fleet_maintain()` racing, each row is moved once and none is lost."""
    with psycopg.connect(fresh_url) as conn:
        migrate(conn)
        with conn.transaction():
            conn.execute(
                "INSERT INTO telemetry (ts, vehicle_id, speed_kmh) SELECT current_date + 3 + "
                "i * interval '1 minute', 'VEH-EARLY', i FROM generate_series(0, 99) i"
            )

    def ensure() -> object:
        with psycopg.connect(fresh_url) as conn:
            sql = "SELECT fleet_ensure_partitions(current_date - 2, current_date + 7)"
            return conn.execute(sql).fetchone()

    def maintain() -> object:
        with psycopg.connect(fresh_url) as conn:
            return conn.execute("SELECT fleet_maintain()").fetchone()

    _, errors = _all_at_once([ensure, maintain] * (CALLERS // 2))
    assert errors == []
    assert len(_partitions(fresh_url)) == DAYS
    with psycopg.connect(fresh_url) as conn:
        where = conn.execute(
            "SELECT tableoid::regclass::text, count(*) FROM telemetry "
            "WHERE vehicle_id = 'VEH-EARLY' GROUP BY 1"
        ).fetchall()
        day = conn.execute("SELECT to_char(current_date + 3, 'YYYYMMDD')").fetchone()
    assert day is not None
    assert where == [(f"telemetry_p{day[0]}", 100)]
