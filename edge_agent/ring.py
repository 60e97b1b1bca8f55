"""The in-memory ring buffer of full-rate samples that trigger windows are cut from.

Owns: the last few seconds of every sampled signal at the base rate, and which of those cells
were already sent (by the periodic path or an earlier window), so that overlapping windows and
periodic samples are never sent twice. Fixed-size numpy arrays: memory is bounded and known at
start-up. Nothing here is durable; a window still pending at a power cut is lost with it.
"""

from __future__ import annotations

import numpy as np


class SampleRing:
    """`capacity_rows` rows of `paths` (float64, NaN = absent) with a sent flag per cell."""

    def __init__(self, paths: tuple[str, ...], capacity_rows: int) -> None:
        if capacity_rows < 1:
            raise ValueError("capacity_rows must be at least 1")
        self.paths = paths
        self._index = {p: i for i, p in enumerate(paths)}
        self._capacity = capacity_rows
        self._ts = np.full(capacity_rows, np.iinfo(np.int64).min, dtype=np.int64)
        self._values = np.full((capacity_rows, len(paths)), np.nan)
        self._sent = np.zeros((capacity_rows, len(paths)), dtype=bool)
        self._next = 0  # total rows ever appended

    def append(self, ts_ns: np.ndarray, values: np.ndarray, sent: np.ndarray) -> None:
        """Append rows (ts increasing); `values`/`sent` have shape (rows, len(paths))."""
        n = ts_ns.shape[0]
        if n > self._capacity:
            ts_ns, values, sent = ts_ns[-self._capacity :], values[-self._capacity :], sent[-self._capacity :]
            self._next += n - self._capacity
            n = self._capacity
        slots = (self._next + np.arange(n)) % self._capacity
        self._ts[slots] = ts_ns
        self._values[slots] = values
        self._sent[slots] = sent
        self._next += n

    def rows_since(self, since_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(ts, values) of the rows with ts >= since_ns, oldest first: the history that trailing
        windows of trigger conditions reach back into."""
        count = min(self._next, self._capacity)
        slots = (self._next - count + np.arange(count)) % self._capacity
        slots = slots[self._ts[slots] >= since_ns]
        return self._ts[slots].copy(), self._values[slots].copy()

    def take_unsent(
        self, start_ns: int, end_ns: int, paths: tuple[str, ...]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Rows in [start_ns, end_ns] of `paths` that were not sent yet, ordered by time; marks them
        sent. Rows with nothing left are dropped. Paths not in the ring are ignored."""
        count = min(self._next, self._capacity)
        slots = (self._next - count + np.arange(count)) % self._capacity
        in_window = slots[(self._ts[slots] >= start_ns) & (self._ts[slots] <= end_ns)]
        cols = np.array([self._index[p] for p in paths if p in self._index], dtype=np.int64)
        if in_window.size == 0 or cols.size == 0:
            return np.empty(0, dtype=np.int64), {}
        block = self._values[np.ix_(in_window, cols)]
        fresh = ~self._sent[np.ix_(in_window, cols)] & ~np.isnan(block)
        keep_rows = fresh.any(axis=1)
        sent_view = self._sent[np.ix_(in_window, cols)] | fresh
        self._sent[np.ix_(in_window, cols)] = sent_view
        block = np.where(fresh, block, np.nan)[keep_rows]
        ts = self._ts[in_window[keep_rows]].copy()
        return ts, {self.paths[int(c)]: block[:, j] for j, c in enumerate(cols)}
