"""`fleet roads import` (the road network whose speed limits the driving scores use) and
`fleet trips` (trips and per-vehicle driving scores). Registered by `fleet.cli`; the work is the
`analytics` package's (docs/driving-score.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fleet.cli_options import JsonOpt, print_report

roads_app = typer.Typer(help="The road network the driving scores snap to.", no_args_is_help=True)
_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.add_typer(roads_app, name="roads")
    app.command("trips")(trips)


@roads_app.command("import")
def import_roads(
    file: Annotated[
        Path, typer.Argument(help="GeoJSON FeatureCollection of LineStrings with `maxspeed` (km/h).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Load a road network (e.g. the `network.geojson` of a `fleet simulate` report) into
    `road_segments`. Idempotent: importing the same file again changes nothing; nothing is deleted."""
    from analytics.driving.roads import parse_road_geojson
    from analytics.road_store import import_road_lines
    from fleet.runtime import migrated_database

    try:
        lines = parse_road_geojson(json.loads(file.read_text()))
    except (OSError, ValueError, AttributeError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
    with migrated_database(_settings()) as conn:
        result = import_road_lines(conn, lines)
    print_report({"file": str(file), **vars(result)}, as_json)


def trips(
    vehicle: Annotated[str | None, typer.Option(help="Only this vehicle.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many trips, newest first.")] = (
        50
    ),
    as_json: JsonOpt = False,
) -> None:
    """Per-vehicle driving scores (distance-weighted over their trips) and the newest trips, as the
    analysis job (`fleet analyze`) stored them."""
    from analytics.trip_store import read_trips, read_vehicle_scores
    from fleet.runtime import migrated_database

    with migrated_database(_settings()) as conn:
        scores = read_vehicle_scores(conn, vehicle)
        found = read_trips(conn, vehicle, limit)
    if as_json:
        print(json.dumps({"vehicles": scores, "trips": found}, default=str))
        return
    for s in scores:
        print(
            f"{s['vehicle_id']}: score {s['score']}, {s['trips']} trips, {s['distance_km']} km,"
            f" harsh brakes/100 km {s['harsh_brakes_per_100km']}, speeding share {s['speeding_share']}"
        )
    for t in found:
        print(
            f"{t['vehicle_id']} {t['started_at']} .. {t['ended_at']}: {t['distance_km']} km,"
            f" score {t['score']},"
            f" brakes {t['harsh_brakes']}, accelerations {t['harsh_accelerations']},"
            f" corners {t['harsh_corners']}, speeding {t['speeding_share']}"
        )
