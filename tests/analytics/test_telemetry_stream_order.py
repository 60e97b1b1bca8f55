"""The per-vehicle stream does not ask the server to sort: its arrays come in the order the rows
are read (newest first from the (vehicle, ts DESC) index, one run per partition or chunk, in any
order from the default partition). Whatever that order, the pieces are each vehicle's rows in time
order, as the row-wise reader returns them; and the decoder sorts a row it is handed unsorted."""

from __future__ import annotations

import itertools
import queue
import time

import numpy as np
import psycopg

from analytics.telemetry_reader import _signals, copy_params, read_columns
from analytics.telemetry_stream import _decode, _drain, _strip_header, _vehicle_copy_sql, stream_columns
from tests.analytics import test_telemetry_reader as reader_tests
from tests.analytics.test_telemetry_reader import BASE_US, LATITUDE, SPEED, _block, _write

db, mode_conn, tsdb = reader_tests.db, reader_tests.mode_conn, reader_tests.tsdb

_unique = itertools.count()
DAY_US = 86_400_000_000


def test_rows_over_many_days_come_in_time_order(db: psycopg.Connection) -> None:
    a, b = (f"SO-{next(_unique)}-{x}" for x in "AB")
    rng = np.random.default_rng(5)
    # Rows from 40 days before now to now (the partitions or chunks prepared around today, and the
    # default partition before them), written in random order.
    now_us = time.time_ns() // 1000 // 1_000_000 * 1_000_000
    us = now_us - rng.choice(40 * DAY_US // 1_000_000, 300, replace=False) * 1_000_000
    who = [a if k % 3 else b for k in range(us.size)]
    _write(db, _block(who, us.tolist(), {SPEED: rng.normal(50, 10, us.size).tolist(), LATITUDE: us.tolist()}))
    ids, paths = [b, a], [SPEED, LATITUDE]
    whole = read_columns(db, ids, paths)
    for piece_rows in (1, 1000):
        pieces = list(stream_columns(db, ids, paths, piece_rows=piece_rows))
        np.testing.assert_array_equal(np.concatenate([p.vehicle for p in pieces]), whole.vehicle)
        np.testing.assert_array_equal(np.concatenate([p.ts_ns for p in pieces]), whole.ts_ns)
        for path in paths:
            np.testing.assert_array_equal(
                np.concatenate([p.values[path] for p in pieces]), whole.values[path]
            )
    assert (np.diff(whole.ts_ns[whole.vehicle == 1]) > 0).all()


def test_a_vehicle_row_in_any_order_is_decoded_in_time_order(db: psycopg.Connection) -> None:
    v = f"SO-{next(_unique)}"
    us = [BASE_US + s * 1_000_000 for s in (5, 1, 4, 2, 3)]
    _write(db, _block([v] * 5, us, {SPEED: [5.0, 1.0, 4.0, 2.0, 3.0]}))
    chosen = _signals([SPEED])
    out: queue.SimpleQueue[object] = queue.SimpleQueue()
    # The statement as the stream runs it, but with the rows fed to the aggregates in a shuffled
    # order (the planner is free to; here by a subquery ordered by the value's hash).
    sql = _vehicle_copy_sql(chosen).replace(
        "JOIN telemetry t ON", "JOIN (SELECT * FROM telemetry ORDER BY md5(speed_kmh::text)) t ON"
    )
    _drain(db, sql, copy_params([v], [None], None), out)
    cols = _decode([_strip_header(out.get())], (v,), 1, chosen)  # type: ignore[arg-type]
    assert cols.values[SPEED].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert (np.diff(cols.ts_ns) == 1_000_000_000).all()
