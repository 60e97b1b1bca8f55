"""The loop as procrastinate periodic jobs (two workers at once on the real PostgreSQL, each job with
its lock) and as one-shot commands with --json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import procrastinate
import psycopg
import pytest
from typer.testing import CliRunner

from analytics.tasks import ensure_schema
from fleet.cli import app as fleet_app
from ota.loop import LoopConfig
from remedies.catalogue import load_catalogue
from remedies.loop_tasks import JOBS, QUEUE, make_app
from tests.conftest import migrated_fresh_database
from tests.ota.loop_helpers import insert_campaign, publish_target, rows, seed_vehicles, wait_until
from tests.task_worker import running_worker

pytestmark = pytest.mark.postgres
URL = "https://ota.example.com/"


def test_two_workers_run_the_periodic_jobs_without_double_acting(pg_server_url: str, tmp_path: Path) -> None:
    url = migrated_fresh_database(pg_server_url, "ota_loop_jobs")
    ensure_schema(url)
    repo = publish_target(tmp_path)
    vids = [f"JOB-{i}" for i in range(5)]
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {v: "ecm-b12" for v in vids})
        insert_campaign(conn, [100.0])
    config = LoopConfig(repo, URL, None)

    def an_app() -> procrastinate.App:
        return make_app(url, catalogue=load_catalogue(), loop_config=config, every_s=1)

    first, second = an_app(), an_app()
    for job in JOBS:  # each job carries its lock and queueing lock
        task = first.tasks[job]
        assert (task.lock, task.queueing_lock, task.queue) == (job, job, QUEUE)
    with (
        running_worker(first, QUEUE, concurrency=3, name="loop-1"),
        running_worker(second, QUEUE, concurrency=3, name="loop-2"),
    ):
        assert wait_until(lambda: rows(url, "SELECT count(*) FROM update_offers") == [(5,)], timeout_s=30)
        assert wait_until(
            lambda: {j for (j,) in rows(url, "SELECT DISTINCT task_name FROM procrastinate_jobs"
                                        " WHERE status = 'succeeded'")} == set(JOBS),
            timeout_s=30,
        )  # fmt: skip
    assert rows(url, "SELECT count(DISTINCT vehicle_id), count(*) FROM update_offers") == [(5, 5)]
    assert rows(url, "SELECT count(*) FROM ota_audit WHERE event = 'offered'") == [(5,)]
    assert rows(url, "SELECT DISTINCT state FROM campaign_vehicles") == [("offered",)]
    # Procrastinate defers each periodic instant once, whatever the number of workers.
    dupes = rows(
        url,
        "SELECT task_name, periodic_id, defer_timestamp FROM procrastinate_periodic_defers"
        " GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )
    assert dupes == []


def test_the_one_shot_commands(pg_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = migrated_fresh_database(pg_server_url, "ota_loop_cli")
    repo = publish_target(tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {"CLI-1": "ecm-b12", "CLI-2": "other-hw"})
        insert_campaign(conn, [100.0])
    for name in [k for k in os.environ if k.startswith("FLEET_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FLEET_DATABASE_URL", url)
    monkeypatch.setenv("FLEET_OTA_REPO_DIR", str(repo))
    monkeypatch.setenv("FLEET_OTA_REPOSITORY_URL", URL)
    runner = CliRunner()

    def fleet(*args: str) -> object:
        result = runner.invoke(fleet_app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    step = fleet("campaigns", "step")
    assert step["started"] == [1] and step["offers"] == 1 and len(step["refused"]) == 1  # type: ignore[index]
    assert step["publish"]["unpublished"] == 1 and "no broker" in step["publish"]["errors"][0]  # type: ignore[index]
    assert fleet("ota", "check-reports") == {
        "verdicts": {}, "recorded": 0, "not_in_campaign": 0, "inventory_updated": 0, "caught_up": 0,
        "deferred": 0,
    }  # fmt: skip
    (entry,) = fleet("ota", "audit", "--vehicle", "CLI-2")  # type: ignore[misc]
    assert entry["result"] == "not_offered" and "other-hw" in entry["compatibility"]["detail"]
    (entry,) = fleet("ota", "audit", "--vehicle", "CLI-1")  # type: ignore[misc]
    assert entry["result"] == "in_progress" and entry["before"]["version"] == "4.2.0"
    once = fleet("remedies", "worker", "--once")
    assert set(once) == {"remedies", "campaigns", "reports"}  # type: ignore[arg-type]
    for group, command in (
        ("campaigns", "step"),
        ("ota", "check-reports"),
        ("ota", "audit"),
        ("remedies", "worker"),
    ):
        assert runner.invoke(fleet_app, [group, command, "--help"]).exit_code == 0
