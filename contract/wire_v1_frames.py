"""The column pass of the batch decoder (`contract.wire_v1_batch`): per-frame state in arrays.

Owns: the checks of `contract.wire_v1.decode`, run on many frames at once in the same order, each on
the frames still valid (`Pass.verdict`, 0 = valid, else an index into `REASONS`), and the gathering
of their values into one float64 array per signal over all rows of the flush. Per-message Python
is limited to the header (`Pass._headers`); the columns are read position by position across
frames. Long value runs (64 values or more per frame on average) are read with one view per run,
which is cheaper than an index per value. Leaves the public result and the error details to
`contract.wire_v1_batch`. Pure: no I/O, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from contract.batch import is_valid_vehicle_id
from contract.errors import DeadLetterReason, DecodeError
from contract.signals import SIGNALS, WireType
from contract.timestamps import MAX_TS_US, MIN_TS_US
from contract.wire_v1 import BODY_FIXED, MAX_ROWS, MAX_SEQ, PRESENCE_ALL, PRESENCE_BITMAP, _unframe

R = DeadLetterReason
# Verdict codes: 0 = valid so far, k = REASONS[k].
REASONS: tuple[DeadLetterReason | None, ...] = (None, *DeadLetterReason)
_CODE = {reason: k for k, reason in enumerate(REASONS) if reason is not None}

_SIG_OF_ID = np.full(1 << 16, -1, np.int64)  # wire signal id -> index in SIGNALS
for _k, _s in enumerate(SIGNALS):
    _SIG_OF_ID[_s.signal_id] = _k
_WIRE_OF = np.array([int(s.wire_type) for s in SIGNALS], np.int64)
_SIZE_OF_WIRE = {int(w): w.numpy_dtype.itemsize for w in WireType}
_SIZE_OF = np.array([_SIZE_OF_WIRE[int(s.wire_type)] for s in SIGNALS], np.int64)
_TS0 = struct.Struct("<q")


FrameFields = tuple[
    list[str],
    list[int],
    list[DecodeError | None],
    np.ndarray,
    np.ndarray,
    dict[str, np.ndarray],
    list[tuple[str, ...]],
]


def decoded_bytes(n_rows: int, n_columns: int) -> int:
    """An upper estimate of what a frame's decoded arrays hold: 8 bytes per row for its time, one
    for its bookkeeping, and one per column (at most one per catalogue signal); a sparse column
    costs a full float64 per row once decoded, whatever its few bits on the wire."""
    return 8 * n_rows * (2 + min(n_columns, len(SIGNALS)))


def ragged(starts: np.ndarray, lengths: np.ndarray, step: int = 1) -> np.ndarray:
    """concat(arange(s, s + step * l, step) for s, l in zip(starts, lengths)), without a Python loop."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.int64)
    before = np.cumsum(lengths) - lengths
    return np.repeat(starts - step * before, lengths) + step * np.arange(total, dtype=np.int64)


