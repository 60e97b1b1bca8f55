"""`fleet bench api` at toy size on a real PostgreSQL, through `fleet api --workers 2`: every route
this build has answers 200 under concurrent clients, each response's database time is read from
its Server-Timing header, and the CPU of the API, PostgreSQL and the load generator is metered."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from benchmarks.api_load import ROUTES, ApiBenchConfig, run_api_bench
from ingest.schema.migrate import migrate

pytestmark = pytest.mark.postgres


def test_bench_api_small(pg_server_url: str) -> None:
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS fleet_bench_api")
        conn.execute("CREATE DATABASE fleet_bench_api")
    url = make_conninfo(pg_server_url, dbname="fleet_bench_api")
    with psycopg.connect(url) as conn:
        migrate(conn)
    cfg = ApiBenchConfig(
        url, vehicles=24, hours=1, hazard_sites=50, clients=4, seconds_per_route=0.5, workers=2
    )
    report = run_api_bench(cfg)
    assert report["data"]["samples"] > 0 and report["data"]["alarms"] > 0
    measured = {name: r for name, r in report["routes"].items() if not r.get("absent")}
    assert {"vehicle_latest", "fleet_last_location", "fleet_long_daily"} <= set(measured)
    assert set(report["routes"]) == {r.name for r in ROUTES}
    for name, route in measured.items():
        loaded = route["loaded"]
        assert loaded["requests"] > 0 and set(loaded["statuses"]) == {"200"}, (name, loaded["statuses"])
        assert loaded["db_p50_ms"] is not None and loaded["db_p50_ms"] > 0
        assert loaded["p50_ms"] <= loaded["p95_ms"] <= loaded["p99_ms"]
        assert loaded["cpu_s"]["api"] > 0 and loaded["cpu_s"]["load_generator"] > 0
    with psycopg.connect(url) as conn:  # the bench removes what it wrote
        (left,) = conn.execute("SELECT count(*) FROM vehicles WHERE vehicle_id LIKE 'BENCHQ-%'").fetchone()
    assert left == 0
