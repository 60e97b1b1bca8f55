"""How a flush's telemetry rows reach the table: binary COPY (always, in production) or INSERT.

Owns: the one statement that moves rows. Binary COPY is the fast path; `insert` exists for a
server or proxy that cannot take `COPY ... FROM STDIN` -- the PGlite+TimescaleDB test server is
one -- so the rest of the write transaction (ledger, vehicles, last-known state, DTCs, dead
letters) can still be exercised against it. INSERT builds Python lists per column: fine for tests
and small deployments, roughly an order of magnitude slower than COPY.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import psycopg

from contract.signals import SIGNALS, WireType
from ingest.copy_binary import TELEMETRY_COLUMNS, RowBlock

RowWriter = Literal["copy", "insert"]
COPY_SQL = f"COPY telemetry ({', '.join(TELEMETRY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_SQL_TYPE = {WireType.FLOAT32: "real", WireType.FLOAT64: "double precision", WireType.BOOL: "boolean"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def copy_rows(conn: psycopg.Connection, copy_data: bytes | bytearray) -> None:
    """Stream a prepared binary COPY (see `ingest.copy_binary`)."""
    with conn.cursor().copy(COPY_SQL) as copy:
        copy.write(copy_data)


def insert_rows(conn: psycopg.Connection, block: RowBlock) -> None:
    """The same rows by one `INSERT ... SELECT FROM unnest(...)`, NaN as NULL."""
    if not block.n_rows:
        return
    columns, casts = ["ts", "vehicle_id"], ["%s::timestamptz[]", "%s::text[]"]
    params: list[list[Any]] = [
        [_EPOCH + dt.timedelta(microseconds=us) for us in block.ts_us.tolist()],
        [v.decode("ascii") for v in block.vehicle_id.tolist()],
    ]
    for signal in SIGNALS:
        column = block.column(signal.vss_path)
        if column is None:
            continue
        values = [None if v != v else v for v in column.tolist()]  # NaN != NaN: NULL
        if signal.wire_type is WireType.BOOL:
            values = [None if v is None else bool(v) for v in values]
        columns.append(signal.column)
        casts.append(f"%s::{_SQL_TYPE[signal.wire_type]}[]")
        params.append(values)
    sql = f"INSERT INTO telemetry ({', '.join(columns)}) SELECT * FROM unnest({', '.join(casts)})"
    conn.execute(sql, params)  # type: ignore[arg-type]  # built from the catalogue, not from input
