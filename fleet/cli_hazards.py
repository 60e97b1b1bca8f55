"""`fleet hazards`: the road-hazard map from the database, as a table, GeoJSON or H3 cells.
Registered by `fleet.cli`; the map is built by `fleet analyze` (the `analytics` package)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fleet.cli_options import JsonOpt

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)
FORMATS = ("table", "geojson", "h3")


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.command("hazards")(hazards)


def hazards(
    fmt: Annotated[str, typer.Option("--format", help="table, geojson or h3.")] = "table",
    resolution: Annotated[int, typer.Option(min=0, max=15, help="H3 resolution with --format h3.")] = 9,
    every_state: Annotated[
        bool, typer.Option("--all", help="Also candidates, withdrawn and expired sites, not only confirmed.")
    ] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The road-hazard map: confirmed potholes, slippery stretches and dangerous junctions, with
    their confidence and counts. No vehicle id or trajectory is in it."""
    from analytics.hazard_store import site_rows
    from analytics.hazards.export import cells, geojson, properties
    from fleet.runtime import migrated_database

    if fmt not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="--format")
    with migrated_database(_settings()) as conn:
        sites = site_rows(conn, states=None if every_state else ("confirmed",))
    if fmt == "geojson":
        text = json.dumps(geojson(sites))
    elif fmt == "h3":
        text = json.dumps({"resolution": resolution, "cells": cells(sites, resolution)})
    elif as_json:
        text = json.dumps([properties(s) | {"lat": s["lat"], "lon": s["lon"]} for s in sites])
    else:
        text = _table(sites)
    if output is not None:
        output.write_text(text + "\n")
        print(f"{len(sites)} hazard sites written to {output}")
    else:
        print(text)


def _table(sites: list[dict[str, Any]]) -> str:
    lines = [f"{'id':>6} {'kind':9} {'state':10} {'conf':>5} {'veh':>4} {'rate':>5}  position"]
    for s in sites:
        rate = (s["event_passes"] / s["passes"]) if s["passes"] else 0.0
        where = f"{s['lat']:.6f},{s['lon']:.6f}" + (
            f" ({2 * s['half_length_m']:.0f} m)" if s["half_length_m"] else ""
        )
        head = f"{s['site_id']:>6} {s['kind']:9} {s['state']:10} {s['confidence']:5.2f} {s['vehicles']:>4}"
        lines.append(f"{head} {rate:5.2f}  {where}")
    return "\n".join(lines) if sites else "no hazard sites"


HAZARDS_SCHEMA = "fleetpulse.hazards.v1"


def export_hazards(database_url: str, path: Path) -> int:
    """Write every hazard site (all states, with the intervals it was on the map) as JSON, for
    scoring a simulator run and drawing its map."""
    import psycopg

    from analytics.hazard_store import site_rows

    with psycopg.connect(database_url) as conn:
        sites = site_rows(conn)
    path.write_text(json.dumps({"schema": HAZARDS_SCHEMA, "sites": sites}, default=str, indent=1))
    return len(sites)


def load_hazards(path: Path) -> list[dict[str, Any]]:
    """The sites of a hazards.json. Raises OSError or ValueError (not such a file)."""
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or doc.get("schema") != HAZARDS_SCHEMA:
        raise ValueError(f"{path} is not a fleetpulse hazards file")
    return list(doc["sites"])
