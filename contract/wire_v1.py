"""Wire format v1: one MQTT payload = one columnar telemetry batch of one vehicle.

Owns: `encode` and `decode` between `TelemetryBatch` and bytes. The byte layout is specified in
docs/wire-format.md; keep the two in step. Framing (the 8-byte header) is parsed apart from the
body so that a later version can reuse it. Pure code: no I/O, no clock.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

from contract.batch import TelemetryBatch, is_valid_vehicle_id
from contract.errors import DeadLetterReason, DecodeError, EncodeError
from contract.signals import BY_ID, BY_PATH, WireType
from contract.timestamps import MAX_TS_US, MIN_TS_US, check_ts_us

MAGIC = b"FP"
VERSION = 1
FLAG_ZLIB = 0x01
KNOWN_FLAGS = FLAG_ZLIB

HEADER = struct.Struct("<2sBBI")  # magic, version, flags, body length
BODY_FIXED = struct.Struct("<QIH")  # seq, n_rows, n_columns (after the vehicle id)
COLUMN_HEAD = struct.Struct("<HBB")  # signal id, wire type, presence mode

PRESENCE_ALL = 0
PRESENCE_BITMAP = 1

MAX_FRAME_BYTES = 1 << 20  # 1 MiB on the wire: the broker limit we configure as well
MAX_BODY_BYTES = 16 << 20  # after decompression: guards against zip bombs
# A compressed body may inflate to what a raw frame could hold, or beyond that by at most this ratio:
# a small hostile frame cannot make ingest inflate (and allocate) megabytes (docs/wire-format.md §4).
MAX_INFLATION_RATIO = 64
MAX_ROWS = 100_000
MAX_DELTA_US = 2**32 - 1
MAX_SEQ = 2**63 - 1  # stored as PostgreSQL bigint


def encode(batch: TelemetryBatch, *, compress: bool = True) -> bytes:
    """Encode a batch. Raises EncodeError for an invalid id, unknown signal, non-finite value,
    a bool that is not 0/1, or timestamps that are not strictly increasing in whole microseconds."""
    if not is_valid_vehicle_id(batch.vehicle_id):
        raise EncodeError(f"invalid vehicle id {batch.vehicle_id!r}")
    if not 0 <= batch.seq <= MAX_SEQ:
        raise EncodeError(f"seq must be in 0..{MAX_SEQ}")
    n_rows = batch.n_rows
    if not 0 < n_rows <= MAX_ROWS:
        raise EncodeError(f"batch must have 1..{MAX_ROWS} rows, has {n_rows}")
    ts_us = np.asarray(batch.ts_ns, dtype=np.int64) // 1000
    deltas = np.diff(ts_us)
    if deltas.size and (deltas.min() <= 0 or deltas.max() > MAX_DELTA_US):
        raise EncodeError("timestamps must strictly increase (µs resolution, gaps < 71 min)")
    if ts_us[0] < MIN_TS_US or ts_us[-1] > MAX_TS_US:
        raise EncodeError("timestamps must lie in 1970-01-01..2262-04-11 UTC (contract.timestamps)")
    vid = batch.vehicle_id.encode("ascii")
    parts = [bytes([len(vid)]), vid, BODY_FIXED.pack(batch.seq, n_rows, len(batch.columns))]
    parts.append(struct.pack("<q", int(ts_us[0])))
    parts.append(deltas.astype("<u4").tobytes())
    n_present = 0
    for path, values in batch.columns.items():
        column, count = _encode_column(path, np.asarray(values, dtype=np.float64), n_rows)
        parts.extend(column)
        n_present += count
    if not n_present:
        raise EncodeError("batch has no present value: there is nothing to send")
    body = b"".join(parts)
    flags = 0
    if compress:
        packed = zlib.compress(body, 6)
        if len(packed) < len(body):
            if len(body) > inflation_limit(len(packed)):
                raise EncodeError(
                    f"a {len(body)}-byte body compresses {len(body) / len(packed):.0f}:1, beyond what "
                    "decoders inflate (MAX_INFLATION_RATIO): send smaller batches"
                )
            body, flags = packed, FLAG_ZLIB
    frame = HEADER.pack(MAGIC, VERSION, flags, len(body)) + body
    if len(frame) > MAX_FRAME_BYTES:
        raise EncodeError(f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}: send smaller batches")
    return frame


def _encode_column(path: str, values: np.ndarray, n_rows: int) -> tuple[list[bytes], int]:
    """The column's bytes and how many values it carries."""
    signal = BY_PATH.get(path)
    if signal is None:
        raise EncodeError(f"signal {path!r} is not in the catalogue")
    if values.shape != (n_rows,):
        raise EncodeError(f"column {path} has shape {values.shape}, expected ({n_rows},)")
    present = ~np.isnan(values)
    kept = values[present]
    if _unsendable_values(signal.wire_type, kept).any():
        raise EncodeError(
            f"column {path} has a value {signal.wire_type.name} cannot carry "
            "(infinite, beyond its range, or a boolean other than 0/1)"
        )
    if present.all():
        head = [COLUMN_HEAD.pack(signal.signal_id, signal.wire_type, PRESENCE_ALL)]
    else:
        bitmap = np.packbits(present, bitorder="little").tobytes()
        head = [COLUMN_HEAD.pack(signal.signal_id, signal.wire_type, PRESENCE_BITMAP), bitmap]
    return [*head, kept.astype(signal.wire_type.numpy_dtype).tobytes()], int(kept.size)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _unsendable_values(wire_type: WireType, kept: np.ndarray) -> np.ndarray:
    """Which of these present values `wire_type` cannot carry: the one rule of the encoder and of
    `unsendable`."""
    bad = ~np.isfinite(kept)
    if wire_type is WireType.FLOAT32:
        bad |= np.abs(np.where(bad, 0.0, kept)) > _FLOAT32_MAX
    elif wire_type is WireType.BOOL:
        bad |= ~np.isin(kept, (0.0, 1.0))
    return bad


