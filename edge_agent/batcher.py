"""Cutting sampled signals into telemetry batches, one per vehicle per interval.

Owns: the columnar buffer between a source and the publisher. One batcher serves a single in-car
agent (one vehicle) or the simulator (many vehicles sampled together at the same instants).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from contract.batch import TelemetryBatch
from contract.signals import BY_PATH
from edge_agent.sequence import SequenceCounter


class FleetBatcher:
    """Collects steps of shape (n_vehicles,) per signal; `cut` returns one batch per vehicle."""

    def __init__(self, vehicle_ids: Sequence[str], sequence: SequenceCounter) -> None:
        self.vehicle_ids = list(vehicle_ids)
        self._sequence = sequence
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
            self._steps.setdefault(path, [np.full(n, np.nan)] * len(self._ts)).append(
                np.asarray(column, dtype=np.float64)
            )
        for path, steps in self._steps.items():
            if path not in values:
                steps.append(np.full(n, np.nan))
        self._ts.append(ts_ns)

    def cut(self) -> list[TelemetryBatch]:
        """Empty the buffer into batches; vehicles with nothing sampled get no batch."""
        if not self._ts:
            return []
        ts = np.array(self._ts, dtype=np.int64)
        matrices = {path: np.stack(steps) for path, steps in self._steps.items()}  # (steps, vehicles)
        self._ts, self._steps = [], {}
        batches = []
        for v, vehicle_id in enumerate(self.vehicle_ids):
            columns = {path: m[:, v] for path, m in matrices.items() if not np.isnan(m[:, v]).all()}
            if not columns:
                continue
            rows = np.zeros(ts.shape[0], dtype=bool)
            for col in columns.values():
                rows |= ~np.isnan(col)
            batches.append(
                TelemetryBatch(
                    vehicle_id=vehicle_id,
                    seq=self._sequence.next(),
                    ts_ns=ts[rows],
                    columns={path: col[rows] for path, col in columns.items()},
                )
            )
        return batches
