"""Telemetry out of PostgreSQL in pieces of whole vehicles while the server is still sending the
rest: what the analysis job reads, so that the kernels run during the COPY instead of after it.

Owns: the per-vehicle COPY statement and its decoding. One `COPY ... TO STDOUT (FORMAT BINARY)`
row per vehicle: its index, the array of its times, and its values as at most two 2-D arrays (one
row per time): the signals stored as `real` or `boolean` as float4 (exact), those stored as
`double precision` as float8, NULL as NaN. The arrays are in the order the server reads the rows
(an ORDER BY inside the aggregates made it sort every vehicle's rows, about a fifth of its time);
the client puts each vehicle's rows in time order (backwards as they are written out when they
came newest first, as an index scan gives them; else sorted). So the client handles one
protocol message per vehicle instead of one per row (psycopg spends about 1 µs of Python per
message: the whole of a raw COPY's client cost), and the server builds three arrays per vehicle
instead of one per signal, sends float4 where the table stores it, and casts nothing. A thread
drains the stream into a queue; the caller's thread decodes and analyses the vehicles already
received while PostgreSQL produces the next ones on another core. Every array is checked (its
dimensions, element type, no NULL, every element's length) vectorised, and anything unexpected
raises `CopyFormatError`. The values are widened to float64 exactly as the row-wise reader's
`::float8` does. Leaves the row-wise reader, which the other jobs use, to
`analytics.telemetry_reader`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

import numpy as np
import psycopg

from analytics.columns import TelemetryColumns
from analytics.telemetry_reader import (
    _MAX_US,
    _MIN_US,
    COPY_SIGNATURE,
    PG_EPOCH_US,
    CopyFormatError,
    _lower_bound,
    _signals,
    copy_params,
)
from contract.signals import Signal, WireType

_ARRAY_HEADER = 20  # int32 ndim, int32 has-null flag, int32 element oid, int32 length, int32 lower bound
_FLOAT4, _FLOAT8, _TIMESTAMPTZ = 700, 701, 1184  # element type oids
_DONE = object()
T = TypeVar("T", int, np.ndarray)


def stream_columns(
    conn: psycopg.Connection,
    vehicle_ids: Sequence[str],
    signals: Sequence[str],
    *,
    since_ns_per_vehicle: Mapping[str, int] | None = None,
    piece_rows: int = 50_000,
) -> Iterator[TelemetryColumns]:
    """The rows `read_columns` returns for `vehicle_ids` (each from its `since_ns_per_vehicle`
    bound on), as `TelemetryColumns` over the same `vehicle_ids`, each piece holding whole vehicles
    and about `piece_rows` rows (a vehicle without rows is in none). Raises ValueError for an
    unknown VSS path or a repeated vehicle, CopyFormatError for an unexpected stream, and
    psycopg.Error when the query fails. The connection must not be used until the iterator ends."""
    ids = tuple(vehicle_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("vehicle_ids must not repeat a vehicle")
    chosen = _signals(signals)
    if not ids:
        return
    per_vehicle = since_ns_per_vehicle or {}
    since = [_lower_bound(None, per_vehicle.get(v)) for v in ids]
    messages: queue.SimpleQueue[object] = queue.SimpleQueue()
    drain = threading.Thread(
        target=_drain, args=(conn, _vehicle_copy_sql(chosen), copy_params(ids, since, None), messages)
    )
    drain.start()
    try:
        batch: list[bytes] = []
        rows = 0
        header_seen = False
        while (message := messages.get()) is not _DONE:
            if isinstance(message, BaseException):
                raise message
            assert isinstance(message, bytes)
            if not header_seen:
                message = _strip_header(message)
                header_seen = True
            if not message or message == b"\xff\xff":  # the header alone, or the trailer
                continue
            batch.append(message)
            rows += _row_count(message)
            if rows >= piece_rows:
                yield _decode(batch, ids, len(chosen), chosen)
                batch, rows = [], 0
        if batch:
            yield _decode(batch, ids, len(chosen), chosen)
    finally:
        drain.join()


def _vehicle_copy_sql(chosen: Sequence[Signal]) -> str:
    """One row per vehicle; column names come from the catalogue, never from the caller."""
    narrow, wide = _groups(chosen)
    fields = "".join(
        f", array_agg(ARRAY[{', '.join(_as_element(chosen[i], kind) for i in group)}])"
        for kind, group in (("float4", narrow), ("float8", wide))
        if group
    )
    return (
        f"COPY (SELECT (r.k - 1)::int4, array_agg(t.ts){fields}"
        " FROM unnest(%(ids)s::text[], %(since)s::timestamptz[]) WITH ORDINALITY AS r(vehicle_id, since, k)"
        " JOIN telemetry t ON t.vehicle_id = r.vehicle_id"
        " AND t.ts >= COALESCE(r.since, '-infinity'::timestamptz)"
        " AND t.ts < COALESCE(%(until)s::timestamptz, 'infinity'::timestamptz)"
        " GROUP BY r.k ORDER BY r.k) TO STDOUT (FORMAT BINARY)"
    )


def _groups(chosen: Sequence[Signal]) -> tuple[list[int], list[int]]:
    """Which of the signals travel as float4 (stored as real or boolean) and which as float8."""
    narrow = [i for i, s in enumerate(chosen) if s.wire_type is not WireType.FLOAT64]
    return narrow, [i for i, s in enumerate(chosen) if s.wire_type is WireType.FLOAT64]


def _as_element(signal: Signal, kind: str) -> str:
    column = f"t.{signal.column}::int4::float4" if signal.wire_type is WireType.BOOL else f"t.{signal.column}"
    return f"COALESCE({column}, 'NaN'::{kind})"


def _drain(
    conn: psycopg.Connection, sql: str, params: dict[str, object], out: queue.SimpleQueue[object]
) -> None:
    """Each COPY message (a vehicle) into `out`, then `_DONE`; an exception goes in its place."""
    try:
        with conn.cursor() as cur, cur.copy(sql, params) as copy:
            while message := copy.read():
                out.put(bytes(message))
    except BaseException as exc:  # handed to the consuming thread, which raises it
        out.put(exc)
    finally:
        out.put(_DONE)


def _strip_header(message: bytes) -> bytes:
    """The first message starts with the COPY header: check it and return the rest."""
    fixed = len(COPY_SIGNATURE) + 8
    if len(message) < fixed or message[: len(COPY_SIGNATURE)] != COPY_SIGNATURE:
        raise CopyFormatError("not a binary COPY stream (bad signature)")
    flags = int.from_bytes(message[len(COPY_SIGNATURE) : len(COPY_SIGNATURE) + 4], "big")
    if flags & ~0xFFFF:
        raise CopyFormatError(f"unsupported COPY header flags {flags:#x}")
    extension = int.from_bytes(message[fixed - 4 : fixed], "big")
    return message[fixed + extension :]


def _row_count(message: bytes) -> int:
    """The vehicle's number of rows: the length of its time array (the second field)."""
    if len(message) < 2 + 8 + 4 + _ARRAY_HEADER:
        raise CopyFormatError("a vehicle row is too short")
    return int.from_bytes(message[2 + 8 + 4 + 12 : 2 + 8 + 4 + 16], "big", signed=True)


