"""`fleet bench ingest-prepare`: ingest's CPU half on one flush of small messages, no broker and no
database (benchmarks/ingest/prepare_micro.py). Registered by `fleet.cli`."""

from __future__ import annotations

from typing import Annotated

import typer

from fleet.cli_options import JsonOpt, print_report


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    bench_app.command("ingest-prepare")(bench_ingest_prepare)


def bench_ingest_prepare(
    messages: Annotated[int, typer.Option(min=1, help="Messages in the flush.")] = 2_000,
    rows_per_message: Annotated[int, typer.Option(min=1, help="Rows per message (12 signals each).")] = 10,
    vehicles: Annotated[int, typer.Option(min=1, help="Distinct vehicles.")] = 2_000,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs; the best counts.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Seconds to decode, check and prepare one flush (wall and CPU, best of the repeats), with the
    decode (`triage`) and the last-known state (`latest_state`) timed apart."""
    from benchmarks.ingest.prepare_micro import run_prepare_micro

    print_report(run_prepare_micro(messages, rows_per_message, vehicles, repeats), as_json)
