"""The write path against a real PostgreSQL (native mode): validation outcomes, idempotency of
quarantined batches, late data and the last-known state, and the native aggregates."""

from __future__ import annotations

import time

import numpy as np
import psycopg
import pytest

from contract import TelemetryBatch, wire_v1
from contract.signals import BY_PATH
from contract.timestamps import datetime_of_ns
from ingest import TelemetryStore
from ingest.latest_state import latest_signals
from ingest.pipeline import Envelope, triage

pytestmark = pytest.mark.postgres

SPEED = "Vehicle.Speed"
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"


def _batch(vehicle: str, seq: int, start_ns: int, **cols: list[float]) -> TelemetryBatch:
    n = len(next(iter(cols.values())))
    ts = start_ns + np.arange(n, dtype=np.int64) * 10**8
    return TelemetryBatch(
        vehicle, seq, ts, {BY_PATH[p].vss_path: np.asarray(v, float) for p, v in cols.items()}
    )


def _envelope(b: TelemetryBatch) -> Envelope:
    return Envelope(f"fleet/v1/{b.vehicle_id}/telemetry", wire_v1.encode(b), time.time_ns())


def _vid(tag: str) -> str:
    return f"{tag}-{time.time_ns() % 10**9}"


def test_out_of_range_batch_is_stored_with_nulls_and_dead_lettered_once(pg_url: str) -> None:
    vid, now = _vid("RANGE"), time.time_ns() - 10**9
    hot = _batch(vid, 1, now, **{SPEED: [10, 20, 30], COOLANT: [90, 250, 95]})
    store = TelemetryStore(pg_url)
    try:
        first = store.write(triage([_envelope(hot)]))
        again = store.write(triage([_envelope(hot)]))  # a redelivery
    finally:
        store.close()
    assert (first.batches, first.rows, first.samples, first.dead_letters) == (1, 3, 5, 1)
    assert first.dead_reasons == ("out_of_range",)
    assert (again.batches, again.duplicates, again.dead_letters) == (0, 1, 0)
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute(
            "SELECT speed_kmh, coolant_temp_c FROM telemetry WHERE vehicle_id = %s ORDER BY ts", (vid,)
        ).fetchall()
        letters = conn.execute(
            "SELECT reason, detail, payload FROM dead_letters WHERE vehicle_id = %s", (vid,)
        ).fetchall()
    assert stored == [(10.0, 90.0), (20.0, None), (30.0, 95.0)]
    assert [(r, bytes(p)) for r, _, p in letters] == [("out_of_range", wire_v1.encode(hot))]
    assert "coolant_temp_c" in letters[0][1]


def test_late_data_never_hides_newer_values_in_the_last_known_state(pg_url: str) -> None:
    vid, now = _vid("LATE"), time.time_ns() - 60 * 10**9
    newer = _batch(vid, 2, now, **{SPEED: [80.0, 81.0]})
    older = _batch(vid, 1, now - 30 * 10**9, **{SPEED: [10.0, 11.0], COOLANT: [70.0, 71.0]})
    store = TelemetryStore(pg_url)
    try:
        store.write(triage([_envelope(newer)]))
        store.write(triage([_envelope(older)]))
        store.write(triage([_envelope(_batch(vid, 3, now + 10**10, **{SPEED: [90.0]}))]))  # in order again
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:
        (signals,) = conn.execute(
            "SELECT signals FROM vehicle_latest WHERE vehicle_id = %s", (vid,)
        ).fetchone()
        (rows,) = conn.execute("SELECT count(*) FROM telemetry WHERE vehicle_id = %s", (vid,)).fetchone()
    assert signals[SPEED]["value"] == 90.0  # newest speed wins
    assert signals[COOLANT]["value"] == 71.0  # only the late batch had coolant: it fills the gap
    assert rows == 5  # late data is stored, not rejected