def unsendable(paths: Sequence[str], values: np.ndarray) -> np.ndarray:
    """Which present values of a rows x paths matrix this format cannot carry: infinite, beyond the
    FLOAT32 range for a FLOAT32 signal, or other than 0/1 for a BOOL one; any value of a signal
    outside the catalogue. NaN means absent and is never flagged. Lets a sender drop such readings
    instead of failing to encode the whole batch."""
    present = ~np.isnan(values)
    bad = np.zeros_like(present)
    for j, path in enumerate(paths):
        signal = BY_PATH.get(path)
        column = present[:, j]
        if signal is None:
            bad[:, j] = column
        else:
            bad[column, j] = _unsendable_values(signal.wire_type, values[column, j])
    return bad


def decode(payload: bytes) -> TelemetryBatch:
    """Decode one payload. Raises DecodeError (with a DeadLetterReason) for anything malformed."""
    body = _unframe(payload)
    reader = _Reader(body)
    id_len = reader.take(1)[0]
    raw_id = reader.take(id_len)
    try:
        vehicle_id = raw_id.decode("ascii")
    except UnicodeDecodeError:
        vehicle_id = ""
    if not is_valid_vehicle_id(vehicle_id):
        raise DecodeError(DeadLetterReason.BAD_VEHICLE_ID, f"vehicle id {raw_id[:64]!r} is not valid")
    seq, n_rows, n_cols = BODY_FIXED.unpack(reader.take(BODY_FIXED.size))
    if seq > MAX_SEQ:
        raise DecodeError(DeadLetterReason.BAD_SEQUENCE, f"seq {seq} exceeds {MAX_SEQ}")
    if n_rows == 0:
        raise DecodeError(DeadLetterReason.EMPTY_BATCH, "batch has no rows")
    if n_rows > MAX_ROWS:
        raise DecodeError(DeadLetterReason.OVERSIZED, f"{n_rows} rows exceed the limit of {MAX_ROWS}")
    ts0_us = struct.unpack("<q", reader.take(8))[0]
    check_ts_us(ts0_us, "ts0")  # before any arithmetic on it: nothing below can overflow
    deltas = reader.array("<u4", n_rows - 1)
    if deltas.size and deltas.min() == 0:
        raise DecodeError(DeadLetterReason.TIMESTAMPS_NOT_INCREASING, "two rows share a timestamp")
    ts_us = np.concatenate(([ts0_us], ts0_us + np.cumsum(deltas, dtype=np.int64))).astype(np.int64)
    check_ts_us(int(ts_us[-1]), "the last row's time")
    columns: dict[str, np.ndarray] = {}
    every_row_filled = False  # a PRESENCE_ALL column fills every row
    filled = np.zeros(n_rows, dtype=bool)
    for _ in range(n_cols):
        path, values, present = _decode_column(reader, n_rows)
        if path in columns:
            raise DecodeError(DeadLetterReason.DUPLICATE_SIGNAL, f"signal {path} appears twice")
        columns[path] = values
        if present is None:
            every_row_filled = True
        elif not every_row_filled:
            filled |= present
    if reader.remaining:
        raise DecodeError(DeadLetterReason.TRAILING_BYTES, f"{reader.remaining} bytes after the last column")
    if every_row_filled or filled.all():
        return TelemetryBatch(vehicle_id, seq, ts_us * 1000, columns)
    # Rows where every column is absent carry no data and are dropped; a frame with no value at all
    # is an `empty_batch` (it would store rows of nothing but NULLs).
    if not filled.any():
        raise DecodeError(DeadLetterReason.EMPTY_BATCH, "no column has a present value")
    kept = {path: values[filled] for path, values in columns.items()}
    return TelemetryBatch(vehicle_id, seq, ts_us[filled] * 1000, kept)


def inflation_limit(compressed_bytes: int) -> int:
    """How many bytes a zlib body of `compressed_bytes` may inflate to (§4 of the wire format)."""
    return min(MAX_BODY_BYTES, max(MAX_FRAME_BYTES, MAX_INFLATION_RATIO * compressed_bytes))


