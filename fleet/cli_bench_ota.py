"""`fleet bench ota`: the OTA path measured (benchmarks/ota_install.py, benchmarks/ota_rollout.py;
results in docs/benchmarks.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer


def bench_ota(
    size_mb: Annotated[int, typer.Option(min=1, max=2048, help="Artifact size in MiB.")] = 50,
    repeats: Annotated[int, typer.Option(min=1, max=20, help="Install runs; the medians are reported.")] = 3,
    vehicles: Annotated[
        int, typer.Option(min=0, max=100_000, help="Fleet of the rollout half (0: skip it).")
    ] = 10_000,
    timeout: Annotated[float, typer.Option(min=10, help="Seconds the rollout may take.")] = 1800.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Both halves of the OTA path. The vehicle's: verify (TUF refresh, length and SHA-256 of the
    downloaded artifact) and install (copy into the inactive slot with its fsyncs, slot switch,
    health check) against the floor measured in the same run, `sha256sum` plus `cp` of the same
    file (target: at most 2x); the download through the real repository server beside it. The
    server's: one campaign in waves over `vehicles` vehicles through a real Mosquitto, `fleet
    ingest` and PostgreSQL, every vehicle answering at once with four signed reports; the
    controller's decisions per second against the fleet's report rate, and its lag."""
    from benchmarks.ota_install import bench_install
    from benchmarks.ota_rollout import bench_rollout

    result: dict[str, Any] = {"install": bench_install(size_mb=size_mb, repeats=repeats)}
    if vehicles:
        result["rollout"] = bench_rollout(vehicles=vehicles, timeout_s=timeout)
    if as_json:
        print(json.dumps(result))
    else:
        for half, values in result.items():
            typer.echo(f"[{half}]")
            for key, value in values.items():
                typer.echo(f"  {key:32} {value}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add `fleet bench ota`."""
    bench_app.command("ota")(bench_ota)
