"""The incremental job's rule, without a database (hypothesis): data that arrives in two parts,
each run re-reading its vehicles' trailing window and merging its whole trips into the store,
stores exactly what one run over all the data stores; a trip cut by a window's start is never
stored."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.columns import TelemetryColumns
from analytics.driving.config import DrivingThresholds
from analytics.driving.window import TripRow, merge_trips, window_trips
from tests.analytics.driving.driving_data import S, random_fleet

TH = DrivingThresholds()
TRAILING_NS = 6 * 3600 * S


def _job_run(
    everything: TelemetryColumns,
    known: np.ndarray,
    arrived: np.ndarray,
    store: dict[tuple[str, int], TripRow],
) -> dict[tuple[str, int], TripRow]:
    """What one pass of the shell does when the rows `arrived` (a mask) are new: for each vehicle
    with new rows, re-read from its oldest new row minus the trailing window up to what has arrived
    so far (`known`), score, merge."""
    vehicles = np.unique(everything.vehicle[arrived])
    if vehicles.size == 0:
        return store
    oldest = {int(v): int(everything.ts_ns[arrived & (everything.vehicle == v)].min()) for v in vehicles}
    start = np.array([oldest[int(v)] - TRAILING_NS for v in vehicles], dtype=np.int64)
    pos = np.searchsorted(vehicles, everything.vehicle)
    chosen = np.isin(everything.vehicle, vehicles)
    read = chosen & known & (everything.ts_ns >= start[np.minimum(pos, vehicles.size - 1)])
    cols = TelemetryColumns(
        tuple(everything.vehicle_ids[int(v)] for v in vehicles),
        pos[read].astype(np.int32),
        everything.ts_ns[read],
        {k: v[read] for k, v in everything.values.items()},
    )
    rows, region = window_trips(cols, start, np.full(cols.n_rows, 50.0), np.zeros(vehicles.size), TH)
    return merge_trips(store, rows, dict(zip(cols.vehicle_ids, region.tolist(), strict=True)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.floats(0.0, 1.0))
def test_two_arrivals_store_what_one_arrival_stores(seed: int, cut: float) -> None:
    cols = random_fleet(seed, n_vehicles=3, legs=3).columns
    lo, hi = int(cols.ts_ns.min()), int(cols.ts_ns.max())
    first = cols.ts_ns < lo + int(cut * (hi - lo))
    every = np.ones(cols.n_rows, dtype=bool)
    one = _job_run(cols, every, every, {})
    split = _job_run(cols, every, ~first, _job_run(cols, first, first, {}))
    assert split == one
    assert len(one) >= 1


def test_a_trip_cut_by_the_window_start_is_not_stored() -> None:
    cols = random_fleet(3, n_vehicles=1, legs=3).columns
    every = np.ones(cols.n_rows, dtype=bool)
    whole = _job_run(cols, every, every, {})
    starts = sorted(k[1] for k in whole)
    # A window that starts inside the second trip: that trip is left alone, later ones are stored.
    mid = starts[1] + 60 * S
    start = np.array([mid], dtype=np.int64)
    keep = cols.ts_ns >= mid
    sub = TelemetryColumns(
        cols.vehicle_ids, cols.vehicle[keep], cols.ts_ns[keep], {k: v[keep] for k, v in cols.values.items()}
    )
    rows, region = window_trips(sub, start, np.full(sub.n_rows, 50.0), np.zeros(1), TH)
    assert [r.start_ns for r in rows] == starts[2:]
    assert region.tolist() == [mid + int(TH.trips.park_s * S)]
    merged = merge_trips(whole, rows, {"V000": int(region[0])})
    assert merged == whole
