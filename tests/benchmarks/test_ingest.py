"""`fleet bench ingest` and `fleet bench inflation` end to end at toy size, so that they cannot rot."""

from __future__ import annotations

import psycopg
import pytest

from benchmarks.ingest import BenchConfig, run_ingest_bench


@pytest.mark.broker
@pytest.mark.postgres
@pytest.mark.mosquitto
def test_bench_reports_rates_latency_and_exact_storage(pg_url: str) -> None:
    cfg = BenchConfig(
        database_url=pg_url, batches=200, rows_per_batch=20, vehicles=20, flush_messages=50, half_load_s=0.5
    )
    report = run_ingest_bench(cfg)
    assert report["samples"] == 200 * 20 * 12
    assert report["raw_copy_samples_per_s"] > 0 and report["samples_per_s"] > 0
    assert report["ratio"] == pytest.approx(
        report["samples_per_s"] / report["raw_copy_samples_per_s"], rel=0.01
    )
    assert report["raw_copy_s"] == pytest.approx(
        (report["raw_copy_before_s"] + report["raw_copy_after_s"]) / 2, abs=0.002
    )
    assert report["drain_rows_stored"] == report["drain_rows_expected"] == report["drain_rows_distinct"]
    assert report["duplicate_batches"] == 0
    baseline = report["broker_baseline"]  # the broker's own QoS 1 rate on the same messages
    assert (baseline["subscribers"], baseline["messages"]) == (1, 200) and baseline["messages_per_s"] > 0
    broker_ratio = report["messages_per_s"] / baseline["messages_per_s"]
    assert report["broker_ratio"] == pytest.approx(broker_ratio, rel=0.01)
    assert report["target_broker_ratio"] == 0.7
    assert report["half_load"]["p50_latency_ms"] is not None
    assert report["half_load"]["p50_latency_ms"] <= report["half_load"]["p99_latency_ms"]
    with psycopg.connect(pg_url) as conn:  # the bench removes what it wrote
        (left,) = conn.execute(
            "SELECT count(*) FROM vehicles WHERE vehicle_id ~ '^[RADH][0-9]{7}-'"
        ).fetchone()
    assert left == 0


@pytest.mark.broker
@pytest.mark.postgres
@pytest.mark.mosquitto
def test_bench_with_two_workers_drains_everything_and_reports_where_the_time_went(pg_url: str) -> None:
    """Two workers in one share group and two baseline subscribers in another: each side receives
    every message (in one group the broker would split them between both)."""
    cfg = BenchConfig(
        database_url=pg_url, batches=100, rows_per_batch=10, vehicles=20, workers=2, half_load_s=0.5
    )
    report = run_ingest_bench(cfg)
    assert report["drain_rows_stored"] == report["drain_rows_expected"] == report["drain_rows_distinct"]
    baseline = report["broker_baseline"]
    assert (baseline["subscribers"], baseline["messages"]) == (2, 100)
    assert report["target_broker_ratio"] == 0.9
    assert set(report["drain_cpu_s"]) == {"ingest", "postgres", "mosquitto"}
    assert report["drain_cpu_s"]["ingest"] is not None and report["drain_cpu_s"]["mosquitto"] is not None
    assert {"ledger", "vehicles", "rows", "latest", "commit"} <= set(report["drain_statement_s"])


@pytest.mark.broker
@pytest.mark.postgres
@pytest.mark.mosquitto
def test_inflation_bench_stores_every_valid_row_and_stays_under_its_bound(pg_url: str) -> None:
    from benchmarks.ingest.inflation import InflationConfig, run_inflation_bench

    report = run_inflation_bench(
        InflationConfig(database_url=pg_url, bombs=30, wide=2, largest=1, ordinary=5, max_flush_memory_mib=16)
    )
    assert report["rows_stored"] == report["rows_expected"] == 2 * 74_000 + 100_000 + 5 * 600
    assert report["dead_letters_by_reason"] == {"oversized": 30}
    assert report["flushes"] >= 3  # each big frame alone: the cap held
    assert 0 < report["peak_rss_mb"] <= report["documented_bound_mb"]
    with psycopg.connect(pg_url) as conn:  # the bench removes what it wrote
        (left,) = conn.execute("SELECT count(*) FROM vehicles WHERE vehicle_id ~ '^I[0-9]{7}-'").fetchone()
    assert left == 0
