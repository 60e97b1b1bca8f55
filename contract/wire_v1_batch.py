"""Wire format v1, decoded a whole flush at a time: many frames in, one columnar block out.

Owns: `decode_frames`, the batch form of `contract.wire_v1.decode`. It gives, frame for frame, what
`decode` gives (the same batch, or a DecodeError with the same reason and detail), but the cost per
frame is one header parse in Python; every column of every frame is read with numpy over the
concatenated bodies (one pass per column position, across all frames), never by a Python call per
column per message. Unframing and zlib inflation (bounded, as in `decode`) stay per frame.

How: each frame carries a verdict code (0 = still valid). The checks run in `decode`'s order (header,
then the body front to back), each on the frames still valid, so a frame dies of the first fault
`decode` would stop at, and a dead frame never costs the others. A rejected frame is decoded once
more by `decode` for its error's exact detail: hostile frames are rare, and `decode` is the reference.

Leaves the layout to `contract.wire_v1` (and docs/wire-format.md). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contract.batch import TelemetryBatch
from contract.errors import DeadLetterReason, DecodeError
from contract.wire_v1 import decode
from contract.wire_v1_frames import REASONS, Pass, ragged


@dataclass(frozen=True)
class FrameBlock:
    """The decoded frames of a flush. Frame i is valid when `errors[i]` is None; its kept rows are
    `row_offsets[i]:row_offsets[i+1]` of `ts_ns` and of every array in `values` (float64, NaN where
    absent; one array per signal that any valid frame carries). `columns[i]` lists frame i's
    signals in frame order (what `decode` puts in the batch's `columns`)."""

    vehicle_ids: list[str]
    seqs: list[int]
    errors: list[DecodeError | None]
    row_offsets: np.ndarray
    ts_ns: np.ndarray
    values: dict[str, np.ndarray]
    columns: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.errors)

    def rows_of(self, frames: np.ndarray) -> np.ndarray:
        """The row indices (into `ts_ns` and `values`) of `frames`, frame after frame."""
        starts = self.row_offsets[frames]
        return ragged(starts, self.row_offsets[frames + 1] - starts)

    def batch(self, i: int) -> TelemetryBatch:
        """Frame i as `decode` returns it (its arrays are views into the block). Raises frame i's
        DecodeError when it is not valid."""
        error = self.errors[i]
        if error is not None:
            raise error
        a, b = int(self.row_offsets[i]), int(self.row_offsets[i + 1])
        cols = {path: self.values[path][a:b] for path in self.columns[i]}
        return TelemetryBatch(self.vehicle_ids[i], self.seqs[i], self.ts_ns[a:b], cols)


def decode_frames(payloads: Sequence[bytes], max_bytes: int | None = None) -> FrameBlock:
    """Decode the payloads at once. Raises nothing for bad bytes: each frame's DecodeError is in
    `errors`, with `decode`'s reason and detail.

    With `max_bytes`, stop after the frame whose inflated body and decoded arrays (estimated by
    `contract.wire_v1_frames.decoded_bytes`) take the total past it: the block then holds the first
    `len(block)` payloads (at least one), and the caller decodes the rest later. What one call holds
    in memory is thus bounded by what the frames decode to, not by their count or wire size."""
    work = Pass(payloads, max_bytes)
    work.run()
    for i in np.flatnonzero(work.verdict).tolist():
        if work.errors[i] is None:
            work.errors[i] = _reference_error(payloads[i], REASONS[int(work.verdict[i])])
    return FrameBlock(*work.block())


def batch_verdicts(payloads: Sequence[bytes]) -> list[DeadLetterReason | None]:
    """The batch decoder's own verdict per frame (None: valid), before `decode` supplies the detail
    of a rejected frame: what the equivalence tests compare with `decode`'s reasons."""
    work = Pass(payloads)
    work.run()
    return [REASONS[v] for v in work.verdict.tolist()]


def _reference_error(payload: bytes, reason: DeadLetterReason | None) -> DecodeError:
    """`decode`'s error for a frame the batch decoder rejected with `reason`. Should `decode`
    accept it (a bug here), the frame is rejected as `internal_error`: its bytes are kept."""
    try:
        decode(payload)
    except DecodeError as exc:
        return exc
    return DecodeError(
        DeadLetterReason.INTERNAL_ERROR, f"the batch decoder rejected a frame decode accepts ({reason})"
    )
