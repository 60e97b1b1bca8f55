"""The per-vehicle streaming reader against a real database in both storage modes: its pieces,
put together, are what the row-wise reader returns (NaN for NULL, booleans, per-vehicle windows),
each piece holds whole vehicles, and a stream that is not what was asked for is refused."""

from __future__ import annotations

import itertools
import queue

import numpy as np
import psycopg
import pytest

from analytics.telemetry_reader import CopyFormatError, _signals, copy_params, read_columns
from analytics.telemetry_stream import _decode, _drain, _strip_header, _vehicle_copy_sql, stream_columns
from tests.analytics import test_telemetry_reader as reader_tests
from tests.analytics.test_telemetry_reader import ABS, BASE_US, LATITUDE, SPEED, TYRE_FL, _block, _write

# The reader tests' fixtures: a connection per storage mode, rolled back after each test.
db, mode_conn, tsdb = reader_tests.db, reader_tests.mode_conn, reader_tests.tsdb

_unique = itertools.count()


def _concat(pieces: list) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:  # noqa: ANN001
    vehicle = np.concatenate([p.vehicle for p in pieces])
    ts = np.concatenate([p.ts_ns for p in pieces])
    values = {k: np.concatenate([p.values[k] for p in pieces]) for k in pieces[0].values}
    return vehicle, ts, values


def test_pieces_together_are_what_the_row_reader_reads(db: psycopg.Connection) -> None:
    a, b, c, d = (f"ST-{next(_unique)}-{x}" for x in "ABCD")
    us = [BASE_US + 1_000_000 * i for i in range(6)]
    _write(
        db,
        _block(
            [b, a, b, a, a, c, b, c],
            [us[5], us[4], us[1], us[1], us[3], us[0], us[2], us[4]],
            {
                SPEED: [12.5, None, 30.25, 0.0, 99.0, 1.0, 7.0, None],
                LATITUDE: [48.123456789012, 48.2, None, -33.9, None, 0.5, 1.0, 2.0],
                ABS: [1.0, 0.0, None, 1.0, 0.0, None, 1.0, 0.0],
            },
        ),
    )
    ids = [b, d, a, c]  # d has no rows
    paths = [SPEED, LATITUDE, ABS, TYRE_FL]  # tyre: never written
    since = {a: us[3] * 1000}
    whole = read_columns(db, ids, paths, since_ns_per_vehicle=since)
    for piece_rows in (1, 3, 1000):
        pieces = list(stream_columns(db, ids, paths, since_ns_per_vehicle=since, piece_rows=piece_rows))
        assert all(p.vehicle_ids == tuple(ids) for p in pieces)
        vehicle, ts, values = _concat(pieces)
        np.testing.assert_array_equal(vehicle, whole.vehicle)
        np.testing.assert_array_equal(ts, whole.ts_ns)
        for path in paths:
            np.testing.assert_array_equal(values[path], whole.values[path])
        seen = [set(p.vehicle.tolist()) for p in pieces]
        assert all(not (x & y) for x, y in itertools.combinations(seen, 2))  # whole vehicles only
        if piece_rows == 1:
            assert len(pieces) == 3  # one per vehicle with rows
    assert whole.values[SPEED].tolist()[:3] == [30.25, 7.0, 12.5]


def test_no_vehicles_no_rows_and_bad_requests(db: psycopg.Connection) -> None:
    assert list(stream_columns(db, [], [SPEED])) == []
    assert list(stream_columns(db, ["ST-NOBODY"], [SPEED])) == []
    with pytest.raises(ValueError):
        list(stream_columns(db, ["x", "x"], [SPEED]))
    with pytest.raises(ValueError):
        list(stream_columns(db, ["x"], ["Vehicle.NoSuchSignal"]))


def test_a_stream_other_than_asked_is_refused(db: psycopg.Connection) -> None:
    v = f"ST-{next(_unique)}"
    _write(db, _block([v, v], [BASE_US, BASE_US + 1], {SPEED: [1.0, 2.0]}))
    chosen = _signals([SPEED])
    out: queue.SimpleQueue[object] = queue.SimpleQueue()
    _drain(db, _vehicle_copy_sql(chosen), copy_params([v], [None], None), out)
    message = _strip_header(out.get())  # type: ignore[arg-type]
    assert _decode([message], (v,), 1, chosen).values[SPEED].tolist() == [1.0, 2.0]
    bad_length = bytearray(message)
    bad_length[10 + 4 + 20 : 10 + 4 + 24] = (4).to_bytes(4, "big")  # the first time element's length
    with pytest.raises(CopyFormatError):
        _decode([bytes(bad_length)], (v,), 1, chosen)
    with pytest.raises(CopyFormatError):
        _decode([message], ("only-one",), 2, _signals([SPEED, LATITUDE]))  # fewer arrays than asked
    with pytest.raises(CopyFormatError):
        _strip_header(b"not a COPY stream at all")
