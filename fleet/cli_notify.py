"""`fleet notify`: the owner-notification delivery worker, and what was sent (docs/notifications.md).
Registered by `fleet.cli`; the work is `remedies.notifications`'. Owns building the channels from
the settings (a channel whose settings are missing is off) and never prints a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleet.cli_options import JsonOpt, print_report

if TYPE_CHECKING:
    from fleet.settings import FleetSettings
    from remedies.notifications import Channel, Transport

notify_app = typer.Typer(
    help="Owner notifications: run the delivery worker, list what was sent, count it.", no_args_is_help=True
)
_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.add_typer(notify_app, name="notify")


def transports_from_settings(settings: FleetSettings) -> dict[Channel, Transport]:
    """The channels the settings configure: in-car with FLEET_MQTT_URL (the ingest account), e-mail
    with FLEET_NOTIFY_SMTP_HOST and FLEET_NOTIFY_EMAIL_FROM, the webhook with
    FLEET_NOTIFY_WEBHOOK_URL and FLEET_NOTIFY_WEBHOOK_SECRET. Raises ValueError for a setting that
    is present but unusable (the message names it, never its secret)."""
    from contract.endpoint import MqttEndpoint
    from remedies.notifications import Channel
    from remedies.notifications.channels.mqtt import MqttTransport
    from remedies.notifications.channels.smtp import SmtpConfig, SmtpTransport
    from remedies.notifications.channels.webhook import WebhookConfig, WebhookTransport

    out: dict[Channel, Transport] = {}
    if settings.mqtt_url:
        out[Channel.IN_CAR] = MqttTransport(MqttEndpoint.from_url(settings.mqtt_url))
    if settings.notify_smtp_host and settings.notify_email_from:
        password = settings.notify_smtp_password
        out[Channel.EMAIL] = SmtpTransport(
            SmtpConfig(
                host=settings.notify_smtp_host,
                port=settings.notify_smtp_port,
                sender=settings.notify_email_from,
                security=settings.notify_smtp_security,  # type: ignore[arg-type]  # checked by its pattern
                username=settings.notify_smtp_username,
                password=password.get_secret_value() if password else None,
            )
        )
    if settings.notify_webhook_url and settings.notify_webhook_secret:
        secret = settings.notify_webhook_secret.get_secret_value().encode()
        try:
            out[Channel.WEBHOOK] = WebhookTransport(WebhookConfig(settings.notify_webhook_url, secret))
        except ValueError as exc:
            raise ValueError(f"FLEET_NOTIFY_WEBHOOK_*: {exc}") from None
    return out


@notify_app.command("worker")
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Deliveries run at once.")] = 2,
    sweep_every_s: Annotated[
        int, typer.Option(min=1, max=59, help="Seconds between sweeps (held, failed, lost jobs).")
    ] = 10,
    once: Annotated[
        bool, typer.Option("--once", help="Sweep once, deliver what is due now, print the counts, exit.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the delivery worker: jobs of the `notifications` queue in PostgreSQL (procrastinate).
    More workers, on this machine or others, share the queue. Channels come from the settings; one
    whose settings are missing is off and its messages are suppressed (`channel_off`)."""
    import asyncio
    import logging

    import psycopg

    from analytics.tasks import ensure_schema
    from fleet.embedded import servers
    from fleet.runtime import migrate_quietly
    from remedies.notifications import DeliveryConfig, PolicyConfig, counts
    from remedies.notifications.tasks import QUEUE, make_app, sweep_once

    settings = _settings()
    try:
        transports = transports_from_settings(settings)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    config = DeliveryConfig(policy=PolicyConfig(max_per_window=settings.notify_max_per_24h))
    logging.getLogger(__name__).info("notify worker: channels on: %s", sorted(transports) or "none")
    try:
        with servers(settings, start_broker=False) as srv:
            url = srv.database_url
            migrate_quietly(url)
            ensure_schema(url)
            app = make_app(url, transports, config, sweep_every_s=None if once else sweep_every_s)
            if not once:
                app.run_worker(queues=[QUEUE], wait=True, concurrency=concurrency, name="notify")
                return

            async def run_once() -> dict[str, int]:
                async with app.open_async():
                    swept = await sweep_once(app, url, config)
                    await app.run_worker_async(queues=[QUEUE], wait=False, concurrency=concurrency)
                return swept

            swept = asyncio.run(run_once())
            with psycopg.connect(url) as conn:
                report = {"sweep": swept, **counts(conn).as_dict()}
            print_report(report, as_json)
    finally:
        for transport in transports.values():
            transport.close()


@notify_app.command("list")
def list_(
    vehicle: Annotated[str | None, typer.Option(help="The notifications of this vehicle.")] = None,
    owner: Annotated[str | None, typer.Option(help="The notifications of this owner.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """A vehicle's or an owner's notifications, newest first, with each channel's state and every
    change (queued, held, sent, suppressed with its reason, failed attempts with the error). No
    addresses: they stay in the registry."""
    from fleet.runtime import migrated_database
    from remedies.notifications import list_notifications

    if (vehicle is None) == (owner is None):
        raise typer.BadParameter("give --vehicle or --owner (one of them)")
    with migrated_database(_settings()) as conn:
        rows = list_notifications(conn, vehicle_id=vehicle, owner_id=owner, limit=limit)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    if not rows:
        print("no notifications")
    for n in rows:
        states = ", ".join(
            f"{d['channel']}: {d['state']}" + (f" ({d['reason']})" if d["reason"] else "")
            for d in n["deliveries"]
        )
        print(
            f"#{n['notification_id']} {n['created_at']} {n['vehicle_id']} alarm {n['alarm_id']} "
            f"remedy {n['remedy_id']} {n['facts']['fault']}{' CRITICAL' if n['critical'] else ''}: {states}"
        )


@notify_app.command("counts")
def counts_(
    vehicle: Annotated[list[str] | None, typer.Option(help="Only these vehicles (repeat it).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What became of the notifications: sent (per channel), pending, failed, held and suppressed
    by reason, and how many were ever held (quiet hours, driving)."""
    from fleet.runtime import migrated_database
    from remedies.notifications import counts

    with migrated_database(_settings()) as conn:
        report = counts(conn, vehicle_ids=vehicle or None).as_dict()
    print_report(report, as_json)
