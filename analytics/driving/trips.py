"""Trips: where each vehicle's drives begin and end, found from its speed, its engine and the gaps
in its data.

Owns: cutting rows (sorted by vehicle and time) into trips. A trip is a run of moving rows (speed
above `moving_kmh`); it ends at a stop that lasts `park_s` or more, whether the vehicle reported
standing still or reported nothing (parked cars sample rarely or not at all), and at a shorter stop
(`engine_off_stop_s` or more) in which the engine was seen off (engine speed exactly 0: a turning
engine always reports some speed, an EV has no engine speed and relies on the stop's length).
Stops shorter than that (lights, queues) stay inside the trip. Scoring trips is `score`'s job.
Pure and vectorised: trip ids are a cumulative sum of break flags, no per-row loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.driving.config import TripRules

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Trips:
    """`n` trips in (vehicle, time) order. Trip k covers rows `start_row[k]..end_row[k]` (both
    included: its first and last moving rows and every row between); `row_trip[i]` is the trip of
    row i or -1 (parked, or a stop between trips)."""

    vehicle: np.ndarray  # int32, (n,)
    start_row: np.ndarray  # int64
    end_row: np.ndarray  # int64
    start_ns: np.ndarray  # int64
    end_ns: np.ndarray  # int64
    row_trip: np.ndarray  # int64, (n_rows,)

    @property
    def n(self) -> int:
        return int(self.start_row.shape[0])

    def select(self, keep: np.ndarray) -> Trips:
        """The trips where `keep` holds, renumbered; rows of dropped trips get -1."""
        new_id = np.full(self.n + 1, -1, dtype=np.int64)
        new_id[:-1][keep] = np.arange(int(np.count_nonzero(keep)))
        return Trips(
            self.vehicle[keep],
            self.start_row[keep],
            self.end_row[keep],
            self.start_ns[keep],
            self.end_ns[keep],
            new_id[self.row_trip],  # -1 indexes the extra slot, which stays -1
        )


def find_trips(
    vehicle: np.ndarray, ts_ns: np.ndarray, speed_kmh: np.ndarray, engine_rpm: np.ndarray, rules: TripRules
) -> Trips:
    """Trips of rows sorted by (vehicle, ts_ns). `engine_rpm` is NaN where unknown (EVs, or the
    signal not read)."""
    n = ts_ns.shape[0]
    moving = speed_kmh > rules.moving_kmh  # NaN compares False
    mv = np.flatnonzero(moving)
    off_cum = np.cumsum(engine_rpm == 0.0)
    brk = np.ones(mv.shape[0], dtype=bool)
    if mv.size > 1:
        same = vehicle[mv[1:]] == vehicle[mv[:-1]]
        stop_s = (ts_ns[mv[1:]] - ts_ns[mv[:-1]]) / NS_PER_S
        engine_off = off_cum[mv[1:]] - off_cum[mv[:-1]] > 0
        brk[1:] = ~same | (stop_s >= rules.park_s) | (engine_off & (stop_s >= rules.engine_off_stop_s))
    start_row = mv[brk].astype(np.int64)
    last = np.ones(mv.shape[0], dtype=bool)
    last[:-1] = brk[1:]
    end_row = mv[last].astype(np.int64)
    row_trip = np.full(n, -1, dtype=np.int64)
    if start_row.size:
        k = np.searchsorted(start_row, np.arange(n), side="right") - 1
        inside = (k >= 0) & (np.arange(n) <= end_row[np.maximum(k, 0)])
        row_trip[inside] = k[inside]
    return Trips(
        vehicle[start_row].astype(np.int32),
        start_row,
        end_row,
        ts_ns[start_row],
        ts_ns[end_row],
        row_trip,
    )
