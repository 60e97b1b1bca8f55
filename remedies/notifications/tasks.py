"""Delivery as jobs of the task queue (procrastinate, in our PostgreSQL, as `analytics.tasks`), on a
queue of its own, `notifications`.

- `notifications.deliver(notification_id)` runs `delivery.deliver` for one notification. Its
  lock and its queueing lock are `notification:<id>`: never two runs of one notification at once,
  never two waiting (a second defer is a no-op). When a channel failed and its retry is due later
  (the wait doubles with each failure: `DeliveryConfig.backoff_s`), or a hold ends at a known time
  (quiet hours), the job defers its own follow-up for that time. A job never goes back to waiting
  by procrastinate's retry, so a waiting follow-up and a queueing lock never collide: when a job
  fails outright (the database went away), its deliveries stay pending and the sweep defers a
  new one.
- `notifications.sweep` (periodic, every `sweep_every_s`; procrastinate defers it once per instant
  however many workers run): ends the jobs of workers that died (their heartbeat stopped for
  `stalled_after_s`), which frees their notifications' locks; makes failed deliveries due again
  `failed_retry_after_s` after they failed; releases held in-car messages of vehicles that are
  parked now; and defers a job for every notification that has something due.
Nothing is lost while a channel is down: the rows stay, and the jobs come back for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status

from remedies.notifications.channels.base import Transport
from remedies.notifications.delivery import DeliveryConfig, deliver, due_notifications
from remedies.notifications.policy import Channel

QUEUE = "notifications"
DELIVER = "notifications.deliver"
SWEEP = "notifications.sweep"
SWEEP_LOCK = "notifications:sweep"
DEFAULT_CONFIG = DeliveryConfig()
STALLED_AFTER_S = 30.0  # a worker whose heartbeat is older than this is dead (procrastinate's default)


def lock_of(notification_id: int) -> str:
    """The lock and the queueing lock of a notification's jobs."""
    return f"notification:{notification_id}"


def make_app(
    database_url: str,
    transports: Mapping[Channel, Transport],
    config: DeliveryConfig = DEFAULT_CONFIG,
    *,
    sweep_every_s: int | None = 10,
    stalled_after_s: float = STALLED_AFTER_S,
) -> procrastinate.App:
    """The task app of this process, delivering through `transports` (a channel without one is
    switched off). With `sweep_every_s` (1-59), the periodic sweep; it takes a job whose worker's
    heartbeat is older than `stalled_after_s` for the job of a dead worker."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    channels = dict(transports)

    def deliver_notification(notification_id: int) -> dict[str, Any]:
        with psycopg.connect(database_url) as conn:
            result = deliver(conn, notification_id, channels, config)
        if result.next_at is not None:
            defer_delivery(app, notification_id, at=result.next_at)
        return result.as_dict()

    app.task(name=DELIVER, queue=QUEUE)(deliver_notification)
    if sweep_every_s is not None:
        if not 1 <= sweep_every_s <= 59:
            raise ValueError("sweep_every_s must be 1-59")

        async def sweep(timestamp: int) -> dict[str, int]:
            return await sweep_once(app, database_url, config, stalled_after_s=stalled_after_s)

        # No lock: two sweeps at once do no harm, and a sweep of a dead worker must not block the next.
        task = app.task(name=SWEEP, queue=QUEUE, queueing_lock=SWEEP_LOCK)(sweep)
        app.periodic(cron=f"* * * * * */{sweep_every_s}", periodic_id="notifications-sweep")(task)
    return app


def defer_delivery(app: procrastinate.App, notification_id: int, *, at: Any = None) -> bool:
    """Defer the delivery job of a notification (at `at`, a datetime, or now); False when one is
    waiting already. Call it after the transaction of `outbox.enqueue` commits, to send at once
    rather than at the next sweep. Raises psycopg/procrastinate connection errors."""
    lock = lock_of(notification_id)
    try:
        app.configure_task(DELIVER, lock=lock, queueing_lock=lock, schedule_at=at).defer(
            notification_id=notification_id
        )
    except AlreadyEnqueued:
        return False
    return True


async def sweep_once(
    app: procrastinate.App,
    database_url: str,
    config: DeliveryConfig,
    *,
    stalled_after_s: float = STALLED_AFTER_S,
) -> dict[str, int]:
    """One sweep (the periodic task's body): how many stalled jobs it ended, how many
    notifications were due and how many jobs it deferred."""
    stalled = list(
        await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_after_s)
    )
    for job in stalled:
        await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)

    def due() -> list[int]:
        with psycopg.connect(database_url) as conn:
            return due_notifications(conn, config)

    ids = await asyncio.to_thread(due)
    deferred = 0
    for notification_id in ids:
        lock = lock_of(notification_id)
        try:
            await app.configure_task(DELIVER, lock=lock, queueing_lock=lock).defer_async(
                notification_id=notification_id
            )
            deferred += 1
        except AlreadyEnqueued:
            pass
    return {"stalled": len(stalled), "due": len(ids), "deferred": deferred}
