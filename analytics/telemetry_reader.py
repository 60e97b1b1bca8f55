"""Telemetry out of PostgreSQL into `TelemetryColumns`, by binary COPY parsed with numpy; which
vehicles have new data since a watermark; and the registry parameters detectors need.

Owns: the SQL of analytics' read path and the decoding of its `COPY ... TO STDOUT (FORMAT BINARY)`
stream, the mirror of ingest's COPY encoder. Leaves to others: what to read and when (the jobs), the
detectors (pure kernels on the columns) and the table itself (ingest's migrations).

How: the query makes every row fixed-width -- the vehicle as an int4 index into the requested ids
(`unnest ... WITH ORDINALITY`), the time as the timestamptz itself (binary: int8 microseconds since
2000-01-01), and each signal as float8 with NULL turned into NaN, so no field is ever NULL -- and
orders rows by (vehicle index, time). The whole stream is then one big-endian structured array
(`np.frombuffer`); the header, each row's field count and field lengths, and the trailer are checked
vectorised, and anything unexpected raises `CopyFormatError`. Draining the stream is psycopg's one
read per COPY message (PostgreSQL sends one message per row), the same cost as any COPY TO client;
nothing in Python touches a row or a field. Works on TimescaleDB hypertables and native partitions
alike (plain SQL on `telemetry`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import psycopg

from analytics.columns import TelemetryColumns, VehicleParams
from contract.signals import SIGNALS, Signal, WireType
from contract.timestamps import ns_of as _ns

__all__ = [
    "CopyFormatError",
    "VehicleNewData",
    "copy_params",
    "copy_query",
    "load_vehicle_params",
    "parse_copy_rows",
    "read_columns",
    "vehicles_with_new_data",
]

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_TRAILER = b"\xff\xff"  # int16 -1
_HEADER_FIXED = len(COPY_SIGNATURE) + 8  # signature, int32 flags, int32 header-extension length
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
# Unix µs whose ns still fit int64 (years 1678..2262); ±infinity timestamps fall outside.
_MIN_US, _MAX_US = -(2**63) // 1000 + 1, (2**63 - 1) // 1000
_BY_PATH: dict[str, Signal] = {s.vss_path: s for s in SIGNALS}


class CopyFormatError(ValueError):
    """The COPY stream is not the fixed-width rows the reader asked for (a server, proxy or schema
    that answers differently). Nothing is returned from such a stream."""


class VehicleNewData(NamedTuple):
    """One vehicle's batches that arrived after a watermark: the newest arrival among them
    (`received_at`, the next watermark) and the span of sample times they cover."""

    vehicle_id: str
    received_at: dt.datetime
    first_ts_ns: int
    last_ts_ns: int


def read_columns(
    conn: psycopg.Connection,
    vehicle_ids: Sequence[str],
    signals: Sequence[str],
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    since_ns_per_vehicle: Mapping[str, int] | None = None,
) -> TelemetryColumns:
    """The rows of `vehicle_ids` with `since_ns <= ts < until_ns` (Unix ns; None: unbounded), one
    float64 column per VSS path in `signals` (NaN where the row has no value; booleans as 0/1).

    `since_ns_per_vehicle` narrows the window per vehicle (each vehicle's trailing window, e.g.
    its new data's first_ts minus a detector's WINDOW_S); a vehicle absent from it keeps `since_ns`,
    and when both apply the later bound wins. `vehicle[i]` indexes `vehicle_ids` in the order given;
    a vehicle without rows has none. The query runs in the connection's current transaction (psycopg
    opens one unless the connection is in autocommit); committing or rolling it back is the caller's.

    Raises ValueError for an unknown VSS path or a repeated vehicle id, CopyFormatError when the
    stream is not what was asked for, and psycopg.Error when the query fails."""
    ids = tuple(vehicle_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("vehicle_ids must not repeat a vehicle")
    chosen = _signals(signals)
    if not ids:
        return TelemetryColumns((), np.empty(0, np.int32), np.empty(0, np.int64), _empty_values(chosen))
    per_vehicle = since_ns_per_vehicle or {}
    unknown = set(per_vehicle) - set(ids)
    if unknown:
        raise ValueError(f"since_ns_per_vehicle names vehicles not read: {sorted(unknown)[:5]}")
    since = [_lower_bound(since_ns, per_vehicle.get(v)) for v in ids]
    until = None if until_ns is None else _ts_param(-(-until_ns // 1000))  # ts_us < ceil(until_ns / 1000)
    stream = _copy_out(conn, _copy_sql(chosen), copy_params(ids, since, until))
    vehicle, ts_ns, values = parse_copy_rows(stream, len(chosen), n_vehicles=len(ids))
    cols = TelemetryColumns(ids, vehicle, ts_ns, {s.vss_path: values[k] for k, s in enumerate(chosen)})
    cols.check()
    return cols


def parse_copy_rows(
    stream: bytes | bytearray | memoryview, n_signals: int, *, n_vehicles: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Decode a binary COPY stream of rows (int4 vehicle index, timestamptz, `n_signals` x float8,
    no NULLs) into (vehicle int32, ts_ns int64, one float64 array per signal). Pure, no I/O.

    Raises CopyFormatError on a bad header, trailer, field count, field length, vehicle index or
    time outside int64 nanoseconds (e.g. an infinite timestamp)."""
    buf = memoryview(stream).cast("B")
    if len(buf) < _HEADER_FIXED + len(COPY_TRAILER) or bytes(buf[: len(COPY_SIGNATURE)]) != COPY_SIGNATURE:
        raise CopyFormatError("not a binary COPY stream (bad signature)")
    flags = int.from_bytes(buf[len(COPY_SIGNATURE) : len(COPY_SIGNATURE) + 4], "big")
    if flags & ~0xFFFF:  # bit 16: OIDs included; bits 17-31: format changes a reader must refuse
        raise CopyFormatError(f"unsupported COPY header flags {flags:#x}")
    extension = int.from_bytes(buf[_HEADER_FIXED - 4 : _HEADER_FIXED], "big")
    start = _HEADER_FIXED + extension
    end = len(buf) - len(COPY_TRAILER)
    if start > end or bytes(buf[end:]) != COPY_TRAILER:
        raise CopyFormatError("binary COPY stream does not end with its trailer")
    dtype = _row_dtype(n_signals)
    if (end - start) % dtype.itemsize:
        raise CopyFormatError(
            f"{end - start} bytes of rows is not a whole number of {dtype.itemsize}-byte rows: "
            "a field is NULL or not the type asked for"
        )
    n_rows = (end - start) // dtype.itemsize
    if not n_rows:
        return np.empty(0, np.int32), np.empty(0, np.int64), [np.empty(0) for _ in range(n_signals)]
    rows = np.frombuffer(buf, dtype=dtype, count=n_rows, offset=start)
    # The signals' (length, value) pairs repeat every 12 bytes: one strided 2D view each, so a
    # check or a conversion is one pass over the stream, not one pass per signal.
    first_len = start + dtype.fields["len0"][1] if n_signals else start  # type: ignore[index]
    lengths = np.ndarray((n_rows, n_signals), ">i4", buf, first_len, (dtype.itemsize, 12))
    floats = np.ndarray((n_rows, n_signals), ">f8", buf, first_len + 4, (dtype.itemsize, 12))
    if (
        (rows["nfields"] != 2 + n_signals).any()
        or (rows["vehicle_len"] != 4).any()
        or (rows["ts_len"] != 8).any()
        or (lengths != 8).any()
    ):
        raise CopyFormatError(
            f"a row is not {2 + n_signals} fields of 4, 8 and 8-byte values (a NULL or another type)"
        )
    vehicle = rows["vehicle"].astype(np.int32)
    if vehicle.min() < 0 or vehicle.max() >= n_vehicles:
        raise CopyFormatError("vehicle index outside the requested vehicles")
    ts_ns = rows["ts_us"].astype(np.int64)  # µs since 2000 until the two steps below
    if ts_ns.min() < _MIN_US - PG_EPOCH_US or ts_ns.max() > _MAX_US - PG_EPOCH_US:
        raise CopyFormatError("a timestamp does not fit int64 nanoseconds (infinite or out of range)")
    ts_ns += PG_EPOCH_US
    ts_ns *= 1000
    by_signal = np.ascontiguousarray(floats.astype(np.float64).T)  # (signal, row): each row contiguous
    return vehicle, ts_ns, list(by_signal)


