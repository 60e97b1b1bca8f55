"""`fleet` commands of one area, registered by `fleet.cli`. Kept apart so that each area's
commands live next to nothing else's."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the root app and its benchmarks to `fleet bench`."""
