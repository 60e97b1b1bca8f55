"""The fleet queries in TimescaleDB mode (PGlite with TimescaleDB, tests/ingest/test_timescale_mode.py
explains the server): the continuous aggregate, refreshed over the pending ranges, against the
same direct computation over the raw rows, before and after a late backlog. Rows go by INSERT
(that server crashes on COPY FROM STDIN) through ingest's write path on the one connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from api.fleet_queries import FleetQuery, run_query
from ingest import TelemetryStore
from ingest.schema.migrate import StorageMode, migrate
from tests.api import fleet_scenario as fs
from tests.api.test_fleet_queries import as_tuples, check_all
from tests.ingest.test_timescale_mode import tsdb  # noqa: F401  (the PGlite server fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.timescale]


@pytest.fixture(scope="module")
def db(tsdb: psycopg.Connection) -> Iterator[psycopg.Connection]:  # noqa: F811
    assert migrate(tsdb).mode is StorageMode.TIMESCALE
    try:
        yield tsdb
    finally:
        tsdb.rollback()


def test_the_aggregate_is_a_continuous_aggregate_on_epoch_aligned_buckets(db: psycopg.Connection) -> None:
    views = db.execute(
        "SELECT materialized_only FROM timescaledb_information.continuous_aggregates"
        " WHERE view_name = 'telemetry_10m'"
    ).fetchall()
    jobs = db.execute(
        "SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_name = 'telemetry_10m'"
        " ORDER BY proc_name"
    ).fetchall()
    edge = db.execute(
        "SELECT time_bucket(INTERVAL '10 minutes', TIMESTAMPTZ '2025-03-01 10:19:59.999999Z')"
    ).fetchone()
    db.rollback()
    assert views == [(True,)]
    assert jobs == [("policy_refresh_continuous_aggregate",), ("policy_retention",)]
    assert edge == (dt.datetime(2025, 3, 1, 10, 10, tzinfo=dt.UTC),)


def test_fleet_queries_equal_the_raw_rows_before_and_after_late_data(db: psycopg.Connection) -> None:
    scenario = fs.make_scenario(11, vehicles=5, step_s=60)
    fs.register(db, scenario)
    db.commit()
    store = TelemetryStore("(shared)", row_writer="insert", connect=lambda: db)
    fs.deliver(store, scenario.on_time, per_flush=10)
    assert check_all(db, scenario) > 0
    before = [as_tuples(run_query(db, q, "fq-main", until=scenario.end)) for q in FleetQuery]
    fs.deliver(store, scenario.late, per_flush=10)
    assert check_all(db, scenario) > 0
    after = [as_tuples(run_query(db, q, "fq-main", until=scenario.end)) for q in FleetQuery]
    left = db.execute("SELECT count(*) FROM telemetry_10m_pending").fetchone()
    db.commit()
    assert left == (0,)
    assert after != before