def vehicles_with_new_data(
    conn: psycopg.Connection,
    after: dt.datetime | None,
    *,
    max_batches: int = 100_000,
    settle_s: float = 0.0,
) -> list[VehicleNewData]:
    """The vehicles whose batches arrived after the watermark `after` (ingest_batches.received_at;
    None: from the beginning), oldest arrival first, with each one's newest arrival and the span
    of sample times its new batches cover.

    The page is cut by arrival, never inside a vehicle's history: it holds the oldest `max_batches`
    new batches plus every batch that arrived at the same instant as the last of them, so the largest
    `received_at` returned is a safe next watermark -- every batch up to it has been reported.

    `received_at` is the ingest transaction's start time, so a flush still in progress can later
    commit batches older than ones already visible. The page therefore stops before the start of
    any other transaction of this database that is writing or running a statement, and `settle_s`
    before now (a margin for what that check cannot see: a role without pg_read_all_stats does not
    see other roles' sessions). Raises psycopg.Error when the query fails."""
    if max_batches < 1:
        raise ValueError("max_batches must be at least 1")
    sql = """
        WITH horizon AS (
            SELECT least(
                clock_timestamp() - make_interval(secs => %(settle_s)s),
                (SELECT min(xact_start) FROM pg_stat_activity
                 WHERE pid <> pg_backend_pid() AND datname = current_database()
                   AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL))
            ) AS h
        ), page AS (
            SELECT b.received_at FROM ingest_batches b, horizon
            WHERE b.received_at > %(after)s AND b.received_at < horizon.h
            ORDER BY b.received_at LIMIT %(max_batches)s
        )
        SELECT b.vehicle_id, max(b.received_at), min(b.first_ts), max(b.last_ts)
        FROM ingest_batches b
        WHERE b.received_at > %(after)s AND b.received_at <= (SELECT max(received_at) FROM page)
        GROUP BY b.vehicle_id
        ORDER BY 2, 1
    """
    low = after if after is not None else dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    params = {"after": low, "settle_s": float(settle_s), "max_batches": max_batches}
    with conn.cursor() as cur:
        found = cur.execute(sql, params).fetchall()
    return [VehicleNewData(v, received, _ns(first), _ns(last)) for v, received, first, last in found]