def _decode(
    batch: list[bytes], ids: tuple[str, ...], n_signals: int, chosen: Sequence[Signal]
) -> TelemetryColumns:
    """Vehicle rows (int4 index, timestamptz[], then float4[][] and float8[][] of the signals of
    each kind that `_groups` picks) into columns, checked."""
    if n_signals != len(chosen):
        raise ValueError("n_signals must be the number of signals chosen")
    narrow, wide = _groups(chosen)
    # (element oid, width, dimensions, signals): the times, then each kind's signals (a row per time)
    arrays: list[tuple[int, int, int, list[int]]] = [(_TIMESTAMPTZ, 8, 1, [])] + [
        (oid, width, 2, group) for oid, width, group in ((_FLOAT4, 4, narrow), (_FLOAT8, 8, wide)) if group
    ]
    counts = np.array([_row_count(m) for m in batch], dtype=np.int64)
    if (counts < 1).any():
        raise CopyFormatError("a vehicle row has no times")
    sizes = np.array([len(m) for m in batch], dtype=np.int64)
    expected = 2 + 8 + sum(_field_bytes(ndim, counts, max(len(g), 1), width) for _, width, ndim, g in arrays)
    if (sizes != expected).any():
        raise CopyFormatError("a vehicle row is not its index and the arrays of the signals asked for")
    n_rows = int(counts.sum())
    vehicle = np.empty(n_rows, dtype=np.int32)
    ts_us = np.empty(n_rows, dtype=np.int64)
    values = np.empty((n_signals, n_rows))
    order = [i for *_, group in arrays for i in group]  # values' rows: narrow, then wide
    at = 0
    for message, n in zip(batch, counts.tolist(), strict=True):
        head = np.frombuffer(message, ">i4", count=2, offset=2)  # index field: length 4, value
        if int.from_bytes(message[:2], "big") != 1 + len(arrays) or head[0] != 4:
            raise CopyFormatError("a vehicle row does not have the fields asked for")
        k = int(head[1])
        if not 0 <= k < len(ids):
            raise CopyFormatError("vehicle index outside the requested vehicles")
        vehicle[at : at + n] = k
        # The arrays come in the order the server read the rows: a scan of the (vehicle, ts DESC)
        # index gives them newest first, so such a vehicle's rows are written backwards.
        backwards = False
        start, row = 10, 0
        for oid, width, ndim, group in arrays:
            per_row = max(len(group), 1)
            cells = _array_cells(message, start, oid, width, ndim, n, per_row)
            if oid == _TIMESTAMPTZ:
                backwards = n > 1 and bool((cells[1:, 0] <= cells[:-1, 0]).all())
            if backwards:
                cells = cells[::-1]
            if oid == _TIMESTAMPTZ:
                ts_us[at : at + n] = cells[:, 0]
            else:
                values[row : row + per_row, at : at + n] = cells.T
                row += per_row
            start += _field_bytes(ndim, n, per_row, width)
        at += n
    if ts_us.min() < _MIN_US - PG_EPOCH_US or ts_us.max() > _MAX_US - PG_EPOCH_US:
        raise CopyFormatError("a timestamp does not fit int64 nanoseconds (infinite or out of range)")
    ts_ns = (ts_us + PG_EPOCH_US) * 1000
    if ((ts_ns[1:] < ts_ns[:-1]) & (vehicle[1:] == vehicle[:-1])).any():  # e.g. rows of many partitions
        rows = np.lexsort((ts_ns, vehicle))
        vehicle, ts_ns, values = vehicle[rows], ts_ns[rows], values.take(rows, axis=1)  # rows contiguous
    cols = TelemetryColumns(ids, vehicle, ts_ns, {chosen[i].vss_path: values[r] for r, i in enumerate(order)})
    cols.check()
    return cols


