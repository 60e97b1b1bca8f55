"""The telemetry reader against a real database in both storage modes (native partitions on
PostgreSQL 18, a TimescaleDB hypertable on PGlite): rows written by ingest's own writers (binary COPY;
INSERT on PGlite, which cannot take COPY FROM STDIN) come back exactly as a plain SELECT returns
them, NaN for NULL and times in ns. The stream decoder's refusals are tested on hand-made bytes.

Each database test runs in a transaction that is rolled back, so nothing is left behind, except the
test through ingest's store, which commits like ingest does and uses vehicle ids of its own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.telemetry_reader import (
    COPY_SIGNATURE,
    PG_EPOCH_US,
    CopyFormatError,
    load_vehicle_params,
    parse_copy_rows,
    read_columns,
    vehicles_with_new_data,
)
from contract import TelemetryBatch, topics, wire_v1
from contract.signals import SIGNALS, WireType
from ingest import TelemetryStore
from ingest.copy_binary import RowBlock, encode_copy_binary
from ingest.pipeline import Envelope, triage
from ingest.row_writers import copy_rows, insert_rows
from ingest.schema.migrate import StorageMode, migrate, storage_mode
from tests.ingest.test_timescale_mode import tsdb  # noqa: F401  # the PGlite+TimescaleDB server fixture

SPEED = "Vehicle.Speed"  # real
LATITUDE = "Vehicle.CurrentLocation.Latitude"  # double precision
ABS = next(s.vss_path for s in SIGNALS if s.column == "abs_engaged")  # boolean
TYRE_FL = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"  # real
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
SIGNAL_OF = {s.vss_path: s for s in SIGNALS}
_UNIX = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_unique = itertools.count()


# ---------------------------------------------------------------------------------------------
# Fixtures: one connection per storage mode, and ingest's row writer for it
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["native", "timescale"])
def mode_conn(request: pytest.FixtureRequest) -> Iterator[tuple[str, psycopg.Connection]]:
    """(mode, connection) to a migrated database; every test rolls back what it leaves open."""
    if request.param == "native":
        with psycopg.connect(request.getfixturevalue("pg_url")) as conn:
            yield "native", conn
        return
    conn = request.getfixturevalue("tsdb")
    migrate(conn)
    conn.autocommit = False
    yield "timescale", conn


@pytest.fixture
def db(mode_conn: tuple[str, psycopg.Connection]) -> Iterator[psycopg.Connection]:
    _, conn = mode_conn
    try:
        yield conn
    finally:
        conn.rollback()


def _write(conn: psycopg.Connection, block: RowBlock) -> None:
    """Ingest's writer for the server: binary COPY, or INSERT on PGlite (no COPY FROM STDIN)."""
    if storage_mode(conn) is StorageMode.TIMESCALE:
        insert_rows(conn, block)
    else:
        copy_rows(conn, encode_copy_binary(block))


def _block(vehicle: list[str], ts_us: list[int], values: dict[str, list[float | None]]) -> RowBlock:
    return RowBlock(
        np.array(ts_us, np.int64),
        np.array([v.encode("ascii") for v in vehicle]),
        {k: np.array([np.nan if x is None else x for x in v], np.float64) for k, v in values.items()},
    )