def _any_per(frames: np.ndarray, lengths: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Of `frames` (each owning `lengths` consecutive entries of `flags`), those with a flag set."""
    owner = np.repeat(np.arange(frames.shape[0]), lengths)
    return frames[np.unique(owner[flags])]


class Pass:
    """One decoding pass over a flush: per-frame state in arrays, the bodies in one byte array."""

    def __init__(self, payloads: Sequence[bytes], max_bytes: int | None = None) -> None:
        n = len(payloads)
        self.payloads = payloads
        self.max_bytes = max_bytes
        self.errors: list[DecodeError | None] = [None] * n
        self.verdict = np.zeros(n, np.int64)
        self.vehicle_ids = [""] * n
        self.seqs = [0] * n
        self.n_rows = np.zeros(n, np.int64)
        self.n_cols = np.zeros(n, np.int64)
        self.ts0 = np.zeros(n, np.int64)
        self.pos = np.zeros(n, np.int64)  # absolute cursor in `buf`
        self.end = np.zeros(n, np.int64)
        self.buf = np.zeros(0, np.uint8)
        # Filled by the column pass: (signal index, frame, column position) of every column read,
        # and per signal index its values over every row of the flush (NaN where absent).
        self.col_parts: list[tuple[np.ndarray, np.ndarray, int]] = []
        self.by_signal: dict[int, np.ndarray] = {}

    def kill(self, frames: np.ndarray, reason: DeadLetterReason) -> None:
        """Reject `frames` for `reason`, unless an earlier check already rejected them."""
        current = self.verdict[frames]
        self.verdict[frames] = np.where(current == 0, _CODE[reason], current)

    def alive(self, frames: np.ndarray) -> np.ndarray:
        return frames[self.verdict[frames] == 0]

    def run(self) -> None:
        self._headers()
        self._timestamps()
        self._columns()
        self.finish()

    def _headers(self) -> None:
        """Per frame (the only per-message Python): unframe, inflate, the fixed body fields."""
        bodies: list[bytes] = []
        offset = 0
        held = 0  # the bodies and an estimate of their decoded arrays
        valid_ids: dict[bytes, str] = {}
        for i, payload in enumerate(self.payloads):
            try:
                body = _unframe(payload)
            except DecodeError as exc:
                self.errors[i] = exc
                self.verdict[i] = _CODE[exc.reason]
                continue
            code = self._header(i, body, valid_ids)
            if code:
                self.verdict[i] = code
                continue
            bodies.append(body)
            self.pos[i] += offset
            self.end[i] = offset + len(body)
            offset += len(body)
            held += len(body) + decoded_bytes(int(self.n_rows[i]), int(self.n_cols[i]))
            if self.max_bytes is not None and held >= self.max_bytes:
                self._cut(i + 1)
                break
        self.buf = np.frombuffer(b"".join(bodies), np.uint8)

    def _cut(self, n: int) -> None:
        """Decode only the first `n` payloads."""
        self.payloads = self.payloads[:n]
        del self.errors[n:], self.vehicle_ids[n:], self.seqs[n:]
        for name in ("verdict", "n_rows", "n_cols", "ts0", "pos", "end"):
            setattr(self, name, getattr(self, name)[:n])

    def _header(self, i: int, body: bytes, valid_ids: dict[bytes, str]) -> int:
        """0, or the verdict code of the first fault in the body's fixed part and its deltas."""
        size = len(body)
        if size < 1 or size < 1 + body[0]:
            return _CODE[R.TRUNCATED]
        id_end = 1 + body[0]
        raw_id = body[1:id_end]
        vehicle_id = valid_ids.get(raw_id)
        if vehicle_id is None:
            try:
                vehicle_id = raw_id.decode("ascii")
            except UnicodeDecodeError:
                return _CODE[R.BAD_VEHICLE_ID]
            if not is_valid_vehicle_id(vehicle_id):
                return _CODE[R.BAD_VEHICLE_ID]
            valid_ids[raw_id] = vehicle_id
        if size < id_end + BODY_FIXED.size:
            return _CODE[R.TRUNCATED]
        seq, n_rows, n_cols = BODY_FIXED.unpack_from(body, id_end)
        if seq > MAX_SEQ:
            return _CODE[R.BAD_SEQUENCE]
        if n_rows == 0:
            return _CODE[R.EMPTY_BATCH]
        if n_rows > MAX_ROWS:
            return _CODE[R.OVERSIZED]
        at = id_end + BODY_FIXED.size
        if size < at + 8:
            return _CODE[R.TRUNCATED]
        ts0 = _TS0.unpack_from(body, at)[0]
        if not MIN_TS_US <= ts0 <= MAX_TS_US:
            return _CODE[R.TIMESTAMP_OUT_OF_RANGE]
        if size < at + 8 + 4 * (n_rows - 1):
            return _CODE[R.TRUNCATED]
        self.vehicle_ids[i], self.seqs[i] = vehicle_id, seq
        self.n_rows[i], self.n_cols[i], self.ts0[i] = n_rows, n_cols, ts0
        self.pos[i] = at + 8  # made absolute by the caller
        return 0

    def _timestamps(self) -> None:
        """Every row's time, from ts0 and the deltas of all frames at once."""
        frames = self.alive(np.arange(self.verdict.shape[0]))
        self.frames = frames
        n_rows = self.n_rows[frames]
        self.row_start = np.zeros(self.verdict.shape[0], np.int64)
        self.row_start[frames] = np.cumsum(n_rows) - n_rows
        self.total_rows = int(n_rows.sum())
        n_deltas = n_rows - 1
        deltas = self._items(np.dtype("<u4"), self.pos[frames], n_deltas).astype(np.uint64)
        self.kill(_any_per(frames, n_deltas, deltas == 0), R.TIMESTAMPS_NOT_INCREASING)
        self.pos[frames] += 4 * n_deltas
        first = self.row_start[frames]
        steps = np.zeros(self.total_rows, np.uint64)
        later = np.ones(self.total_rows, bool)
        later[first] = False
        steps[later] = deltas
        # A running sum over the whole flush wraps modulo 2^64; differences within one frame (at most
        # 100,000 deltas of < 2^32) are exact.
        running = np.cumsum(steps, dtype=np.uint64)
        since_ts0 = (running - np.repeat(running[first], n_rows)).astype(np.int64)
        ts_us = np.repeat(self.ts0[frames], n_rows) + since_ts0
        last = first + n_rows - 1
        alive = self.verdict[frames] == 0
        self.kill(frames[alive & (ts_us[last] > MAX_TS_US)], R.TIMESTAMP_OUT_OF_RANGE)
        self.ts_us = ts_us
        self.row_filled = np.zeros(self.total_rows, bool)
        self.all_filled = np.zeros(self.verdict.shape[0], bool)
        self.seen = np.zeros((self.verdict.shape[0], len(SIGNALS)), bool)

    def _columns(self) -> None:
        """Column position k of every frame that has one, k = 0, 1, ...: each pass is numpy over
        frames. A 51st column repeats or is unknown, so the passes end after at most 51."""
        k = 0
        while True:
            frames = self.alive(self.frames)
            frames = frames[self.n_cols[frames] > k]
            if not frames.size:
                return
            self._column(frames, k)
            k += 1

    def _read(self, frames: np.ndarray, offset: int, width: int) -> np.ndarray:
        """Little-endian unsigned ints of `width` bytes at cursor + offset (checked in bounds)."""
        out = np.zeros(frames.shape[0], np.int64)
        for b in range(width):
            out |= self.buf[self.pos[frames] + offset + b].astype(np.int64) << (8 * b)
        return out

    def _items(self, dtype: np.dtype, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """`counts[j]` consecutive items of `dtype` from byte `starts[j]` of `buf`, concatenated. A
        strided view makes each item one row of bytes, so the gather takes one index per item."""
        size = dtype.itemsize
        if counts.shape[0] and counts.sum() >= 64 * counts.shape[0]:  # long runs: one view per run
            spans = zip(starts.tolist(), (counts * size).tolist(), strict=True)
            return np.concatenate([self.buf[a : a + n].view(dtype) for a, n in spans])
        index = ragged(starts, counts, size)
        if not index.size:
            return np.zeros(0, dtype)
        rows = np.lib.stride_tricks.as_strided(self.buf, (self.buf.shape[0] - size + 1, size), (1, 1))
        return np.ascontiguousarray(rows[index]).view(dtype).reshape(-1)

    def _fits(self, frames: np.ndarray, nbytes: np.ndarray | int) -> np.ndarray:
        """Which of `frames` hold `nbytes` more bytes at their cursor; the others are truncated."""
        ok = self.pos[frames] + nbytes <= self.end[frames]
        self.kill(frames[~ok], R.TRUNCATED)
        return ok

    def _column(self, frames: np.ndarray, k: int) -> None:
        """Column position k of `frames`, checked in `decode`'s order, values gathered with numpy."""
        frames = frames[self._fits(frames, 4)]
        sig = _SIG_OF_ID[self._read(frames, 0, 2)]
        self.kill(frames[sig < 0], R.UNKNOWN_SIGNAL)
        frames, sig = frames[sig >= 0], sig[sig >= 0]
        ok = self._read(frames, 2, 1) == _WIRE_OF[sig]
        self.kill(frames[~ok], R.TYPE_MISMATCH)
        frames, sig = frames[ok], sig[ok]
        mode = self._read(frames, 3, 1)
        ok = (mode == PRESENCE_ALL) | (mode == PRESENCE_BITMAP)
        self.kill(frames[~ok], R.LENGTH_MISMATCH)
        frames, sig, dense = frames[ok], sig[ok], mode[ok] == PRESENCE_ALL
        self.pos[frames] += 4
        n_rows = self.n_rows[frames]
        bitmap_bytes = np.where(dense, 0, (n_rows + 7) // 8)
        ok = self._fits(frames, bitmap_bytes)
        frames, sig, dense, n_rows, bitmap_bytes = (a[ok] for a in (frames, sig, dense, n_rows, bitmap_bytes))
        spare = n_rows % 8  # bits of the last bitmap byte past the last row must be 0
        last = self.buf[np.maximum(self.pos[frames] + bitmap_bytes - 1, 0)].astype(np.int64)
        ok = dense | (spare == 0) | ((last >> spare) == 0)
        self.kill(frames[~ok], R.LENGTH_MISMATCH)
        frames, sig, dense, n_rows, bitmap_bytes = (a[ok] for a in (frames, sig, dense, n_rows, bitmap_bytes))
        # The present rows of the sparse frames (absolute row numbers, frame then row order).
        count = n_rows.copy()
        sparse = np.flatnonzero(~dense)
        sparse_rows, sparse_owner = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if sparse.size:
            n_bytes, n_sparse = bitmap_bytes[sparse], n_rows[sparse]
            bits = np.unpackbits(self.buf[ragged(self.pos[frames[sparse]], n_bytes)], bitorder="little")
            present = bits[ragged(8 * (np.cumsum(n_bytes) - n_bytes), n_sparse)].view(bool)
            sparse_rows = ragged(self.row_start[frames[sparse]], n_sparse)[present]
            sparse_owner = np.repeat(sparse, n_sparse)[present]
            count[sparse] = np.bincount(sparse_owner, minlength=frames.shape[0])[sparse]
        self.pos[frames] += bitmap_bytes
        size = _SIZE_OF[sig]
        ok = self._fits(frames, count * size)
        sparse_rows = sparse_rows[ok[sparse_owner]]
        frames, sig, dense, count, size = frames[ok], sig[ok], dense[ok], count[ok], size[ok]
        values = self._values(frames, sig, count)
        bad = ~np.isfinite(values)
        if bad.any():
            self.kill(_any_per(frames, count, bad), R.NON_FINITE_VALUE)
        is_bool = _WIRE_OF[sig] == int(WireType.BOOL)
        if is_bool.any():
            bad = np.repeat(is_bool, count) & (values > 1)
            self.kill(_any_per(frames, count, bad), R.BAD_BOOL)
        ok = self.verdict[frames] == 0
        ok[ok] = ~self.seen[frames[ok], sig[ok]]
        self.kill(frames[(self.verdict[frames] == 0) & ~ok], R.DUPLICATE_SIGNAL)
        self.seen[frames[ok], sig[ok]] = True
        self.pos[frames] += count * size
        self.col_parts.append((sig[ok], frames[ok], k))
        self.all_filled[frames[ok & dense]] = True
        self.row_filled[sparse_rows] = True
        self._scatter(frames, sig, dense, count, ok, sparse_rows, values)

    def _scatter(
        self,
        frames: np.ndarray,
        sig: np.ndarray,
        dense: np.ndarray,
        count: np.ndarray,
        ok: np.ndarray,
        sparse_rows: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Write one column position's values (frame after frame) into their signals' row arrays:
        every row of a dense frame, the present rows of a sparse one; only frames still `ok`."""
        rows: np.ndarray | slice
        if dense.all() and frames.shape[0] == self.frames.shape[0]:
            rows = slice(None)  # every frame of the flush, every row: the common case
        else:
            first = np.cumsum(count) - count
            rows = np.empty(values.shape[0], np.int64)
            rows[ragged(first[dense], count[dense])] = ragged(self.row_start[frames[dense]], count[dense])
            rows[ragged(first[~dense], count[~dense])] = sparse_rows
        distinct = np.unique(sig[ok]).tolist()  # mostly one: vehicles send their columns in one order
        keep = None if ok.all() else np.repeat(ok, count)
        entry_sig = np.repeat(sig, count) if len(distinct) > 1 else None
        for s in distinct:
            column = self.by_signal.get(s)
            if column is None:
                column = self.by_signal[s] = np.full(self.total_rows, np.nan)
            if keep is None and entry_sig is None:
                column[rows] = values
                continue
            here = keep if entry_sig is None else entry_sig == s
            if keep is not None and entry_sig is not None:
                here &= keep
            assert here is not None
            if isinstance(rows, slice):  # entry i is row i
                column[here] = values[here]
            else:
                column[rows[here]] = values[here]

    def _values(self, frames: np.ndarray, sig: np.ndarray, count: np.ndarray) -> np.ndarray:
        """The present values of one column position of `frames`, as float64, frame after frame."""
        out = np.empty(int(count.sum()), np.float64)
        first = np.cumsum(count) - count
        wire = _WIRE_OF[sig]
        for wire_type in WireType:
            these = wire == int(wire_type)
            if not these.any():
                continue
            dtype = wire_type.numpy_dtype
            out[ragged(first[these], count[these])] = self._items(
                dtype, self.pos[frames[these]], count[these]
            )
        return out

    def finish(self) -> None:
        """After the columns: trailing bytes, then frames whose every row is empty."""
        done = self.alive(self.frames)
        self.kill(done[self.pos[done] != self.end[done]], R.TRAILING_BYTES)
        row_owner = np.repeat(self.frames, self.n_rows[self.frames])
        has_row = np.zeros(self.verdict.shape[0], bool)
        has_row[row_owner[self.row_filled]] = True
        done = self.alive(self.frames)
        self.kill(done[~self.all_filled[done] & ~has_row[done]], R.EMPTY_BATCH)
        self.kept = (self.verdict[row_owner] == 0) & (self.all_filled[row_owner] | self.row_filled)
        self.kept_owner = row_owner[self.kept]

    def block(self) -> FrameFields:
        """The decoded flush: the fields of `contract.wire_v1_batch.FrameBlock`, in its order."""
        n = self.verdict.shape[0]
        counts = np.bincount(self.kept_owner, minlength=n)
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        n_kept = int(offsets[-1])
        valid = self.verdict == 0
        col_sig = np.concatenate([s for s, _, _ in self.col_parts] or [np.zeros(0, np.int64)])
        col_frame = np.concatenate([f for _, f, _ in self.col_parts] or [np.zeros(0, np.int64)])
        col_k = np.concatenate(
            [np.full(f.shape[0], k) for _, f, k in self.col_parts] or [np.zeros(0, np.int64)]
        )
        mine = valid[col_frame]
        col_sig, col_frame, col_k = col_sig[mine], col_frame[mine], col_k[mine]
        every_row = n_kept == self.total_rows
        values: dict[str, np.ndarray] = {}
        for s in np.unique(col_sig).tolist():
            column = self.by_signal.pop(s)
            values[SIGNALS[s].vss_path] = column if every_row else column[self.kept]
        self.by_signal.clear()
        columns = frame_columns(n, col_sig, col_frame, col_k)
        return (
            self.vehicle_ids,
            self.seqs,
            self.errors,
            offsets,
            self.ts_us[self.kept] * 1000,
            values,
            columns,
        )


def frame_columns(n: int, sig: np.ndarray, frame: np.ndarray, k: np.ndarray) -> list[tuple[str, ...]]:
    """Each frame's signal paths in frame order. Frames share few column layouts, so each distinct
    layout is built once and the per-frame work is one list lookup."""
    width = int(k.max()) + 1 if k.size else 0
    grid = np.full((n, max(width, 1)), -1, np.int16)
    grid[frame, k] = sig
    keys = np.ascontiguousarray(grid).view(f"V{2 * grid.shape[1]}").reshape(-1)
    layouts, which = np.unique(keys, return_inverse=True)  # one key per frame: its bytes
    rows = np.frombuffer(layouts.tobytes(), np.int16).reshape(-1, grid.shape[1]).tolist()
    paths = [tuple(SIGNALS[s].vss_path for s in row if s >= 0) for row in rows]
    return [paths[g] for g in which.reshape(-1).tolist()]
