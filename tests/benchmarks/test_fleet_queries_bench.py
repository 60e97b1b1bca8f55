"""`fleet bench queries` at a small size on a real PostgreSQL: it loads, times every query, and its
exactness check holds after the late backlog (a check that can fail: it compares every vehicle's
driving buckets from the aggregate with the raw rows')."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from api.fleet_queries import FleetQuery
from benchmarks.fleet_queries import QueryBenchConfig, run_query_bench
from ingest.schema.migrate import migrate

pytestmark = pytest.mark.postgres


def test_bench_queries_small(pg_server_url: str) -> None:
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS fleet_bench_queries")
        conn.execute("CREATE DATABASE fleet_bench_queries")
    url = make_conninfo(pg_server_url, dbname="fleet_bench_queries")
    with psycopg.connect(url) as conn:
        migrate(conn)
    report = run_query_bench(QueryBenchConfig(url, vehicles=20, fleets=2, hours=5, repeats=2))
    assert report["storage_mode"] == "native"
    assert set(report["queries"]) == {q.value for q in FleetQuery}
    assert report["queries"]["last-location"]["rows"] == 10  # every vehicle of the fleet
    assert report["backlog"]["refreshed_ranges"] == 2  # one ledger row per late vehicle
    assert report["exact_after_backlog"] is True and report["vehicles_compared"] == 10