def _unframe(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_BYTES:
        raise DecodeError(DeadLetterReason.OVERSIZED, f"{len(payload)} bytes exceed {MAX_FRAME_BYTES}")
    if len(payload) < HEADER.size:
        raise DecodeError(DeadLetterReason.TRUNCATED, f"{len(payload)} bytes is shorter than the header")
    magic, version, flags, body_len = HEADER.unpack_from(payload)
    if magic != MAGIC:
        raise DecodeError(DeadLetterReason.BAD_MAGIC, f"magic {magic!r} is not {MAGIC!r}")
    if version != VERSION:
        raise DecodeError(
            DeadLetterReason.UNSUPPORTED_VERSION, f"version {version}; this decoder reads {VERSION}"
        )
    if flags & ~KNOWN_FLAGS:
        raise DecodeError(DeadLetterReason.BAD_FLAGS, f"unknown flag bits {flags:#04x}")
    body = payload[HEADER.size :]
    if len(body) < body_len:
        raise DecodeError(DeadLetterReason.TRUNCATED, f"body has {len(body)} of {body_len} bytes")
    if len(body) > body_len:
        raise DecodeError(
            DeadLetterReason.LENGTH_MISMATCH, f"body has {len(body)} bytes, header says {body_len}"
        )
    if not flags & FLAG_ZLIB:
        return bytes(body)
    inflater = zlib.decompressobj()
    limit = inflation_limit(len(body))
    try:
        out = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise DecodeError(DeadLetterReason.DECOMPRESSION_FAILED, str(exc)) from None
    if inflater.unconsumed_tail or (len(out) == limit and not inflater.eof):
        raise DecodeError(
            DeadLetterReason.OVERSIZED,
            f"a {len(body)}-byte zlib body inflates beyond {limit} bytes (max(1 MiB, "
            f"{MAX_INFLATION_RATIO}x), at most {MAX_BODY_BYTES})",
        )
    if not inflater.eof:
        raise DecodeError(DeadLetterReason.TRUNCATED, "compressed body ends early")
    if inflater.unused_data:
        raise DecodeError(
            DeadLetterReason.TRAILING_BYTES, f"{len(inflater.unused_data)} bytes after the compressed body"
        )
    return out


def _decode_column(reader: _Reader, n_rows: int) -> tuple[str, np.ndarray, np.ndarray | None]:
    """The signal's path, its values (NaN where absent) and its presence (None: every row)."""
    signal_id, wire_code, presence_mode = COLUMN_HEAD.unpack(reader.take(COLUMN_HEAD.size))
    signal = BY_ID.get(signal_id)
    if signal is None:
        raise DecodeError(DeadLetterReason.UNKNOWN_SIGNAL, f"signal id {signal_id} is not in the catalogue")
    if wire_code != signal.wire_type:
        raise DecodeError(
            DeadLetterReason.TYPE_MISMATCH,
            f"{signal.vss_path} sent as type {wire_code}, catalogue says {int(signal.wire_type)}",
        )
    if presence_mode == PRESENCE_ALL:
        present = None
        count = n_rows
    elif presence_mode == PRESENCE_BITMAP:
        bitmap = reader.array("u1", (n_rows + 7) // 8)
        bits = np.unpackbits(bitmap, bitorder="little").astype(bool)
        if bits[n_rows:].any():
            raise DecodeError(
                DeadLetterReason.LENGTH_MISMATCH, f"{signal.vss_path}: presence bits set past the last row"
            )
        present = bits[:n_rows]
        count = int(present.sum())
    else:
        raise DecodeError(
            DeadLetterReason.LENGTH_MISMATCH, f"{signal.vss_path}: presence mode {presence_mode}"
        )
    kept = reader.array(signal.wire_type.numpy_dtype.str, count).astype(np.float64)
    if not np.isfinite(kept).all():
        raise DecodeError(DeadLetterReason.NON_FINITE_VALUE, f"{signal.vss_path} carries NaN or infinity")
    if signal.wire_type is WireType.BOOL and (kept > 1).any():
        raise DecodeError(DeadLetterReason.BAD_BOOL, f"{signal.vss_path} carries a boolean other than 0/1")
    if present is None:
        return signal.vss_path, kept, None
    values = np.full(n_rows, np.nan)
    values[present] = kept
    return signal.vss_path, values, present


class _Reader:
    """Bounds-checked cursor over the body; running past the end is a TRUNCATED error."""

    __slots__ = ("_buf", "_pos")

    def __init__(self, buf: bytes) -> None:
        self._buf = memoryview(buf)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._buf) - self._pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise DecodeError(
                DeadLetterReason.TRUNCATED, f"needed {n} bytes at offset {self._pos}, {self.remaining} left"
            )
        out = self._buf[self._pos : self._pos + n].tobytes()
        self._pos += n
        return out

    def array(self, dtype: str, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(dt.itemsize * count), dtype=dt)
