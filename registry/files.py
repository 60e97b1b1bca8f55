"""Registry files: TOML (every kind in one file) and CSV (one kind per file), read with the line
number of each row so that a bad row can be named, and written back in the same shapes.

TOML: one array of tables per kind, `[[fleets]]`, `[[models]]`, `[[service_centres]]`,
`[[owners]]`, `[[vehicles]]` (deploy/registry.example.toml). CSV: a header row of field names; the
kind comes from the file name (`vehicles.csv`) or is given. In CSV a list is `a;b;c`, a model's
detector parameter is a `params.NAME` column, and an empty cell is an absent field.
Owns: parsing and formatting only; validation is `registry.records`.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from registry.records import BY_KIND, KINDS

_TABLE_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_]+)\s*\]\]")


@dataclass(frozen=True)
class RawRow:
    """One row as written: its kind, where it is (line 0 if not known), and its fields."""

    kind: str
    line: int
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class FileProblem:
    line: int
    message: str


class RegistryFileError(ValueError):
    """The file cannot be read at all (not TOML, no header, unknown kind)."""


def read_registry_file(path: Path, kind: str | None = None) -> tuple[list[RawRow], list[FileProblem]]:
    """The rows of a `.toml` or `.csv` file. Raises RegistryFileError or OSError."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".toml":
        return read_toml(text)
    if path.suffix.lower() == ".csv":
        return read_csv(text, kind or path.stem), []
    raise RegistryFileError(f"{path.name}: a registry file is .toml or .csv")


def read_toml(text: str) -> tuple[list[RawRow], list[FileProblem]]:
    """Rows of every known section; an unknown section is a problem, not a failure."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryFileError(f"not valid TOML: {exc}") from exc
    header_lines: dict[str, list[int]] = {}
    for number, text_line in enumerate(text.splitlines(), start=1):
        match = _TABLE_HEADER.match(text_line)
        if match:
            header_lines.setdefault(match.group(1), []).append(number)
    rows: list[RawRow] = []
    problems: list[FileProblem] = []
    for section, value in doc.items():
        lines: list[int] = header_lines.get(section, [])
        if section not in BY_KIND:
            problems.append(FileProblem(lines[0] if lines else 0, f"unknown section {section!r}"))
            continue
        if not isinstance(value, list):
            problems.append(FileProblem(0, f"{section} must be an array of tables ([[{section}]])"))
            continue
        for i, item in enumerate(value):
            line = lines[i] if len(lines) == len(value) else 0
            if not isinstance(item, dict):
                problems.append(FileProblem(line, f"{section} entry {i + 1} is not a table"))
            else:
                rows.append(RawRow(section, line, item))
    return rows, problems


def read_csv(text: str, kind: str) -> list[RawRow]:
    """Rows of one kind. Raises RegistryFileError for an unknown kind or a missing header."""
    if kind not in BY_KIND:
        raise RegistryFileError(f"unknown kind {kind!r}; expected one of {', '.join(BY_KIND)}")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise RegistryFileError("a CSV registry file starts with a header row of field names")
    rows = []
    for record in reader:
        fields: dict[str, Any] = {}
        for name, cell in record.items():
            if name is None:  # more cells than header names
                fields["(extra cells)"] = cell
            elif cell is not None and cell.strip() != "":
                if name.startswith("params."):
                    fields.setdefault("params", {})[name.removeprefix("params.")] = cell
                else:
                    fields[name] = cell
        rows.append(RawRow(kind, reader.line_num, fields))
    return rows


def write_toml(rows_by_kind: Mapping[str, Iterable[Mapping[str, Any]]]) -> str:
    """The TOML file of exported rows, kinds in import order."""
    doc = {k.KIND: list(rows_by_kind[k.KIND]) for k in KINDS if rows_by_kind.get(k.KIND)}
    return tomli_w.dumps(doc)


def write_csv(kind: str, rows: Iterable[Mapping[str, Any]]) -> str:
    """The CSV file of one kind's exported rows (lists as `a;b`, params as `params.NAME`)."""
    flat = []
    for row in rows:
        out: dict[str, Any] = {}
        for name, value in row.items():
            if name == "params":
                out.update({f"params.{k}": v for k, v in value.items()})
            elif isinstance(value, list):
                out[name] = ";".join(map(str, value))
            elif isinstance(value, bool):
                out[name] = "true" if value else "false"
            else:
                out[name] = value
        flat.append(out)
    columns = list(BY_KIND[kind].model_fields)
    extra = sorted({c for row in flat for c in row if c not in columns})
    names = [c for c in columns if c != "params"] + extra
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()