def test_ledger_times_and_the_last_known_state_are_stored_exactly(pg_url: str) -> None:
    """What the flush sends as Unix µs and as JSON text arrives as the times and the signals object
    `latest_signals` describes: microseconds, whole-number floats, booleans and float32 values."""
    vid, now = _vid("EXACT"), time.time_ns() - 60 * 10**9 + 123_456_000
    abs_path = "Vehicle.ADAS.ABS.IsEngaged"
    first = _batch(vid, 1, now, **{SPEED: [12.345678329467773, 50.0], abs_path: [1.0, 0.0]})
    second = _batch(vid, 2, now + 10**9 + 1000, **{COOLANT: [90.5]})
    store = TelemetryStore(pg_url)
    try:
        prepared = store.prepare(triage([_envelope(first), _envelope(second)]))
        store.write_prepared(prepared)
    finally:
        store.close()
    [(_, newest, expected)] = latest_signals(prepared)
    with psycopg.connect(pg_url) as conn:
        ledger = conn.execute(
            "SELECT seq, first_ts, last_ts FROM ingest_batches WHERE vehicle_id = %s ORDER BY seq", (vid,)
        ).fetchall()
        ts, signals = conn.execute(
            "SELECT ts, signals FROM vehicle_latest WHERE vehicle_id = %s", (vid,)
        ).fetchone()
    at = [datetime_of_ns(int(b.ts_ns[i]) // 1000 * 1000) for b in (first, second) for i in (0, -1)]
    assert ledger == [(1, at[0], at[1]), (2, at[2], at[3])]
    assert ts == newest == at[3]
    assert signals == expected
    assert signals[SPEED] == {"value": 50.0, "ts": at[1].isoformat()}
    assert signals[abs_path]["value"] == 0.0 and signals[COOLANT]["value"] == 90.5


def test_reject_policy_dead_letters_unknown_vehicles_without_a_ledger_entry(pg_url: str) -> None:
    vid = _vid("UNKNOWN")
    store = TelemetryStore(pg_url, unknown_vehicles="reject")
    try:
        result = store.write(triage([_envelope(_batch(vid, 1, time.time_ns() - 10**9, **{SPEED: [1.0]}))]))
    finally:
        store.close()
    assert (result.batches, result.dead_reasons) == (0, ("unknown_vehicle",))
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM ingest_batches WHERE vehicle_id = %s", (vid,)
        ).fetchone() == (0,)


def test_native_aggregates_are_refreshed_by_maintain(pg_url: str) -> None:
    vid = _vid("AGG")
    hour_ns = (time.time_ns() // (3600 * 10**9) - 1) * 3600 * 10**9  # the previous full hour
    store = TelemetryStore(pg_url)
    try:
        store.write(triage([_envelope(_batch(vid, 1, hour_ns + 10**9, **{SPEED: [10.0, 30.0, 50.0]}))]))
        summary = store.maintain()
    finally:
        store.close()
    assert summary.startswith("native:")
    with psycopg.connect(pg_url) as conn:
        hourly = conn.execute(
            "SELECT n_rows, speed_avg_kmh, speed_max_kmh FROM telemetry_hourly WHERE vehicle_id = %s", (vid,)
        ).fetchall()
        daily = conn.execute("SELECT n_rows FROM telemetry_daily WHERE vehicle_id = %s", (vid,)).fetchall()
    assert hourly == [(3, 30.0, 50.0)]
    assert daily == [(3,)]


def test_insert_row_writer_stores_exactly_what_copy_stores(pg_url: str) -> None:
    """The INSERT fallback (for servers without COPY FROM STDIN) is row-for-row the same as COPY."""
    now = time.time_ns() - 10**9
    cols = {SPEED: [10.0, float("nan"), 30.0], COOLANT: [90.0, 91.0, float("nan")]}
    abs_path = "Vehicle.ADAS.ABS.IsEngaged"
    got = {}
    for writer in ("copy", "insert"):
        vid = _vid(f"WRITER-{writer}")
        batch = _batch(vid, 1, now, **cols, **{abs_path: [1.0, 0.0, float("nan")]})
        store = TelemetryStore(pg_url, row_writer=writer)  # type: ignore[arg-type]
        try:
            store.write(triage([_envelope(batch)]))
        finally:
            store.close()
        with psycopg.connect(pg_url) as conn:
            got[writer] = conn.execute(
                "SELECT ts - min(ts) OVER (), speed_kmh, coolant_temp_c, abs_engaged FROM telemetry "
                "WHERE vehicle_id = %s ORDER BY ts",
                (vid,),
            ).fetchall()
    assert got["copy"] == got["insert"]
    assert [r[1:] for r in got["copy"]] == [(10.0, 90.0, True), (None, 91.0, False), (30.0, None, None)]


def test_a_batch_the_database_refuses_is_dead_lettered_and_the_rest_is_stored(pg_url: str) -> None:
    """The one-by-one fallback: a trigger stands in for any data the database refuses."""
    good, bad = _vid("GOOD"), _vid("REFUSED")
    now = time.time_ns() - 10**9
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION refuse_test_vehicle() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF NEW.vehicle_id = '{bad}' THEN RAISE EXCEPTION 'refused by test'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_test_vehicle BEFORE INSERT ON telemetry "
            "FOR EACH ROW EXECUTE FUNCTION refuse_test_vehicle()"
        )
    store = TelemetryStore(pg_url)
    try:
        result = store.write(
            triage([_envelope(_batch(v, 1, now, **{SPEED: [1.0, 2.0]})) for v in (good, bad)])
        )
    finally:
        store.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse_test_vehicle ON telemetry")
            conn.execute("DROP FUNCTION refuse_test_vehicle()")
    assert (result.batches, result.rows, result.dead_reasons) == (1, 2, ("storage_rejected",))
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute(
            "SELECT vehicle_id, count(*) FROM telemetry WHERE vehicle_id IN (%s, %s) GROUP BY 1", (good, bad)
        ).fetchall()
        (detail,) = conn.execute(
            "SELECT detail FROM dead_letters WHERE vehicle_id = %s AND reason = 'storage_rejected'", (bad,)
        ).fetchone()
    assert stored == [(good, 2)]
    assert "refused by test" in detail
