"""`fleet query NAME --fleet F`: the fleet queries (docs/fleet-queries.md) from the command line, as a
table or JSON. Registered by `fleet.cli`; the queries themselves are `api.fleet_queries`, the same
code the API's /v1/fleets routes run. The command line is an administrator's tool: every fleet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fleet.cli_options import JsonOpt

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.command("query")(query)


def _parse_until(value: str | None) -> dt.datetime | None:
    from api.params import parse_rfc3339

    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--until") from None


def answer_document(answer: Any) -> dict[str, Any]:
    """A fleet answer as the JSON object `--json` prints (the API's shape, times in RFC 3339)."""

    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, dt.datetime) else value

    items = []
    for row in answer.rows:
        item = {k: plain(v) for k, v in dataclasses.asdict(row).items()}
        if hasattr(row, "driving_hours"):
            item["driving_hours"] = row.driving_hours
        if "day" in item:
            item["day"] = row.day.astimezone(dt.UTC).date().isoformat()
        items.append(item)
    return {
        "query": answer.query.value,
        "fleet_id": answer.fleet_id,
        "until": plain(answer.window.until),
        "window_start": plain(answer.window.start),
        "window_end": plain(answer.window.edge),
        "refreshed_ranges": answer.refreshed,
        "items": items,
    }


def query(
    name: Annotated[
        str,
        typer.Argument(
            help="last-location, low-fuel, stationary, long-driving, long-daily or daily-activity."
        ),
    ],
    fleet: Annotated[str, typer.Option("--fleet", help="The registry's fleet id.")],
    until: Annotated[
        str | None,
        typer.Option(help="RFC 3339 date-time with a zone (default: now), e.g. 2026-01-05T10:00:00Z."),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=31, help="daily-activity: UTC days to report.")] = 7,
    no_refresh: Annotated[
        bool,
        typer.Option("--no-refresh", help="Do not aggregate pending (late) data first; report it as stale."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer one fleet query from the last-state table and the 10-minute aggregate. Exits 1 if the
    fleet is not in the registry, 2 for a bad query name or time."""
    from rich.console import Console
    from rich.table import Table

    from api.fleet_queries import FleetQuery, UnknownFleet, run_query
    from fleet.runtime import migrated_database

    try:
        which = FleetQuery(name)
    except ValueError:
        raise typer.BadParameter(
            f"unknown query {name!r}; one of: {', '.join(q.value for q in FleetQuery)}", param_hint="NAME"
        ) from None
    at = _parse_until(until)
    with migrated_database(_settings()) as conn:
        try:
            answer = run_query(conn, which, fleet, until=at, days=days, refresh=not no_refresh)
        except UnknownFleet as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    doc = answer_document(answer)
    if as_json:
        print(json.dumps(doc))
        return
    stale = " (stale buckets left unrefreshed)" if answer.refreshed < 0 else ""
    title = f"{doc['query']} of fleet {doc['fleet_id']} until {doc['until']}{stale}"
    console = Console()
    console.print(title, soft_wrap=True)
    if not doc["items"]:
        console.print("no rows")
        return
    table = Table()
    columns = list(doc["items"][0])
    for column in columns:
        table.add_column(column)
    for item in doc["items"]:
        table.add_row(*("" if item[c] is None else str(item[c]) for c in columns))
    console.print(table)
