"""The closed loop's periodic jobs on the task queue (procrastinate in our PostgreSQL, built as
`analytics.tasks` builds its app), on a queue of their own, `loop`:

- `loop.remedies`: the remedy engine (`remedies.run.run_remedies`: alarms to remedies, bookings,
  campaigns, owner notifications);
- `loop.campaigns`: the campaign step with its offers (`ota.loop.campaign_step`);
- `loop.reports`: the report step (`ota.loop.report_step`).
Each runs every `every_s` seconds (procrastinate defers a periodic job once per instant however
many workers run) under a lock of its own name and a queueing lock of the same name: two workers
never run one of them at once, and a slow one does not pile up waiting jobs. The data is locked as
well (campaign rows and reports with SKIP LOCKED, one remedy per alarm by a unique key), so a
one-shot command beside the worker does not double-act either. Every job retries with a growing
wait when it fails (a database restart); a broker that is down is not a failure (the offers wait).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import procrastinate
import psycopg

from ota.loop import LoopConfig, campaign_step, report_step
from remedies.catalogue import Catalogue
from remedies.run import run_remedies

QUEUE = "loop"
RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2)
JOBS = ("loop.remedies", "loop.campaigns", "loop.reports")


def make_app(
    database_url: str,
    *,
    catalogue: Catalogue,
    loop_config: LoopConfig,
    auto_approve_campaigns: bool = False,
    every_s: int | None = 30,
) -> procrastinate.App:
    """The task app of this process. With `every_s` (1-59), the three periodic jobs."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))

    def with_conn(work: Callable[[psycopg.Connection], dict[str, Any]]) -> dict[str, Any]:
        with psycopg.connect(database_url, autocommit=True) as conn:
            return work(conn)

    def remedies_job(timestamp: int) -> dict[str, Any]:
        return with_conn(
            lambda c: run_remedies(c, catalogue, auto_approve_campaigns=auto_approve_campaigns).as_dict()
        )

    def campaigns_job(timestamp: int) -> dict[str, Any]:
        return with_conn(lambda c: campaign_step(c, loop_config))

    def reports_job(timestamp: int) -> dict[str, Any]:
        return with_conn(lambda c: report_step(c, loop_config))

    if every_s is not None and not 1 <= every_s <= 59:
        raise ValueError("every_s must be 1-59")
    for name, fn in zip(JOBS, (remedies_job, campaigns_job, reports_job), strict=True):
        task = app.task(name=name, queue=QUEUE, lock=name, queueing_lock=name, retry=RETRY)(fn)
        if every_s is not None:
            app.periodic(cron=f"* * * * * */{every_s}", periodic_id=name)(task)
    return app
