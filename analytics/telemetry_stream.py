"""Telemetry out of PostgreSQL in pieces of whole vehicles while the server is still sending the
rest: what the analysis job reads, so that the kernels run during the COPY instead of after it.

Owns: the per-vehicle COPY statement and its decoding. One `COPY ... TO STDOUT (FORMAT BINARY)`
row per vehicle: its index, the array of its times and one float8 array per signal (NULL as NaN,
`array_agg(... ORDER BY ts)`), so the client handles one protocol message per vehicle instead of
one per row (psycopg spends about 1 µs of Python per message: the whole of a raw COPY's client
cost). A thread drains the stream into a queue; the caller's thread decodes and analyses the
vehicles already received while PostgreSQL produces the next ones on another core. Every array is
checked (one dimension, float8 or timestamptz elements of 8 bytes, no NULL) vectorised, and
anything unexpected raises `CopyFormatError`. Leaves the row-wise reader, which the other jobs use,
to `analytics.telemetry_reader`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import psycopg

from analytics.columns import TelemetryColumns
from analytics.telemetry_reader import (
    _MAX_US,
    _MIN_US,
    COPY_SIGNATURE,
    PG_EPOCH_US,
    CopyFormatError,
    _as_float8,
    _lower_bound,
    _signals,
    copy_params,
)
from contract.signals import Signal

_ARRAY_HEADER = 20  # int32 ndim, int32 has-null flag, int32 element oid, int32 length, int32 lower bound
_ELEMENT = 12  # int32 length (8) + 8-byte value
_DONE = object()


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
    fields = "".join(f", array_agg(COALESCE({_as_float8(s)}, 'NaN'::float8) ORDER BY t.ts)" for s in chosen)
    return (
        f"COPY (SELECT (r.k - 1)::int4, array_agg(t.ts ORDER BY t.ts){fields}"
        " FROM unnest(%(ids)s::text[], %(since)s::timestamptz[]) WITH ORDINALITY AS r(vehicle_id, since, k)"
        " JOIN telemetry t ON t.vehicle_id = r.vehicle_id"
        " AND t.ts >= COALESCE(r.since, '-infinity'::timestamptz)"
        " AND t.ts < COALESCE(%(until)s::timestamptz, 'infinity'::timestamptz)"
        " GROUP BY r.k ORDER BY r.k) TO STDOUT (FORMAT BINARY)"
    )


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
    """Vehicle rows (int4 index, timestamptz[], n_signals x float8[]) into columns, checked."""
    counts = np.array([_row_count(m) for m in batch], dtype=np.int64)
    if (counts < 1).any():
        raise CopyFormatError("a vehicle row has no times")
    sizes = np.array([len(m) for m in batch], dtype=np.int64)
    array_bytes = 4 + _ARRAY_HEADER + counts * _ELEMENT
    if (sizes != 2 + 8 + (1 + n_signals) * array_bytes).any():
        raise CopyFormatError("a vehicle row is not its index and 1 + n_signals arrays of 8-byte values")
    n_rows = int(counts.sum())
    vehicle = np.empty(n_rows, dtype=np.int32)
    ts_us = np.empty(n_rows, dtype=np.int64)
    values = np.empty((n_signals, n_rows))
    at = 0
    for message, n, field_bytes in zip(batch, counts.tolist(), array_bytes.tolist(), strict=True):
        head = np.frombuffer(message, ">i4", count=2, offset=2)  # index field: length 4, value
        if int.from_bytes(message[:2], "big") != 2 + n_signals or head[0] != 4:
            raise CopyFormatError("a vehicle row does not have the fields asked for")
        k = int(head[1])
        if not 0 <= k < len(ids):
            raise CopyFormatError("vehicle index outside the requested vehicles")
        vehicle[at : at + n] = k
        for f in range(1 + n_signals):
            start = 10 + f * field_bytes
            hdr = np.frombuffer(message, ">i4", count=6, offset=start)
            if hdr[0] != field_bytes - 4 or hdr[1] != 1 or hdr[2] != 0 or hdr[4] != n:
                raise CopyFormatError("an array is not one-dimensional, NULL-free and as long as the times")
            lengths = np.ndarray((n,), ">i4", message, start + 4 + _ARRAY_HEADER, (_ELEMENT,))
            if (lengths != 8).any():
                raise CopyFormatError("an array element is not 8 bytes")
            if f == 0:
                ts_us[at : at + n] = np.ndarray((n,), ">i8", message, start + 8 + _ARRAY_HEADER, (_ELEMENT,))
            else:
                values[f - 1, at : at + n] = np.ndarray(
                    (n,), ">f8", message, start + 8 + _ARRAY_HEADER, (_ELEMENT,)
                )
        at += n
    if ts_us.min() < _MIN_US - PG_EPOCH_US or ts_us.max() > _MAX_US - PG_EPOCH_US:
        raise CopyFormatError("a timestamp does not fit int64 nanoseconds (infinite or out of range)")
    ts_ns = (ts_us + PG_EPOCH_US) * 1000
    cols = TelemetryColumns(ids, vehicle, ts_ns, {s.vss_path: values[i] for i, s in enumerate(chosen)})
    cols.check()
    return cols
