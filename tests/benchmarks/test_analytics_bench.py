"""`fleet bench analytics` at toy size: the report has its parts, the pandas baseline raises the
same alarms as the kernels (alarms that were actually raised), and the end-to-end job stores the
alarms the kernels found in memory. Structure and agreement only; speed is measured by the bench
itself and recorded in docs/benchmarks.md, never asserted here."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.analytics_bench import AnalyticsBenchConfig, run_analytics_bench
from fleet.cli import app
from tests.conftest import migrated_fresh_database


def test_kernels_and_pandas_raise_the_same_alarms() -> None:
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "analytics",
            "--vehicles",
            "30",
            "--hours",
            "0.5",
            "--repeats",
            "1",
            "--no-end-to-end",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["signals"] == 25 and data["samples"] == data["rows"] * 25 > 0
    assert set(data["faults_injected"]) >= {"tyre_slow_leak", "sensor_stuck", "charging_fault"}
    assert sum(data["alarms_raised"].values()) >= 3  # the comparison covers alarms actually raised
    kernels, pandas = data["kernels"], data["pandas"]
    assert set(kernels["per_detector_cpu_s"]) == set(kernels["per_detector_samples_per_s"])
    assert len(kernels["per_detector_cpu_s"]) == 7
    assert pandas["same_alarms"] and pandas["alarms_only_kernels"] == pandas["alarms_only_pandas"] == []
    assert pandas["same_transitions"] and pandas["transitions"]["differing"] == 0
    assert pandas["alarms_compared"] == sum(data["alarms_raised"].values())
    assert set(data["targets"]) == {"kernels_samples_per_s_per_core", "speedup_over_pandas"}
    assert "end_to_end" not in data


@pytest.mark.postgres
def test_the_job_through_postgres_stores_the_alarms_found_in_memory(pg_server_url: str) -> None:
    url = migrated_fresh_database(pg_server_url, "fleet_bench_analytics")
    cfg = AnalyticsBenchConfig(vehicles=30, hours=0.5, repeats=1, pandas=False, database_url=url)
    data = run_analytics_bench(cfg)
    e2e = data["end_to_end"]
    assert e2e["rows"] == data["rows"] == e2e["job_report"]["rows_read"]
    assert e2e["alarms_match_in_memory"] and e2e["alarms_stored"] >= 3
    assert set(e2e["timings"]) == {"raw_copy", "raw_vehicle_copy", "raw_table_copy", "job"}
    assert e2e["job_vs_raw_copy"] == pytest.approx(e2e["raw_copy_s"] / e2e["job_s"], rel=0.02)
    assert "end_to_end_vs_raw_copy" in data["targets"]
