"""Scale-out: the analysis jobs as tasks of procrastinate, a task queue that lives in PostgreSQL.

Why this engine: jobs, locks and retries are rows in the database the data already lives in, so a
second machine scales out by starting more workers against the same database, with nothing else
to run. The work:
- `analytics.vehicles(partition, partitions)`: one partition of the vehicles (a stable hash of
  the id, `analytics.job.partition_of`), with its own watermark. Each partition's jobs carry the
  lock `analytics:vehicles:P/N`, so two workers never analyse one partition at the same time, and
  a queueing lock of the same name, so a slow partition does not pile up waiting jobs.
- `analytics.fleet()`: the firmware test and the road-hazard map, under the lock `analytics:fleet`.
- `analytics.round` (periodic, every `every_s` seconds): defers one job per partition and one
  fleet job. procrastinate defers a periodic task once per instant however many workers run.
Every job retries with a growing wait when it fails (a database restart, a deadlock).
"""

from __future__ import annotations

from typing import Any

import procrastinate
import psycopg

from analytics.job import run_fleet_analysis, run_vehicle_analysis
from analytics.suite import default_detectors

QUEUE = "analytics"
RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2)
_config: dict[str, Any] = {"database_url": None, "settle_s": 10.0}


def vehicles_lock(partition: int, partitions: int) -> str:
    return f"analytics:vehicles:{partition}/{partitions}"


FLEET_LOCK = "analytics:fleet"


def _url() -> str:
    url = _config["database_url"]
    if not url:
        raise RuntimeError("analytics.tasks: make_app() was not called in this process")
    return str(url)


def analyse_vehicles(partition: int, partitions: int) -> dict[str, Any]:
    with psycopg.connect(_url()) as conn:
        report = run_vehicle_analysis(
            conn,
            default_detectors(),
            settle_s=_config["settle_s"],
            partition=partition,
            partitions=partitions,
        )
    return report.as_dict()


def analyse_fleet() -> dict[str, Any]:
    with psycopg.connect(_url()) as conn:
        return run_fleet_analysis(conn, settle_s=_config["settle_s"]).as_dict()


def make_app(
    database_url: str, *, partitions: int, settle_s: float = 10.0, every_s: int | None = None
) -> procrastinate.App:
    """The task app of this process. With `every_s`, the periodic round that defers the jobs."""
    _config.update(database_url=database_url, settle_s=settle_s)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    app.task(name="analytics.vehicles", queue=QUEUE, retry=RETRY)(analyse_vehicles)
    app.task(name="analytics.fleet", queue=QUEUE, retry=RETRY)(analyse_fleet)
    if every_s is not None:

        def analytics_round(timestamp: int) -> int:
            return defer_round(app, partitions)

        task = app.task(name="analytics.round", queue=QUEUE, queueing_lock="analytics:round")(analytics_round)
        app.periodic(cron=f"* * * * * */{every_s}", periodic_id="analytics-round")(task)
    return app


def defer_round(app: procrastinate.App, partitions: int) -> int:
    """One job per partition and one fleet job, each unless one is already waiting; how many
    were deferred."""
    deferred = 0
    for p in range(partitions):
        lock = vehicles_lock(p, partitions)
        try:
            app.configure_task("analytics.vehicles", lock=lock, queueing_lock=lock).defer(
                partition=p, partitions=partitions
            )
            deferred += 1
        except procrastinate.exceptions.AlreadyEnqueued:
            pass
    try:
        app.configure_task("analytics.fleet", lock=FLEET_LOCK, queueing_lock=FLEET_LOCK).defer()
        deferred += 1
    except procrastinate.exceptions.AlreadyEnqueued:
        pass
    return deferred


def ensure_schema(database_url: str) -> bool:
    """Create procrastinate's tables when the database has none; whether it did."""
    with psycopg.connect(database_url) as conn:
        (exists,) = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()  # type: ignore[misc]
    if exists:
        return False
    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=database_url))
    with app.open():
        app.schema_manager.apply_schema()
    return True