def load_vehicle_params(conn: psycopg.Connection, vehicle_ids: Sequence[str]) -> VehicleParams:
    """Each vehicle's model parameters from the registry (`vehicles` JOIN `vehicle_models`), in the
    order of `vehicle_ids`: is_ev (powertrain 'bev'), cylinders (0 when unknown) and placard tyre
    pressure (NaN when unknown); a vehicle without a registered model gets the unknowns.
    Raises psycopg.Error when the query fails."""
    ids = list(vehicle_ids)
    params = VehicleParams.unknown(len(ids))
    if not ids:
        return params
    sql = """
        SELECT r.k - 1, m.powertrain = 'bev', m.cylinders, m.tyre_placard_kpa
        FROM unnest(%s::text[]) WITH ORDINALITY AS r(vehicle_id, k)
        JOIN vehicles v ON v.vehicle_id = r.vehicle_id
        JOIN vehicle_models m ON m.model_id = v.model_id
    """
    with conn.cursor() as cur:
        found = cur.execute(sql, (ids,)).fetchall()
    if found:
        k, is_ev, cylinders, placard = (np.array(c, dtype=object) for c in zip(*found, strict=True))
        index = k.astype(np.int64)
        params.is_ev[index] = is_ev.astype(bool)
        params.cylinders[index] = cylinders.astype(np.int64)
        params.tyre_placard_kpa[index] = np.where(placard == None, np.nan, placard).astype(np.float64)  # noqa: E711
    return params


