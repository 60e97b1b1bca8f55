"""Options and output that many `fleet` commands share, so each is declared once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
MosquittoOpt = Annotated[str | None, typer.Option(help="Path of the mosquitto binary.")]


def print_report(report: Mapping[str, Any], as_json: bool) -> None:
    """A command's result: one JSON object, or one `key: value` line per field."""
    if as_json:
        print(json.dumps(report))
        return
    for key, value in report.items():
        print(f"{key}: {value}")