def _field_bytes(ndim: int, n: T, per_row: int, width: int) -> T:
    """Bytes of an array field: its length word, header (dimensions and lower bounds) and elements
    (each a length word and `width` bytes)."""
    return 4 + _ARRAY_HEADER + 8 * (ndim - 1) + n * per_row * (4 + width)


def _array_cells(
    message: bytes, start: int, oid: int, width: int, ndim: int, n: int, per_row: int
) -> np.ndarray:
    """The (n, per_row) big-endian view of the array field at `start`: `ndim` 1 (n elements,
    per_row 1) or 2 (n x per_row); element type `oid` of `width` bytes, no NULL."""
    hdr = np.frombuffer(message, ">i4", count=4 + 2 * ndim, offset=start)
    if hdr[0] != _field_bytes(ndim, n, per_row, width) - 4 or hdr[1] != ndim or hdr[2] != 0 or hdr[3] != oid:
        raise CopyFormatError("an array is not of the type, dimensions or length asked for, or has a NULL")
    if hdr[4] != n or (ndim == 2 and hdr[6] != per_row):
        raise CopyFormatError("an array is not as long as the times, or not as wide as the signals")
    body, step = start + _field_bytes(ndim, 0, per_row, width), 4 + width
    lengths = np.ndarray((n, per_row), ">i4", message, body, (per_row * step, step))
    if (lengths != width).any():
        raise CopyFormatError(f"an array element is not {width} bytes")
    kind = ">i8" if oid == _TIMESTAMPTZ else (">f4" if width == 4 else ">f8")
    return np.ndarray((n, per_row), kind, message, body + 4, (per_row * step, step))
