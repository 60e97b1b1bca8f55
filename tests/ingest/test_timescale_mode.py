"""The migrations and ingest's write path in TimescaleDB mode, against a real TimescaleDB: PGlite
(WASM PostgreSQL 17 with TimescaleDB 2.23) served over the wire protocol by tests/pglite/server.mjs.

That server serves one connection at a time and crashes on `COPY ... FROM STDIN`, so this module
uses a single connection (the ingest store borrows it) and loads rows with INSERT. It needs
Node.js and `npm ci --prefix tests/pglite` (.ci/run does it); without them the module is skipped,
or fails when FLEET_TEST_REQUIRE_PGLITE=1 (so CI cannot lose these tests silently).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from contract import TelemetryBatch, topics, wire_v1
from contract.dtc import dtc_message
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from ingest.schema.migrate import (
    MigrationReport,
    StorageMode,
    available_migrations,
    migrate,
    storage_mode,
)
from localservers.embedded import free_port

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


def test_compression_is_segmented_by_vehicle_and_policies_are_scheduled(
    db: psycopg.Connection, first_report: MigrationReport
) -> None:
    settings = db.execute(
        "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc "
        "FROM timescaledb_information.compression_settings WHERE hypertable_name = 'telemetry' "
        "ORDER BY attname"
    ).fetchall()
    assert settings == [("ts", None, 1, False), ("vehicle_id", 1, None, None)]
    jobs = {
        (proc, table): config
        for proc, table, config in db.execute(
            "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs"
        ).fetchall()
    }
    assert jobs[("policy_compression", "telemetry")]["compress_after"] == "7 days"
    assert jobs[("policy_retention", "telemetry")]["drop_after"] == "180 days"
    assert jobs[("policy_retention", "telemetry_hourly")]["drop_after"] == "2 years"
    for view in ("telemetry_hourly", "telemetry_daily"):
        assert jobs[("policy_refresh_continuous_aggregate", view)]["start_offset"] == "32 days"


def test_continuous_aggregates_per_vehicle_per_hour_and_day(
    db: psycopg.Connection, first_report: MigrationReport
) -> None:
    base = dt.datetime(2024, 5, 2, 10, 0, tzinfo=dt.UTC)
    rows = [
        (base + dt.timedelta(minutes=20 * i), "VEH-AGG", 10.0 * (i + 1), 230.0 - i, 1000.0 + i, i == 1)
        for i in range(6)  # 10:00 .. 11:40: two hours, one day
    ]
    with db.transaction(), db.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry (ts, vehicle_id, speed_kmh, tire_fl_kpa, odometer_km, abs_engaged) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )
    db.autocommit = True  # refresh_continuous_aggregate cannot run inside a transaction
    try:
        for view in ("telemetry_hourly", "telemetry_daily"):
            db.execute(f"CALL refresh_continuous_aggregate('{view}', '2024-05-01', '2024-05-04')")
        hourly = db.execute(
            "SELECT bucket, n_rows, speed_avg_kmh, speed_max_kmh, tire_min_kpa, "
            "odometer_max_km - odometer_min_km, abs_engaged_rows FROM telemetry_hourly "
            "WHERE vehicle_id = 'VEH-AGG' ORDER BY bucket"
        ).fetchall()
        daily = db.execute(
            "SELECT bucket, n_rows, speed_max_kmh, abs_engaged_rows FROM telemetry_daily "
            "WHERE vehicle_id = 'VEH-AGG'"
        ).fetchall()
    finally:
        db.autocommit = False
    assert hourly == [
        (base, 3, 20.0, 30.0, 228.0, 2.0, 1),
        (base + dt.timedelta(hours=1), 3, 50.0, 60.0, 225.0, 2.0, 0),
    ]
    assert daily == [(dt.datetime(2024, 5, 2, tzinfo=dt.UTC), 6, 60.0, 1)]


def test_compressed_chunks_stay_readable(db: psycopg.Connection, first_report: MigrationReport) -> None:
    day = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
    with db.transaction(), db.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry (ts, vehicle_id, speed_kmh) VALUES (%s, %s, %s)",
            [(day + dt.timedelta(seconds=i), f"VEH-Z{i % 3}", float(i)) for i in range(30)],
        )
    with db.transaction():
        chunks = db.execute(
            "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('telemetry', "
            "newer_than => '2024-06-01'::timestamptz, older_than => '2024-06-02'::timestamptz) c"
        ).fetchall()
        compressed = db.execute(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry' "
            "AND is_compressed"
        ).fetchone()
        got = db.execute(
            "SELECT vehicle_id, count(*), sum(speed_kmh) FROM telemetry "
            "WHERE ts >= '2024-06-01' AND ts < '2024-06-02' GROUP BY vehicle_id ORDER BY vehicle_id"
        ).fetchall()
    assert len(chunks) == 1 and compressed is not None and compressed[0] >= 1
    assert got == [("VEH-Z0", 10, 135.0), ("VEH-Z1", 10, 145.0), ("VEH-Z2", 10, 155.0)]


def test_maintain_prunes_the_ledger_beyond_its_retention(
    db: psycopg.Connection, first_report: MigrationReport
) -> None:
    with db.transaction():
        db.execute(
            "INSERT INTO ingest_batches (vehicle_id, seq, first_ts, last_ts, n_rows, n_samples) VALUES "
            "('VEH-OLD', 1, now() - interval '40 days', now() - interval '40 days', 1, 1), "
            "('VEH-OLD', 2, now() - interval '1 day', now() - interval '1 day', 1, 1)"
        )
        summary = db.execute("SELECT fleet_maintain()").fetchone()
        left = db.execute("SELECT seq FROM ingest_batches WHERE vehicle_id = 'VEH-OLD'").fetchall()
    assert summary is not None and summary[0].startswith("timescale: ledger pruned")
    assert left == [(2,)]


def test_ingest_write_path_with_late_data_into_a_compressed_chunk(
    db: psycopg.Connection, first_report: MigrationReport
) -> None:
    """Ingest's whole write transaction -- ledger and dedupe, rows, vehicles, last-known state, DTC
    reports, dead letters -- on TimescaleDB. Rows go by INSERT (`row_writer="insert"`) because
    this server crashes on COPY FROM STDIN; the COPY stream itself is tested on PostgreSQL 18."""
    db.commit()
    store = TelemetryStore("(shared)", row_writer="insert", connect=lambda: db)
    vid = "VEH-INGEST"
    noon_ns = (time.time_ns() // DAY_NS - 2) * DAY_NS + DAY_NS // 2  # noon, two days ago
    first = _batch(vid, 1, noon_ns, {SPEED: [10.0, 20.0, 30.0], COOLANT: [90.0, 91.0, 92.0]})
    second = _batch(vid, 2, noon_ns + 3600 * 10**9, {SPEED: [40.0, 50.0]})
    late = _batch(vid, 3, noon_ns - 3600 * 10**9, {SPEED: [5.0], COOLANT: [70.0]})  # same day, earlier
    dtc_payload = dtc_message(vid, noon_ns // 1000, ["P0128"], agent_version="1.0")
    dtc = Envelope(topics.topic_for(vid, topics.DTC), dtc_payload, time.time_ns())
    bad = Envelope(topics.topic_for(vid, topics.TELEMETRY), b"FP\x09junk", time.time_ns())

    stored = store.write(triage([_envelope(first), _envelope(second), dtc]))
    with db.transaction():
        db.execute(
            "SELECT compress_chunk(c) FROM show_chunks('telemetry', newer_than => %s, older_than => %s) c",
            (_at(noon_ns - DAY_NS // 2), _at(noon_ns + DAY_NS // 2)),
        )
    again = store.write(triage([_envelope(first), _envelope(late), bad]))  # a redelivery, late data, junk

    with db.transaction():
        rows = db.execute(
            "SELECT speed_kmh, coolant_temp_c FROM telemetry WHERE vehicle_id = %s ORDER BY ts", (vid,)
        ).fetchall()
        compressed = db.execute(
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'telemetry' AND is_compressed AND range_start <= %s AND range_end > %s",
            (_at(noon_ns), _at(noon_ns)),
        ).fetchone()
        ledger = db.execute(
            "SELECT seq FROM ingest_batches WHERE vehicle_id = %s ORDER BY seq", (vid,)
        ).fetchall()
        latest = db.execute("SELECT signals FROM vehicle_latest WHERE vehicle_id = %s", (vid,)).fetchone()
        codes = db.execute("SELECT codes FROM vehicle_dtc_current WHERE vehicle_id = %s", (vid,)).fetchone()
        dead = db.execute("SELECT reason FROM dead_letters WHERE vehicle_id = %s", (vid,)).fetchall()
    assert (stored.batches, stored.rows, stored.dtc_reports) == (2, 5, 1)
    assert (again.batches, again.rows, again.duplicates, again.dead_letters) == (1, 1, 1, 1)
    assert rows == [(5.0, 70.0), (10.0, 90.0), (20.0, 91.0), (30.0, 92.0), (40.0, None), (50.0, None)]
    assert compressed == (1,)  # the late row went into the compressed chunk, which stays compressed
    assert ledger == [(1,), (2,), (3,)]
    assert latest is not None and latest[0][SPEED]["value"] == 50.0  # late data does not win
    assert latest[0][COOLANT]["value"] == 92.0
    assert codes == (["P0128"],)
    assert dead == [("truncated",)]  # the junk frame, kept in the dead-letter store


DAY_NS = 86_400 * 10**9
SPEED = "Vehicle.Speed"
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"


def _batch(vehicle: str, seq: int, start_ns: int, columns: dict[str, list[float]]) -> TelemetryBatch:
    n = len(next(iter(columns.values())))
    ts = start_ns + np.arange(n, dtype=np.int64) * 10**9
    return TelemetryBatch(vehicle, seq, ts, {k: np.asarray(v, float) for k, v in columns.items()})


def _envelope(batch: TelemetryBatch) -> Envelope:
    return Envelope(
        topics.topic_for(batch.vehicle_id, topics.TELEMETRY), wire_v1.encode(batch), time.time_ns()
    )


def _at(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
