"""Reading and writing the registry tables: an idempotent import that keeps the good rows and
names each bad one, and an export that imports back to the same registry.

Owns: the cross-row rules (ids unique within a file, references to rows that exist in the
database or earlier in the import, one vehicle per VIN) and the SQL. One transaction per import;
a row the database refuses anyway is retried alone in a savepoint, so it cannot take the others
down. Importing never deletes: a row absent from the file stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pydantic import ValidationError

from registry.files import FileProblem, RawRow
from registry.hours import format_opening_hours, format_quiet_hours, parse_opening_hours
from registry.records import BY_KIND, KINDS, Owner, Record, ServiceCentre, Vehicle

# Per kind: the table and the columns written, in the order of `_db_row`.
_TABLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "fleets": ("fleets", "fleet_id", ("fleet_id", "name", "operator")),
    "models": (
        "vehicle_models",
        "model_id",
        (
            "model_id",
            "make",
            "model",
            "powertrain",
            "cylinders",
            "tyre_placard_kpa",
            "tank_l",
            "battery_kwh",
            "params",
        ),
    ),
    "service_centres": (
        "service_centres",
        "service_centre_id",
        (
            "service_centre_id",
            "name",
            "lat",
            "lon",
            "skills",
            "capacity_per_day",
            "opening_hours",
            "time_zone",
        ),
    ),
    "owners": (
        "owners",
        "owner_id",
        (
            "owner_id",
            "name",
            "email",
            "phone",
            "consent_email",
            "consent_sms",
            "consent_in_car",
            "time_zone",
            "quiet_hours_start",
            "quiet_hours_end",
            "language",
        ),
    ),
    "vehicles": (
        "vehicles",
        "vehicle_id",
        ("vehicle_id", "vin", "model_id", "fleet_id", "service_centre_id", "owner_id"),
    ),
}
_SQL_TYPES = {
    "cylinders": "smallint", "tyre_placard_kpa": "double precision", "tank_l": "double precision",
    "battery_kwh": "double precision",
    "params": "jsonb", "lat": "double precision", "lon": "double precision", "skills": "text[]",
    "capacity_per_day": "integer", "opening_hours": "jsonb", "consent_email": "boolean",
    "consent_sms": "boolean", "consent_in_car": "boolean", "quiet_hours_start": "time",
    "quiet_hours_end": "time",
}  # fmt: skip


@dataclass(frozen=True)
class RowProblem:
    kind: str
    line: int
    key: str | None
    message: str

    def describe(self) -> str:
        where = f"line {self.line}" if self.line else "(line unknown)"
        return f"{where}: {self.kind}" + (f" {self.key!r}" if self.key else "") + f": {self.message}"


@dataclass
class KindCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    counts: dict[str, KindCounts] = field(default_factory=lambda: {k.KIND: KindCounts() for k in KINDS})
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def rows_kept(self) -> int:
        return sum(c.inserted + c.updated + c.unchanged for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": {k: vars(c) for k, c in self.counts.items()},
            "rows_kept": self.rows_kept,
            "problems": [
                {"line": p.line, "kind": p.kind, "key": p.key, "message": p.message} for p in self.problems
            ],
        }


def validate_rows(rows: Iterable[RawRow]) -> tuple[list[tuple[int, Record]], list[RowProblem]]:
    """Each row validated alone: (line, record) for the good ones, a problem for each bad one."""
    good, problems = [], []
    for raw in rows:
        kind = BY_KIND[raw.kind]
        try:
            good.append((raw.line, kind.model_validate(dict(raw.fields))))
        except ValidationError as exc:
            key = raw.fields.get(kind.KEY)
            problems.append(RowProblem(raw.kind, raw.line, str(key) if key else None, _explain(exc)))
    return good, problems


def import_rows(
    conn: psycopg.Connection, rows: Sequence[RawRow], file_problems: Sequence[FileProblem] = ()
) -> ImportReport:
    """Validate and upsert `rows` in one transaction; every refused row is in the report's problems.
    Raises psycopg.OperationalError if the database is unreachable."""
    report = ImportReport(problems=[RowProblem("file", p.line, None, p.message) for p in file_problems])
    good, problems = validate_rows(rows)
    report.problems.extend(problems)
    return _import_valid(conn, good, report)


def import_records(conn: psycopg.Connection, records: Sequence[Record]) -> ImportReport:
    """Upsert records built in code (the simulator's fleet), by the same rules as a file's rows."""
    return _import_valid(conn, [(0, r) for r in records], ImportReport())


def _import_valid(
    conn: psycopg.Connection, good: list[tuple[int, Record]], report: ImportReport
) -> ImportReport:
    with conn.transaction():
        known: dict[str, set[str]] = {}
        for kind in KINDS:
            mine = _unique([(line, r) for line, r in good if r.KIND == kind.KIND], report)
            if kind is Vehicle:
                mine = _with_references(conn, mine, known, report)
            _upsert(conn, kind.KIND, mine, report)
            known[kind.KIND] = {r.key for _, r in mine}
    report.problems.sort(key=lambda p: (p.line, p.kind))
    return report


def _unique(rows: list[tuple[int, Record]], report: ImportReport) -> list[tuple[int, Record]]:
    first: dict[str, int] = {}
    kept = []
    for line, record in rows:
        if record.key in first:
            report.problems.append(
                RowProblem(
                    record.KIND, line, record.key, f"defined again (first at line {first[record.key]})"
                )
            )
        else:
            first[record.key] = line
            kept.append((line, record))
    return kept


def _with_references(
    conn: psycopg.Connection, rows: list[tuple[int, Record]], known: dict[str, set[str]], report: ImportReport
) -> list[tuple[int, Record]]:
    """The vehicle rows whose references exist (in the database or earlier in this import) and
    whose VIN no other vehicle has."""
    exists = {
        kind: known.get(kind, set()) | _existing_keys(conn, kind) for kind in Vehicle.REFERENCES.values()
    }
    vins = [r.vin for _, r in rows if isinstance(r, Vehicle) and r.vin]
    vin_owner: dict[str, str] = dict(
        conn.execute("SELECT vin, vehicle_id FROM vehicles WHERE vin = ANY(%s)", (vins,)).fetchall()
    )
    kept: list[tuple[int, Record]] = []
    for line, record in rows:
        assert isinstance(record, Vehicle)
        missing = [
            f"{name} {getattr(record, name)!r} is not in the registry"
            for name, kind in Vehicle.REFERENCES.items()
            if getattr(record, name) is not None and getattr(record, name) not in exists[kind]
        ]
        if record.vin and vin_owner.get(record.vin, record.vehicle_id) != record.vehicle_id:
            missing.append(f"VIN {record.vin} belongs to vehicle {vin_owner[record.vin]!r}")
        if missing:
            report.problems.append(RowProblem("vehicles", line, record.key, "; ".join(missing)))
            continue
        if record.vin:
            vin_owner[record.vin] = record.vehicle_id
        kept.append((line, record))
    return kept


def _existing_keys(conn: psycopg.Connection, kind: str) -> set[str]:
    table, key, _ = _TABLES[kind]
    return {row[0] for row in conn.execute(f"SELECT {key} FROM {table}")}  # noqa: S608 (names are ours)


def _upsert(
    conn: psycopg.Connection, kind: str, rows: list[tuple[int, Record]], report: ImportReport
) -> None:
    """Insert or update the rows; a row equal to the stored one is left alone (and counted)."""
    if not rows:
        return
    flags, detail = _in_savepoint(conn, kind, [r for _, r in rows])
    refused = 0
    if flags is None:  # the database refused something the checks above let through: find it
        flags = []
        for line, record in rows:
            one, detail = _in_savepoint(conn, kind, [record])
            if one is None:
                refused += 1
                report.problems.append(
                    RowProblem(kind, line, record.key, f"refused by the database: {detail}")
                )
            else:
                flags.extend(one)
    counts = report.counts[kind]
    counts.inserted += sum(flags)
    counts.updated += len(flags) - sum(flags)
    counts.unchanged += len(rows) - refused - len(flags)


def _in_savepoint(
    conn: psycopg.Connection, kind: str, records: list[Record]
) -> tuple[list[bool] | None, str]:
    try:
        with conn.transaction():
            return _write(conn, kind, records), ""
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        return None, str(exc).splitlines()[0][:300]


def _write(conn: psycopg.Connection, kind: str, records: list[Record]) -> list[bool]:
    """One upsert statement; True per inserted row, False per updated one (unchanged rows are
    not returned)."""
    table, key, columns = _TABLES[kind]
    typed = ", ".join(f"{c} {_SQL_TYPES.get(c, 'text')}" for c in columns)
    names = ", ".join(columns)
    changes = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    before, after = (", ".join(f"{side}.{c}" for c in columns) for side in ("cur", "excluded"))
    differs = f"({before}) IS DISTINCT FROM ({after})"
    statement = (
        f"INSERT INTO {table} AS cur ({names})"
        f" SELECT {names} FROM jsonb_to_recordset(%s::jsonb) AS r({typed})"
        f" ORDER BY {key} ON CONFLICT ({key}) DO UPDATE SET {changes}, updated_at = now() WHERE {differs}"
        " RETURNING (xmax = 0)"
    )
    document = json.dumps([_db_row(r) for r in records])
    return [bool(row[0]) for row in conn.execute(statement, (document,)).fetchall()]  # type: ignore[arg-type]


def _db_row(record: Record) -> dict[str, Any]:
    row = record.model_dump(mode="json")
    if isinstance(record, ServiceCentre):
        row["opening_hours"] = parse_opening_hours(record.opening_hours)
    if isinstance(record, Owner):
        quiet = record.quiet()
        row.pop("quiet_hours")
        row["quiet_hours_start"], row["quiet_hours_end"] = (None, None) if quiet is None else map(str, quiet)
    return row


def export_rows(conn: psycopg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every registry row by kind, ordered by id, in the import shape (personal data included:
    an export is an administrator's tool)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        table, key, columns = _TABLES[kind.KIND]
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            stored = cur.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}").fetchall()
        rows = []
        for row in stored:
            if kind is ServiceCentre:
                row["opening_hours"] = format_opening_hours(row["opening_hours"])
            if kind is Owner:
                start, end = row.pop("quiet_hours_start"), row.pop("quiet_hours_end")
                row["quiet_hours"] = None if start is None else format_quiet_hours(start, end)
            rows.append(kind.model_construct(**row).row() if _legacy(kind, row) else kind(**row).row())
        out[kind.KIND] = rows
    return out


def _legacy(kind: type[Record], row: dict[str, Any]) -> bool:
    """A row that predates the registry (a centre or model named before it existed) does not meet
    today's rules; it is exported as stored, so that the export still shows it."""
    return (kind is ServiceCentre and not row["skills"]) or row.get("powertrain") == "unknown"


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)