def _expected(
    conn: psycopg.Connection,
    ids: list[str],
    paths: list[str],
    since_us: list[int | None] | None = None,
    until_us: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """What a plain SELECT returns, turned into the columns' shape by Python (slow and obvious)."""
    columns = [SIGNAL_OF[p].column for p in paths]
    select = ", ".join(["vehicle_id", "ts", *columns])
    # binary results: a real's text form is its shortest decimal, which Python would read as a
    # different float64 than the stored float32 (1.3792914e+08 vs 137929136)
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(f"SELECT {select} FROM telemetry WHERE vehicle_id = ANY(%s)", (ids,)).fetchall()
    keep = []
    for row in rows:
        k = ids.index(row[0])
        us = (row[1] - _UNIX) // dt.timedelta(microseconds=1)
        low = since_us[k] if since_us else None
        if (low is None or us >= low) and (until_us is None or us < until_us):
            keep.append((k, us, *row[2:]))
    keep.sort(key=lambda r: (r[0], r[1]))
    vehicle = np.array([r[0] for r in keep], np.int32)
    ts_ns = np.array([r[1] * 1000 for r in keep], np.int64)
    values = {
        p: np.array([np.nan if r[2 + j] is None else float(r[2 + j]) for r in keep], np.float64)
        for j, p in enumerate(paths)
    }
    return vehicle, ts_ns, values


def _assert_same(cols, vehicle, ts_ns, values) -> None:  # noqa: ANN001
    np.testing.assert_array_equal(cols.vehicle, vehicle)
    np.testing.assert_array_equal(cols.ts_ns, ts_ns)
    assert cols.vehicle.dtype == np.int32 and cols.ts_ns.dtype == np.int64
    assert list(cols.values) == list(values)
    for path, expected in values.items():
        assert cols.values[path].dtype == np.float64
        np.testing.assert_array_equal(cols.values[path], expected)  # NaN equals NaN here


# ---------------------------------------------------------------------------------------------
# Database: plain cases
# ---------------------------------------------------------------------------------------------

BASE_US = 1_717_200_000_000_000  # 2024-06-01T00:00:00Z


def test_reads_what_a_plain_select_returns_with_nulls_unsorted_arrival_and_bools(
    db: psycopg.Connection,
) -> None:
    a, b, c = (f"RD-{next(_unique)}-{x}" for x in "ABC")
    block = _block(
        [b, a, b, a, a, c],
        [BASE_US + 5, BASE_US + 9, BASE_US + 1, BASE_US + 1, BASE_US + 3, BASE_US],
        {
            SPEED: [12.5, None, 30.25, 0.0, 99.0, 1.0],
            LATITUDE: [48.123456789012, 48.2, None, -33.9, None, 0.5],
            ABS: [1.0, 0.0, None, 1.0, 0.0, None],
        },
    )
    _write(db, block)
    paths = [SPEED, LATITUDE, ABS, COOLANT]  # coolant: never written
    cols = read_columns(db, [b, "RD-NOBODY", a], paths)
    assert cols.vehicle_ids == (b, "RD-NOBODY", a)
    _assert_same(cols, *_expected(db, [b, "RD-NOBODY", a], paths))
    assert cols.vehicle.tolist() == [0, 0, 2, 2, 2]
    assert cols.ts_ns.tolist() == [(BASE_US + d) * 1000 for d in (1, 5, 1, 3, 9)]
    np.testing.assert_array_equal(cols.values[ABS], [np.nan, 1.0, 1.0, 0.0, 0.0])
    assert np.isnan(cols.values[COOLANT]).all()
    assert cols.values[LATITUDE][1] == 48.123456789012  # double precision is kept whole
    b_rows = cols.bounds()
    assert b_rows.tolist() == [0, 2, 2, 5]


def test_one_signal_no_signal_no_rows_and_no_vehicles(db: psycopg.Connection) -> None:
    v = f"RD-{next(_unique)}"
    _write(db, _block([v, v], [BASE_US + 2, BASE_US], {TYRE_FL: [220.0, 230.0]}))
    one = read_columns(db, [v], [TYRE_FL])
    assert one.values[TYRE_FL].tolist() == [230.0, 220.0]
    assert one.ts_ns.tolist() == [BASE_US * 1000, (BASE_US + 2) * 1000]
    times_only = read_columns(db, [v], [])
    assert times_only.n_rows == 2 and dict(times_only.values) == {}
    nothing = read_columns(db, ["RD-NOBODY"], [TYRE_FL, SPEED])
    assert nothing.n_rows == 0 and nothing.values[SPEED].shape == (0,) and nothing.bounds().tolist() == [0, 0]
    no_vehicles = read_columns(db, [], [SPEED])
    assert no_vehicles.n_rows == 0 and no_vehicles.vehicle_ids == () and SPEED in no_vehicles.values


def test_time_bounds_are_half_open_in_ns_and_per_vehicle_windows_narrow_them(db: psycopg.Connection) -> None:
    a, b = (f"RD-{next(_unique)}-{x}" for x in "AB")
    us = [BASE_US + 1_000_000 * i for i in range(10)]
    _write(db, _block([a] * 10 + [b] * 10, us + us, {SPEED: list(range(20))}))
    window = read_columns(db, [a, b], [SPEED], since_ns=us[2] * 1000, until_ns=us[5] * 1000)
    assert window.values[SPEED].tolist() == [2, 3, 4, 12, 13, 14]
    # ns bounds between two stored µs: since rounds up, until keeps rows strictly before it
    between = read_columns(db, [a], [SPEED], since_ns=us[2] * 1000 + 1, until_ns=us[5] * 1000 + 1)
    assert between.values[SPEED].tolist() == [3, 4, 5]
    per_vehicle = read_columns(
        db, [a, b], [SPEED], since_ns=us[1] * 1000, since_ns_per_vehicle={b: us[8] * 1000}
    )
    assert per_vehicle.values[SPEED].tolist() == [*range(1, 10), 18, 19]
    earlier = read_columns(db, [a], [SPEED], since_ns=us[6] * 1000, since_ns_per_vehicle={a: us[1] * 1000})
    assert earlier.values[SPEED].tolist() == [6, 7, 8, 9]  # the later bound wins


def test_bad_requests_are_refused_before_any_query(db: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="not catalogue signals"):
        read_columns(db, ["V"], ["Vehicle.Nope"])
    with pytest.raises(ValueError, match="repeat"):
        read_columns(db, ["V", "V"], [SPEED])
    with pytest.raises(ValueError, match="not read"):
        read_columns(db, ["V"], [SPEED], since_ns_per_vehicle={"W": 0})


def test_vehicle_params_from_the_registry(db: psycopg.Connection) -> None:
    n = next(_unique)
    db.execute(
        "INSERT INTO vehicle_models (model_id, make, model, powertrain, cylinders, tyre_placard_kpa) VALUES "
        "(%s, 'M', 'EV', 'bev', 0, 250), (%s, 'M', 'V6', 'ice', 6, NULL)",
        (f"EV-{n}", f"V6-{n}"),
    )
    db.execute(
        "INSERT INTO vehicles (vehicle_id, model_id) VALUES (%s, %s), (%s, %s), (%s, NULL)",
        (f"P-{n}-ev", f"EV-{n}", f"P-{n}-v6", f"V6-{n}", f"P-{n}-nomodel"),
    )
    ids = [f"P-{n}-v6", f"P-{n}-unregistered", f"P-{n}-ev", f"P-{n}-nomodel"]
    params = load_vehicle_params(db, ids)
    assert params.is_ev.tolist() == [False, False, True, False]
    assert params.cylinders.tolist() == [6, 0, 0, 0]
    np.testing.assert_array_equal(params.tyre_placard_kpa, [np.nan, np.nan, 250.0, np.nan])
    assert load_vehicle_params(db, []).is_ev.shape == (0,)


def test_new_data_through_ingests_store_pages_by_arrival_without_splitting_an_instant(
    mode_conn: tuple[str, psycopg.Connection], pg_url: str
) -> None:
    """Batches stored by ingest's store (it commits), each flush one arrival instant."""
    mode, conn = mode_conn
    conn.rollback()
    if mode == "native":
        store = TelemetryStore(pg_url)
    else:
        store = TelemetryStore("(shared)", row_writer="insert", connect=lambda: conn)
    prefix = f"NEW-{next(_unique)}-{time.time_ns()}"
    now_ns = (time.time_ns() // 1000 - 3600 * 10**6) * 1000  # whole µs, as stored
    before = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    conn.commit()
    flushes = [
        [(f"{prefix}-A", 1, now_ns, 3), (f"{prefix}-B", 1, now_ns + 10**9, 2)],
        [(f"{prefix}-A", 2, now_ns - 60 * 10**9, 2)],  # late data: older samples, newer arrival
        [(f"{prefix}-C", 1, now_ns, 1)],
    ]
    try:
        for flush in flushes:
            envelopes = [_envelope(_batch(v, seq, start, n)) for v, seq, start, n in flush]
            assert store.write(triage(envelopes)).batches == len(flush)
            time.sleep(0.01)  # distinct arrival instants
        everything = vehicles_with_new_data(conn, before)
        first_page = vehicles_with_new_data(conn, before, max_batches=1)  # the first flush, both batches
        rest = vehicles_with_new_data(conn, first_page[-1].received_at)
        conn.commit()
    finally:
        if mode == "native":
            store.close()
    assert [r.vehicle_id for r in everything] == [f"{prefix}-B", f"{prefix}-A", f"{prefix}-C"]
    a = everything[1]
    assert (a.first_ts_ns, a.last_ts_ns) == (now_ns - 60 * 10**9, now_ns + 2 * 10**9)
    assert sorted(r.vehicle_id for r in first_page) == [f"{prefix}-A", f"{prefix}-B"]
    assert first_page[0].received_at == first_page[1].received_at
    assert [r.vehicle_id for r in rest] == [f"{prefix}-A", f"{prefix}-C"]
    assert (rest[0].first_ts_ns, rest[0].last_ts_ns) == (now_ns - 60 * 10**9, now_ns - 59 * 10**9)
    assert vehicles_with_new_data(conn, everything[-1].received_at) == []
    conn.commit()


def test_new_data_stops_before_a_flush_still_in_progress(pg_url: str) -> None:
    """A flush's batches carry its transaction's start time but appear only at commit: a page must
    not pass that time, or its watermark would skip them (native mode: PGlite has one connection)."""
    prefix = f"FLIGHT-{next(_unique)}-{time.time_ns()}"
    ledger = (
        "INSERT INTO ingest_batches (vehicle_id, seq, first_ts, last_ts, n_rows, n_samples) "
        "VALUES (%s, 1, now(), now(), 1, 1)"
    )
    with (
        psycopg.connect(pg_url, autocommit=True) as reader,
        psycopg.connect(pg_url) as slow,
        psycopg.connect(pg_url, autocommit=True) as fast,
    ):
        before = reader.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
        slow.execute(ledger, (f"{prefix}-SLOW",))  # its transaction stays open
        time.sleep(0.01)
        fast.execute(ledger, (f"{prefix}-FAST",))  # arrives later, committed at once
        during = vehicles_with_new_data(reader, before)
        slow.commit()
        after = vehicles_with_new_data(reader, before)
    assert during == []  # FAST is visible, but returning it would move the watermark past SLOW
    assert [r.vehicle_id for r in after] == [f"{prefix}-SLOW", f"{prefix}-FAST"]


def _batch(vehicle: str, seq: int, start_ns: int, n: int) -> TelemetryBatch:
    ts = start_ns + np.arange(n, dtype=np.int64) * 10**9
    return TelemetryBatch(vehicle, seq, ts, {SPEED: np.full(n, 50.0)})


def _envelope(batch: TelemetryBatch) -> Envelope:
    return Envelope(
        topics.topic_for(batch.vehicle_id, topics.TELEMETRY), wire_v1.encode(batch), time.time_ns()
    )


# ---------------------------------------------------------------------------------------------
# Database: random data (hypothesis)
# ---------------------------------------------------------------------------------------------

_PATHS = [SPEED, LATITUDE, ABS, TYRE_FL, COOLANT]
# Around the PostgreSQL epoch (negative stored µs), today, and far ahead.
_BASES_US = [PG_EPOCH_US - 5_000_000, BASE_US, 4_102_444_800_000_000]


def _value(path: str) -> st.SearchStrategy[float | None]:
    wire = SIGNAL_OF[path].wire_type
    if wire is WireType.BOOL:
        finite: st.SearchStrategy[float] = st.sampled_from([0.0, 1.0])
    else:
        width = 32 if wire is WireType.FLOAT32 else 64
        finite = st.floats(allow_nan=False, allow_infinity=False, width=width)
    return st.none() | finite


@st.composite
def _fleet(draw: st.DrawFn) -> dict:
    n_vehicles = draw(st.integers(1, 4))
    base = draw(st.sampled_from(_BASES_US))
    vehicle, ts_us = [], []
    for k in range(n_vehicles):
        offsets = draw(st.lists(st.integers(0, 2 * 86_400_000_000), max_size=25, unique=True))
        vehicle += [k] * len(offsets)
        ts_us += [base + o for o in offsets]
    written = draw(st.lists(st.sampled_from(_PATHS[:4]), unique=True))
    values = {p: draw(st.lists(_value(p), min_size=len(ts_us), max_size=len(ts_us))) for p in written}
    arrival = draw(st.permutations(range(len(ts_us))))
    requested = draw(st.permutations(range(n_vehicles + 1)))  # one more: a vehicle without rows
    paths = draw(st.lists(st.sampled_from(_PATHS), unique=True))
    since = draw(st.none() | st.integers(base, base + 86_400_000_000))
    until = draw(st.none() | st.integers(base, base + 2 * 86_400_000_000))
    per_vehicle = draw(st.dictionaries(st.sampled_from(requested), st.integers(base, base + 86_400_000_000)))
    return {
        "vehicle": vehicle,
        "ts_us": ts_us,
        "values": values,
        "arrival": arrival,
        "requested": requested,
        "paths": paths,
        "since_us": since,
        "until_us": until,
        "per_vehicle_us": per_vehicle,
    }


def test_random_fleets_read_back_exactly(mode_conn: tuple[str, psycopg.Connection]) -> None:
    mode, conn = mode_conn
    examples = 25 if mode == "native" else 8  # PGlite runs PostgreSQL in WASM: slower

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_fleet())
    def check(fleet: dict) -> None:
        prefix = f"HY-{next(_unique)}"
        names = [f"{prefix}-{k}" for k in range(max(fleet["requested"]) + 1)]
        order = fleet["arrival"]
        try:
            if order:
                _write(
                    conn,
                    _block(
                        [names[fleet["vehicle"][i]] for i in order],
                        [fleet["ts_us"][i] for i in order],
                        {p: [v[i] for i in order] for p, v in fleet["values"].items()},
                    ),
                )
            ids = [names[k] for k in fleet["requested"]]
            per_vehicle_us = {names[k]: us for k, us in fleet["per_vehicle_us"].items()}
            cols = read_columns(
                conn,
                ids,
                fleet["paths"],
                since_ns=None if fleet["since_us"] is None else fleet["since_us"] * 1000,
                until_ns=None if fleet["until_us"] is None else fleet["until_us"] * 1000,
                since_ns_per_vehicle={v: us * 1000 for v, us in per_vehicle_us.items()},
            )
            since_us = [
                max([b for b in (fleet["since_us"], per_vehicle_us.get(v)) if b is not None], default=None)
                for v in ids
            ]
            _assert_same(cols, *_expected(conn, ids, fleet["paths"], since_us, fleet["until_us"]))
        finally:
            conn.rollback()

    check()


# ---------------------------------------------------------------------------------------------
# The stream decoder on hand-made bytes (no database)
# ---------------------------------------------------------------------------------------------


def _stream(vehicle: list[int], ts_us: list[int], values: list[list[float]], **override: object) -> bytes:
    """A well-formed stream of the reader's row layout; `override` sets one field in every row."""
    fields = [("n", ">i2"), ("vl", ">i4"), ("v", ">i4"), ("tl", ">i4"), ("t", ">i8")]
    for k in range(len(values)):
        fields += [(f"l{k}", ">i4"), (f"x{k}", ">f8")]
    rows = np.zeros(len(vehicle), np.dtype(fields))
    rows["n"], rows["vl"], rows["v"], rows["tl"] = 2 + len(values), 4, vehicle, 8
    rows["t"] = np.array(ts_us, np.int64) - PG_EPOCH_US
    for k, column in enumerate(values):
        rows[f"l{k}"], rows[f"x{k}"] = 8, column
    for name, value in override.items():
        rows[name] = value
    header = COPY_SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return header + rows.tobytes() + b"\xff\xff"


def test_decoder_reads_a_well_formed_stream() -> None:
    stream = _stream([0, 1, 1], [0, PG_EPOCH_US, BASE_US], [[1.5, np.nan, -2.0], [3.0, 4.0, 5.0]])
    vehicle, ts_ns, values = parse_copy_rows(stream, 2, n_vehicles=2)
    assert vehicle.tolist() == [0, 1, 1] and ts_ns.tolist() == [0, PG_EPOCH_US * 1000, BASE_US * 1000]
    np.testing.assert_array_equal(values[0], [1.5, np.nan, -2.0])
    assert values[1].tolist() == [3.0, 4.0, 5.0] and values[1].flags["C_CONTIGUOUS"]
    empty = parse_copy_rows(_stream([], [], [[]]), 1, n_vehicles=0)
    assert empty[0].shape == (0,) and empty[2][0].shape == (0,)


def test_decoder_skips_a_header_extension() -> None:
    stream = bytearray(_stream([0], [BASE_US], [[7.0]]))
    stream[15:19] = (3).to_bytes(4, "big")
    stream[19:19] = b"ext"
    assert parse_copy_rows(stream, 1, n_vehicles=1)[2][0].tolist() == [7.0]


@pytest.mark.parametrize(
    ("stream", "n_signals", "message"),
    [
        (b"COPY" + bytes(30), 1, "signature"),
        (_stream([0], [BASE_US], [[1.0]])[:-2], 1, "trailer"),
        (COPY_SIGNATURE + (1 << 16).to_bytes(4, "big") + bytes(4) + b"\xff\xff", 1, "flags"),
        (_stream([0], [BASE_US], [[1.0]]), 2, "whole number"),  # a field fewer than asked
        (_stream([0, 0], [BASE_US, BASE_US], [[1.0, 2.0]], n=4), 1, "fields"),
        (_stream([0], [BASE_US], [[1.0]], l0=-1), 1, "a NULL"),  # a NULL would be length -1
        (_stream([0], [BASE_US], [[1.0]], tl=4), 1, "8-byte"),
        (_stream([0, 5], [BASE_US, BASE_US], [[1.0, 2.0]]), 1, "vehicle index"),
        (_stream([0], [BASE_US], [[1.0]], t=2**63 - 1), 1, "int64 nanoseconds"),  # 'infinity'
    ],
    ids=lambda case: case if isinstance(case, str) else "",
)
def test_decoder_refuses_anything_unexpected(stream: bytes, n_signals: int, message: str) -> None:
    with pytest.raises(CopyFormatError, match=message):
        parse_copy_rows(stream, n_signals, n_vehicles=2)
