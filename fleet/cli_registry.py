"""`fleet registry import|export`: the fleet registry from and to TOML or CSV files.

Registered by `fleet.cli`. The rules and SQL are the `registry` package's; this module reads the
files, opens the database and reports.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fleet.cli_options import JsonOpt

registry_app = typer.Typer(
    help="The fleet registry: fleets, models, service centres, owners, vehicles.", no_args_is_help=True
)
_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)


class FileFormat(enum.StrEnum):
    TOML = "toml"
    CSV = "csv"


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.add_typer(registry_app, name="registry")


@registry_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="A .toml file (every kind) or a .csv file (one kind).")],
    kind: Annotated[
        str | None,
        typer.Option(
            help="For CSV: fleets, models, service_centres, owners or vehicles (default: file name)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add or update registry rows (deploy/registry.example.toml). Idempotent: importing the same
    file again changes nothing. Bad rows are reported with their line numbers and the good rows are
    kept; the exit code is 1 if any row was refused."""
    from fleet.runtime import migrated_database
    from registry import RegistryFileError, import_rows, read_registry_file

    try:
        rows, problems = read_registry_file(file, kind)
    except (RegistryFileError, OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    with migrated_database(_settings()) as conn:
        report = import_rows(conn, rows, problems)
    if as_json:
        print(json.dumps({"file": str(file), **report.as_dict()}))
    else:
        for name, counts in report.counts.items():
            if counts.inserted or counts.updated or counts.unchanged:
                print(
                    f"{name}: {counts.inserted} added, {counts.updated} updated, {counts.unchanged} unchanged"
                )
        for problem in report.problems:
            typer.echo(f"refused {file.name} {problem.describe()}", err=True)  # one line each, for grep
    if report.problems:
        raise typer.Exit(1)


@registry_app.command("export")
def export(
    fmt: Annotated[FileFormat, typer.Option("--format", help="toml: one file; csv: one file per kind.")] = (
        FileFormat.TOML
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="TOML: a file (default stdout). CSV: a directory.")
    ] = None,
) -> None:
    """Write the whole registry in the import format (personal data included: an administrator's
    tool). Importing the export gives back the same registry."""
    from fleet.runtime import migrated_database
    from registry import export_rows, write_csv, write_toml

    with migrated_database(_settings()) as conn:
        rows = export_rows(conn)
    if fmt is FileFormat.TOML:
        text = write_toml(rows)
        if output is None:
            print(text, end="")
        else:
            output.write_text(text, encoding="utf-8")
        return
    if output is None:
        raise typer.BadParameter(
            "CSV export writes one file per kind: give a directory", param_hint="--output"
        )
    output.mkdir(parents=True, exist_ok=True)
    for name, kind_rows in rows.items():
        (output / f"{name}.csv").write_text(write_csv(name, kind_rows), encoding="utf-8")
        print(output / f"{name}.csv")
