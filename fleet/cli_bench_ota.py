"""`fleet bench ota`: the OTA path measured (benchmarks/ota_install.py; results in docs/benchmarks.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def bench_ota(
    size_mb: Annotated[int, typer.Option(min=1, max=2048, help="Artifact size in MiB.")] = 50,
    repeats: Annotated[int, typer.Option(min=1, max=20, help="Runs; the medians are reported.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The agent's verify (TUF refresh, length and SHA-256 of the downloaded artifact) and install
    (copy into the inactive slot with its fsyncs, slot switch, health check) against the floor
    measured in the same run: `sha256sum` plus `cp` of the same file (and with `sync`). Target: at
    most 2x the floor. The download through the real repository server is reported beside it."""
    from benchmarks.ota_install import bench_install

    result = bench_install(size_mb=size_mb, repeats=repeats)
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            typer.echo(f"{key:28} {value}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add `fleet bench ota`."""
    bench_app.command("ota")(bench_ota)
