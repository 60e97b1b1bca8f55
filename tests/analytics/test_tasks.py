"""Scale-out on the task queue: `fleet analyze --workers 2 --partitions 4` gives the alarms and the
hazard map that one process gives, every partition's job succeeds under its own lock, and a second
round adds nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from analytics.job import partition_of, run_analysis
from analytics.suite import default_detectors
from tests.analytics.hazard_data import store_run
from tests.analytics.simulated import recent_morning_unix_s, simulate, standard_scenarios
from tests.conftest import migrated_fresh_database

pytestmark = pytest.mark.postgres


def _alarms_and_map(url: str) -> tuple[list[tuple], list[tuple]]:
    with psycopg.connect(url) as conn:
        alarms = conn.execute(
            "SELECT vehicle_id, fault, raised_at, cleared_at FROM alarms ORDER BY 1, 2, 3"
        ).fetchall()
        sites = conn.execute(
            "SELECT kind, round(lat::numeric, 5), round(lon::numeric, 5) FROM hazard_sites"
            " WHERE state = 'confirmed' ORDER BY 1, 2, 3"
        ).fetchall()
    return alarms, sites


def _analyze(url: str, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env["FLEET_DATABASE_URL"] = url
    result = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "analyze", *args, "--settle-s", "0", "--json"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_workers_on_partitions_give_what_one_process_gives(pg_server_url: str) -> None:
    scenario = standard_scenarios(1, seed=77, duration_s=1500.0, vehicles=(60, 60))[0]
    run = simulate(scenario, start_unix_s=recent_morning_unix_s())
    one = migrated_fresh_database(pg_server_url, "fleet_tasks_one")
    many = migrated_fresh_database(pg_server_url, "fleet_tasks_many")
    for url in (one, many):
        store_run(url, run)
    with psycopg.connect(one) as conn:
        run_analysis(conn, default_detectors(), settle_s=0.0)
    report = _analyze(many, "--workers", "2", "--partitions", "4")
    assert report["jobs_by_status"] == {"succeeded": 5} and report["failed_workers"] == 0
    alarms, sites = _alarms_and_map(many)
    assert (alarms, sites) == _alarms_and_map(one)
    assert alarms, "the scenario's faults raise alarms"
    assert len({partition_of(v, 4) for v, *_ in alarms}) > 1  # the work was really split
    with psycopg.connect(many) as conn:
        locks = {r[0] for r in conn.execute("SELECT lock FROM procrastinate_jobs").fetchall()}
    assert locks == {f"analytics:vehicles:{p}/4" for p in range(4)} | {"analytics:fleet"}
    again = _analyze(many, "--workers", "1", "--partitions", "4")
    assert again["jobs_by_status"] == {"succeeded": 10}
    assert _alarms_and_map(many) == (alarms, sites)


def test_follow_runs_a_round_periodically_until_stopped(pg_server_url: str) -> None:
    import signal
    import time

    url = migrated_fresh_database(pg_server_url, "fleet_tasks_follow")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env["FLEET_DATABASE_URL"] = url
    args = ["analyze", "--workers", "2", "--partitions", "2", "--follow", "--every-s", "2", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet.cli", *args], env=env, stdout=subprocess.PIPE, text=True
    )
    rounds = 0
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and rounds < 2:
            time.sleep(1)
            with psycopg.connect(url) as conn:
                if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone() != (None,):
                    (rounds,) = conn.execute(
                        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'analytics.round'"
                        " AND status = 'succeeded'"
                    ).fetchone()  # type: ignore[misc]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert rounds >= 2
    report = json.loads(out.strip().splitlines()[-1])
    assert report["failed_workers"] == 0 and report["jobs_by_status"].get("succeeded", 0) >= 2 * 4
