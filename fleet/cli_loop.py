"""The server's OTA and remedy loop on the command line (docs/ota.md §6): `fleet campaigns step`,
`fleet ota check-reports`, `fleet ota audit` and `fleet remedies worker` (the three periodic jobs
on the task queue). Registered by `fleet.cli` onto the `campaigns`, `ota` and `remedies` groups;
the work is `ota.loop`'s, `ota.audit`'s and `remedies.loop_tasks`'. Owns building the loop's
configuration from the settings (FLEET_OTA_REPO_DIR, FLEET_OTA_REPOSITORY_URL, FLEET_MQTT_URL).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleet.cli_options import JsonOpt, print_report
from fleet.cli_ota import ota_app
from fleet.cli_remedies import campaigns_app, remedies_app

if TYPE_CHECKING:
    import psycopg

    from ota.loop import LoopConfig

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    """The commands join groups registered by cli_remedies and cli_ota."""
    global _settings
    _settings = settings


def loop_config(settings: Any) -> LoopConfig:
    """The loop's configuration from the settings. Raises ValueError for an unusable MQTT URL."""
    from contract.endpoint import MqttEndpoint
    from ota.loop import LoopConfig

    endpoint = MqttEndpoint.from_url(settings.mqtt_url) if settings.mqtt_url else None
    return LoopConfig(settings.ota_repo_dir, settings.ota_repository_url, endpoint)


@contextlib.contextmanager
def _database() -> Iterator[tuple[str, psycopg.Connection]]:
    """The migrated database's URL and an autocommit connection (each campaign and each report is a
    transaction of its own)."""
    import psycopg

    from fleet.embedded import servers
    from fleet.runtime import migrate_quietly

    with servers(_settings(), start_broker=False) as srv:
        migrate_quietly(srv.database_url)
        with psycopg.connect(srv.database_url, autocommit=True) as conn:
            yield srv.database_url, conn


@campaigns_app.command("step")
def step(as_json: JsonOpt = False) -> None:
    """Step every approved or running campaign once: start approved ones, let matching vehicles join,
    offer the update to the open wave (recorded, checked against each vehicle's hardware id, then
    published on its command topic), judge the wave. Offers the broker did not take are published
    at the next step."""
    from ota.loop import campaign_step

    config = loop_config(_settings())
    with _database() as (_url, conn):
        report = campaign_step(conn, config)
    print_report(report, as_json)


@ota_app.command("check-reports")
def check_reports(
    limit: Annotated[int, typer.Option(min=1, help="At most this many reports.")] = 10_000,
    as_json: JsonOpt = False,
) -> None:
    """Judge the stored update reports (signature, nonce, replay) and record each accepted one: its
    campaign member's state, the vehicle's software inventory, the audit register."""
    from dataclasses import replace

    from ota.loop import report_step

    config = replace(loop_config(_settings()), report_limit=limit)
    with _database() as (_url, conn):
        report = report_step(conn, config)
    print_report(report, as_json)


@ota_app.command("audit")
def audit(
    vehicle: Annotated[str | None, typer.Option(help="Only this vehicle.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="The newest this many updates.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """The UNECE R156 audit register: per vehicle and update, the software before and after (version
    and SHA-256), the compatibility check and its result, the notices sent to the owner before and
    after, and the result, with times."""
    from ota.audit import register as read_register

    with _database() as (_url, conn):
        entries = read_register(conn, vehicle_id=vehicle, limit=limit)
    if as_json:
        print(json.dumps(entries))
        return
    if not entries:
        print("no updates recorded")
    for e in entries:
        before, after = e["before"], e["after"]
        print(
            f"{e['compatibility']['checked_at']} {e['vehicle_id']} {e['ecu']} {before['version']} -> "
            f"{e['target']['version']}: {e['result']}"
            + (f" at {e['result_at']}" if e["result_at"] else "")
            + f", runs {after['version'] or before['version']}; check: {e['compatibility']['detail']};"
            f" notices {len(e['notices_before'])} before, {len(e['notices_after'])} after"
        )


@remedies_app.command("worker")
def worker(
    every_s: Annotated[int, typer.Option(min=1, max=59, help="Seconds between runs of each job.")] = 30,
    concurrency: Annotated[int, typer.Option(min=1, max=8, help="Jobs run at once.")] = 3,
    once: Annotated[
        bool, typer.Option("--once", help="Run the engine, the campaign step and the report step once, exit.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the loop's periodic jobs on the task queue (`loop` queue in PostgreSQL): the remedy engine,
    the campaign step with its offers, the report step. More workers share the queue; each job has
    a lock, so two never run it at once."""
    from analytics.tasks import ensure_schema
    from ota.loop import campaign_step, report_step
    from remedies.catalogue import load_catalogue
    from remedies.loop_tasks import QUEUE, make_app
    from remedies.run import run_remedies

    settings = _settings()
    try:
        catalogue = load_catalogue(settings.remedy_catalogue)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FLEET_REMEDY_CATALOGUE") from None
    config = loop_config(settings)
    auto = settings.remedy_auto_approve_campaigns
    with _database() as (url, conn):
        if once:
            report = {
                "remedies": run_remedies(conn, catalogue, auto_approve_campaigns=auto).as_dict(),
                "campaigns": campaign_step(conn, config),
                "reports": report_step(conn, config),
            }
            print_report(report, as_json)
            return
        ensure_schema(url)
        app = make_app(
            url, catalogue=catalogue, loop_config=config, auto_approve_campaigns=auto, every_s=every_s
        )
        app.run_worker(queues=[QUEUE], wait=True, concurrency=concurrency, name="loop")
