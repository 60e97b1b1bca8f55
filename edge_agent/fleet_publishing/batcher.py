"""Cutting sampled signals into telemetry batches, one per vehicle per interval.

Owns: the columnar buffer between the simulator's signals and the publisher: many vehicles sampled
together at the same instants (or one; the in-car agent batches from its own spool instead).
`cut` works on one (vehicles, signals, steps) array, so finding which vehicle sampled which
signal when is a handful of numpy calls for the whole fleet; only building the batch objects
themselves is per vehicle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from contract.batch import TelemetryBatch
from contract.signals import BY_PATH
from edge_agent.fleet_publishing.sequence import SequenceCounter


class FleetBatcher:
    """Collects steps of shape (n_vehicles,) per signal; `cut` returns one batch per vehicle.

    `clock_offsets_ns` (optional, int64 per vehicle) is added to every timestamp of that vehicle's
    batches: a vehicle whose clock is off stamps its samples with its own clock."""

    def __init__(
        self,
        vehicle_ids: Sequence[str],
        sequence: SequenceCounter,
        *,
        clock_offsets_ns: np.ndarray | None = None,
    ) -> None:
        self.vehicle_ids = list(vehicle_ids)
        self._sequence = sequence
        n = len(self.vehicle_ids)
        if clock_offsets_ns is not None and np.shape(clock_offsets_ns) != (n,):
            raise ValueError(f"clock_offsets_ns must have shape ({n},)")
        self._offsets = None if clock_offsets_ns is None else np.asarray(clock_offsets_ns, dtype=np.int64)
        self._ts: list[int] = []
        self._steps: dict[str, list[np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._ts)

    def add(self, ts_ns: int, values: Mapping[str, np.ndarray]) -> None:
        """Append one sampling instant. Raises KeyError for a signal outside the catalogue and
        ValueError for a column of the wrong shape or a time that does not increase."""
        if self._ts and ts_ns <= self._ts[-1]:
            raise ValueError("sampling instants must increase")
        n = len(self.vehicle_ids)
        for path, column in values.items():
            BY_PATH[path]  # noqa: B018 - validates the name
            if np.shape(column) != (n,):
                raise ValueError(f"{path}: expected shape ({n},), got {np.shape(column)}")
            steps = self._steps.get(path)
            if steps is None:
                steps = self._steps[path] = [np.full(n, np.nan)] * len(self._ts)
            steps.append(np.asarray(column, dtype=np.float64))
        for path, steps in self._steps.items():
            if path not in values:
                steps.append(np.full(n, np.nan))
        self._ts.append(ts_ns)

    def cut(self) -> list[TelemetryBatch]:
        """Empty the buffer into batches; vehicles with nothing sampled get no batch."""
        if not self._ts:
            return []
        ts = np.array(self._ts, dtype=np.int64)
        paths = list(self._steps)
        n_vehicles, n_steps = len(self.vehicle_ids), ts.shape[0]
        cube = np.empty((n_vehicles, len(paths), n_steps))  # each vehicle's columns are contiguous
        for s, path in enumerate(paths):
            cube[:, s, :] = np.stack(self._steps[path], axis=1)
        self._ts, self._steps = [], {}
        present: np.ndarray = np.asarray(~np.isnan(cube))
        has_column: np.ndarray = np.any(present, axis=2)  # (vehicles, signals)
        has_row: np.ndarray = np.any(present, axis=1)  # (vehicles, steps)
        all_rows: np.ndarray = np.all(has_row, axis=1)
        senders = np.flatnonzero(np.any(has_column, axis=1))
        seqs = self._sequence_block(senders.size)
        keys = np.packbits(has_column, axis=1)
        pattern_paths: dict[bytes, list[tuple[int, str]]] = {}
        batches = []
        for k, v in enumerate(senders.tolist()):
            key = keys[v].tobytes()
            cols = pattern_paths.get(key)
            if cols is None:
                cols = pattern_paths[key] = [(s, paths[s]) for s in np.flatnonzero(has_column[v]).tolist()]
            vts = ts if self._offsets is None else ts + self._offsets[v]
            rows = cube[v]
            if all_rows[v]:
                columns = {path: rows[s] for s, path in cols}
            else:
                keep = has_row[v]
                vts = vts[keep]
                columns = {path: rows[s, keep] for s, path in cols}
            batches.append(
                TelemetryBatch(vehicle_id=self.vehicle_ids[v], seq=seqs[k], ts_ns=vts, columns=columns)
            )
        return batches

    def _sequence_block(self, count: int) -> list[int]:
        return [self._sequence.next() for _ in range(count)]
