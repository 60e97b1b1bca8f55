"""Apply the numbered SQL migrations in this folder, once each, in order.

Owns: choosing the storage mode (TimescaleDB when the extension can be used, native partitioning
otherwise), remembering it, and recording applied versions in `schema_migrations`. Running it
again is a no-op; concurrent runs are serialised by an advisory lock.

A migration that has to change data (e.g. rename rows so that a new unique index fits) says so
with `RAISE WARNING`; those warnings are logged here, so `fleet migrate` shows them.

Files: `NNNN_name.sql` holds what both modes share; `NNNN_name.timescale.sql` or
`NNNN_name.native.sql` holds the mode-specific part. Never edit an applied migration: add one.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)
SCHEMA_DIR = Path(__file__).parent
_LOCK_KEY = 0x6C656574  # arbitrary, constant: "leet"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class StorageMode(enum.StrEnum):
    TIMESCALE = "timescale"
    NATIVE = "native"


@dataclass(frozen=True)
class MigrationReport:
    mode: StorageMode
    applied: tuple[int, ...]
    current_version: int


def available_migrations() -> list[tuple[int, str]]:
    found = []
    for path in SCHEMA_DIR.glob("*.sql"):
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), match.group(2)))
    return sorted(found)


def migrate(conn: psycopg.Connection, *, allow_timescale: bool = True) -> MigrationReport:
    """Bring the database to the newest schema. Raises psycopg.Error if a migration fails; the
    failing migration is rolled back and earlier ones stay applied."""
    conn.autocommit = True
    conn.add_notice_handler(_log_warning)
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, mode text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        mode = _stored_mode(conn) or _choose_mode(conn, allow_timescale)
        applied = []
        for version, name in available_migrations():
            if version in done:
                continue
            with conn.transaction():
                _apply(conn, version, name, mode)
            applied.append(version)
        current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return MigrationReport(mode, tuple(applied), int(current[0]) if current else 0)
    finally:
        conn.remove_notice_handler(_log_warning)
        if not conn.closed:  # a lost session already released its advisory lock
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            conn.autocommit = False


def _log_warning(diag: psycopg.errors.Diagnostic) -> None:
    """Log what a migration reports with RAISE WARNING (NOTICEs, e.g. "already exists", are noise)."""
    if diag.severity_nonlocalized == "WARNING":
        log.warning("migration: %s", diag.message_primary)


def _apply(conn: psycopg.Connection, version: int, name: str, mode: StorageMode) -> None:
    stem = f"{version:04d}_{name}"
    conn.execute((SCHEMA_DIR / f"{stem}.sql").read_text())
    variant = SCHEMA_DIR / f"{stem}.{mode.value}.sql"
    if variant.exists():
        conn.execute(variant.read_text())
    conn.execute(
        "INSERT INTO fleet_meta (key, value) VALUES ('storage_mode', %s) ON CONFLICT (key) DO NOTHING",
        (mode.value,),
    )
    conn.execute(
        "INSERT INTO schema_migrations (version, name, mode) VALUES (%s, %s, %s)", (version, name, mode.value)
    )


def _stored_mode(conn: psycopg.Connection) -> StorageMode | None:
    if conn.execute("SELECT to_regclass('fleet_meta')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT value FROM fleet_meta WHERE key = 'storage_mode'").fetchone()
    return StorageMode(row[0]) if row else None


def _choose_mode(conn: psycopg.Connection, allow_timescale: bool) -> StorageMode:
    if not allow_timescale:
        return StorageMode.NATIVE
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not available:
        return StorageMode.NATIVE
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        if conn.closed:
            # TimescaleDB refuses to load without shared_preload_libraries with a FATAL, which ends
            # the session: there is no connection left to fall back to native mode on.
            raise psycopg.OperationalError(
                "the server closed the connection on CREATE EXTENSION timescaledb (usually: the "
                "extension is installed but not in shared_preload_libraries). Preload it and restart "
                f"PostgreSQL, or migrate with allow_timescale=False. Server said: {exc}"
            ) from exc
        # Listed but not usable (e.g. insufficient privilege): fall back to native.
        return StorageMode.NATIVE
    return StorageMode.TIMESCALE


def storage_mode(conn: psycopg.Connection) -> StorageMode:
    """The mode the database was migrated in. Raises LookupError before the first migration."""
    mode = _stored_mode(conn)
    if mode is None:
        raise LookupError("database is not migrated: run `fleet migrate`")
    return mode
