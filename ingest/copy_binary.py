"""PostgreSQL binary COPY encoding of telemetry rows, built with numpy and no per-row Python.

Owns: turning decoded batches into one columnar `RowBlock` and that block into the bytes of a
`COPY telemetry (...) FROM STDIN (FORMAT BINARY)` stream. Pure: no database access.

How: rows are laid out as a numpy structured array (field count, then length + big-endian value
for each field), viewed as a byte matrix. NULL fields keep their -1 length but their value bytes are
masked out, so one boolean-mask selection yields the exact stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contract.batch import TelemetryBatch
from contract.signals import SIGNALS, Signal, WireType

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
TELEMETRY_COLUMNS: tuple[str, ...] = ("ts", "vehicle_id", *(s.column for s in SIGNALS))

_BE_VALUE = {WireType.FLOAT32: ">f4", WireType.FLOAT64: ">f8", WireType.BOOL: "u1"}


@dataclass(frozen=True)
class RowBlock:
    """Rows of many vehicles as columns: ts_us (int64 Unix µs), vehicle_id (bytes array) and one
    float64 array per catalogue signal with NaN for NULL."""

    ts_us: np.ndarray
    vehicle_id: np.ndarray
    values: dict[str, np.ndarray]

    @property
    def n_rows(self) -> int:
        return int(self.ts_us.shape[0])

    def n_samples(self) -> int:
        return int(sum(int(np.count_nonzero(~np.isnan(v))) for v in self.values.values()))


def rows_from_batches(batches: Sequence[TelemetryBatch]) -> RowBlock:
    """Concatenate batches into one block (one vectorised concatenation per signal)."""
    if not batches:
        empty = np.empty(0)
        return RowBlock(np.empty(0, np.int64), np.empty(0, "S1"), {s.vss_path: empty for s in SIGNALS})
    lengths = np.array([b.n_rows for b in batches])
    ts_us = np.concatenate([np.asarray(b.ts_ns, np.int64) for b in batches]) // 1000
    ids = np.array([b.vehicle_id.encode("ascii") for b in batches])
    vehicle_id = np.repeat(ids, lengths)
    values = {}
    for signal in SIGNALS:
        parts = [b.columns.get(signal.vss_path) for b in batches]
        if all(p is None for p in parts):
            values[signal.vss_path] = np.full(ts_us.shape[0], np.nan)
            continue
        values[signal.vss_path] = np.concatenate(
            [
                np.full(n, np.nan) if p is None else np.asarray(p, np.float64)
                for p, n in zip(parts, lengths, strict=True)
            ]
        )
    return RowBlock(ts_us, vehicle_id, values)


def encode_copy_binary(block: RowBlock) -> bytes:
    """The full COPY BINARY stream (header, rows, trailer) for TELEMETRY_COLUMNS."""
    chunks = [COPY_HEADER]
    id_lengths = np.char.str_len(block.vehicle_id) if block.n_rows else np.empty(0, int)
    for id_len in np.unique(id_lengths):
        rows = np.flatnonzero(id_lengths == id_len)
        chunks.append(_encode_rows(block, rows, int(id_len)))
    chunks.append(COPY_TRAILER)
    return b"".join(chunks)


def _row_dtype(id_len: int) -> np.dtype:
    fields: list[tuple[str, str]] = [("nfields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8")]
    fields += [("vid_len", ">i4"), ("vid", f"S{id_len}")]
    for i, signal in enumerate(SIGNALS):
        fields += [(f"len{i}", ">i4"), (f"val{i}", _BE_VALUE[signal.wire_type])]
    return np.dtype(fields)


def _encode_rows(block: RowBlock, rows: np.ndarray, id_len: int) -> bytes:
    dtype = _row_dtype(id_len)
    out = np.zeros(rows.shape[0], dtype=dtype)
    out["nfields"] = len(TELEMETRY_COLUMNS)
    out["ts_len"] = 8
    out["ts"] = block.ts_us[rows] - PG_EPOCH_US
    out["vid_len"] = id_len
    out["vid"] = block.vehicle_id[rows]
    keep: np.ndarray | None = None
    matrix = out.view(np.uint8).reshape(rows.shape[0], dtype.itemsize)
    for i, signal in enumerate(SIGNALS):
        column = block.values[signal.vss_path][rows]
        present = ~np.isnan(column)
        out[f"val{i}"] = np.where(present, column, 0).astype(_BE_VALUE[signal.wire_type])
        out[f"len{i}"] = np.where(present, _value_size(signal), -1)
        if not present.all():
            if keep is None:
                keep = np.ones(matrix.shape, dtype=bool)
            offset = dtype.fields[f"val{i}"][1]  # type: ignore[index]  # a structured dtype has fields
            keep[:, offset : offset + _value_size(signal)] = present[:, None]
    return matrix.tobytes() if keep is None else matrix[keep].tobytes()


def _value_size(signal: Signal) -> int:
    return np.dtype(_BE_VALUE[signal.wire_type]).itemsize
