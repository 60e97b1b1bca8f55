"""The migrations in TimescaleDB mode, against a real TimescaleDB: PGlite (WASM PostgreSQL 17 with
TimescaleDB 2.23) served over the wire protocol by tests/pglite/server.mjs.

That server serves one connection at a time and crashes on `COPY ... FROM STDIN`, so this module
uses a single connection and loads rows with INSERT. It needs Node.js and `npm ci --prefix
tests/pglite` (.ci/run does it); without them the module is skipped, or fails when
FLEET_TEST_REQUIRE_PGLITE=1 (so CI cannot lose these tests silently).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fleet.embedded import free_port
from ingest.schema.migrate import (
    MigrationReport,
    StorageMode,
    available_migrations,
    migrate,
    storage_mode,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timescale]

PGLITE_DIR = Path(__file__).resolve().parents[1] / "pglite"
START_TIMEOUT_S = 30


def _wait_ready(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """Wait for the server's "ready" line; return what it printed if it never came."""
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == "ready":
                ready.set()
                return

    threading.Thread(target=read, daemon=True).start()
    if ready.wait(timeout_s):
        return ""
    return "".join(seen) or "(no output)"


@pytest.fixture(scope="module")
def tsdb() -> Iterator[psycopg.Connection]:
    """The one connection to a fresh, in-memory PGlite+TimescaleDB server."""
    unavailable = pytest.fail if os.environ.get("FLEET_TEST_REQUIRE_PGLITE") == "1" else pytest.skip
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed: the TimescaleDB tests run PGlite under Node.js")
    if not (PGLITE_DIR / "node_modules" / "@unni-craftsman" / "pglite").is_dir():
        unavailable("tests/pglite/node_modules is missing: run `npm ci --prefix tests/pglite`")
    port = free_port()
    proc = subprocess.Popen(
        [node, str(PGLITE_DIR / "server.mjs"), str(port)],
        cwd=PGLITE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        problem = _wait_ready(proc, START_TIMEOUT_S)
        if problem:
            raise RuntimeError(f"PGlite server did not start within {START_TIMEOUT_S} s: {problem}")
        conn = psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres password=x dbname=postgres sslmode=disable",
            connect_timeout=10,
        )
        try:
            yield conn
        finally:
            conn.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def first_report(tsdb: psycopg.Connection) -> MigrationReport:
    return migrate(tsdb)


@pytest.fixture
def db(tsdb: psycopg.Connection, first_report: MigrationReport) -> Iterator[psycopg.Connection]:
    """The migrated database; whatever a test leaves open is rolled back so the next can migrate."""
    try:
        yield tsdb
    finally:
        tsdb.rollback()


def test_migrate_chooses_timescale_and_applies_everything(
    db: psycopg.Connection, first_report: MigrationReport
) -> None:
    versions = tuple(v for v, _ in available_migrations())
    assert first_report.mode is StorageMode.TIMESCALE
    assert first_report.applied == versions
    assert first_report.current_version == versions[-1]
    assert storage_mode(db) is StorageMode.TIMESCALE
    modes = {row[0] for row in db.execute("SELECT mode FROM schema_migrations")}
    assert modes == {"timescale"}
    assert db.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() == (1,)


def test_second_migrate_is_a_noop(db: psycopg.Connection, first_report: MigrationReport) -> None:
    before = db.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()
    db.rollback()
    again = migrate(db)
    assert again.mode is StorageMode.TIMESCALE
    assert again.applied == ()
    assert again.current_version == first_report.current_version
    after = db.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert after == before


def test_telemetry_is_a_hypertable_with_daily_chunks(
    db: psycopg.Connection, first_report: MigrationReport
) -> None:
    row = db.execute(
        "SELECT d.column_name, d.time_interval FROM timescaledb_information.hypertables h "
        "JOIN timescaledb_information.dimensions d USING (hypertable_schema, hypertable_name) "
        "WHERE h.hypertable_name = 'telemetry'"
    ).fetchone()
    assert row == ("ts", dt.timedelta(days=1))


def test_inserted_telemetry_is_readable_and_chunked_by_day(
    db: psycopg.Connection, first_report: MigrationReport
) -> None:
    day = dt.datetime(2024, 3, 1, 23, 0, tzinfo=dt.UTC)
    rows = [
        (day + dt.timedelta(minutes=30 * i), "VEH-TS", 50.0 + i, 48.1 + i / 1000, 11.5, i % 2 == 0)
        for i in range(4)  # 23:00 .. 00:30: two calendar days, so two chunks
    ]
    with db.transaction(), db.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry (ts, vehicle_id, speed_kmh, latitude_deg, longitude_deg, abs_engaged) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )
    got = db.execute(
        "SELECT ts, vehicle_id, speed_kmh, latitude_deg, longitude_deg, abs_engaged FROM telemetry "
        "WHERE vehicle_id = 'VEH-TS' ORDER BY ts"
    ).fetchall()
    chunks = db.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry'"
    ).fetchone()
    assert got == rows
    assert chunks == (2,)


def test_ensure_partitions_is_a_noop_under_timescale(
    db: psycopg.Connection, first_report: MigrationReport
) -> None:
    created = db.execute("SELECT fleet_ensure_partitions(current_date - 2, current_date + 7)").fetchone()
    assert created == (0,)