def _signals(signals: Sequence[str]) -> tuple[Signal, ...]:
    """The catalogue entries of the requested paths, in order, each once."""
    unknown = [p for p in signals if p not in _BY_PATH]
    if unknown:
        raise ValueError(f"not catalogue signals: {unknown}")
    return tuple(_BY_PATH[p] for p in dict.fromkeys(signals))


def _empty_values(chosen: tuple[Signal, ...]) -> dict[str, np.ndarray]:
    return {s.vss_path: np.empty(0, np.float64) for s in chosen}


def copy_query(signals: Sequence[str]) -> str:
    """The `COPY ... TO STDOUT (FORMAT BINARY)` statement `read_columns` runs for these signals, with
    `copy_params` (for benchmarks and EXPLAIN). Raises ValueError for an unknown VSS path."""
    return _copy_sql(_signals(signals))


def copy_params(
    vehicle_ids: Sequence[str], since: Sequence[dt.datetime | None], until: dt.datetime | None
) -> dict[str, object]:
    """The statement's parameters: the vehicles in order, each one's lower time bound, the upper."""
    return {"ids": list(vehicle_ids), "since": list(since), "until": until}


def _copy_sql(chosen: tuple[Signal, ...]) -> str:
    """The fixed-width query. Column names come from the catalogue, never from the caller."""
    fields = "".join(f", COALESCE({_as_float8(s)}, 'NaN'::float8)" for s in chosen)
    return (
        f"COPY (SELECT (r.k - 1)::int4, t.ts{fields}"
        " FROM unnest(%(ids)s::text[], %(since)s::timestamptz[]) WITH ORDINALITY AS r(vehicle_id, since, k)"
        " JOIN telemetry t ON t.vehicle_id = r.vehicle_id"
        " AND t.ts >= COALESCE(r.since, '-infinity'::timestamptz)"
        " AND t.ts < COALESCE(%(until)s::timestamptz, 'infinity'::timestamptz)"
        " ORDER BY r.k, t.ts) TO STDOUT (FORMAT BINARY)"
    )


def _as_float8(signal: Signal) -> str:
    if signal.wire_type is WireType.BOOL:
        return f"t.{signal.column}::int4::float8"
    return f"t.{signal.column}::float8"


def _copy_out(conn: psycopg.Connection, sql: str, params: dict[str, object]) -> bytearray:
    stream = bytearray()
    with conn.cursor() as cur, cur.copy(sql, params) as copy:
        while chunk := copy.read():
            stream += chunk
    return stream


def _row_dtype(n_signals: int) -> np.dtype:
    fields = [("nfields", ">i2"), ("vehicle_len", ">i4"), ("vehicle", ">i4")]
    fields += [("ts_len", ">i4"), ("ts_us", ">i8")]
    for k in range(n_signals):
        fields += [(f"len{k}", ">i4"), (f"val{k}", ">f8")]
    return np.dtype(fields)


def _lower_bound(since_ns: int | None, vehicle_since_ns: int | None) -> dt.datetime | None:
    """The later of the two bounds as a timestamptz parameter (ts_us >= ceil(ns / 1000))."""
    bounds = [b for b in (since_ns, vehicle_since_ns) if b is not None]
    return _ts_param(-(-max(bounds) // 1000)) if bounds else None


def _ts_param(unix_us: int) -> dt.datetime:
    return _UNIX_EPOCH + unix_us * _US
