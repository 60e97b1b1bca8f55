"""The driving step's rows cut from pieces of a wider read (`TripWindow`, what the analysis job does
so that it reads the telemetry once) are the rows its own read of the window returns: each
vehicle's rows from its window start on, only the driving signals, in order."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.columns import TelemetryColumns
from analytics.driving.score import SIGNALS
from analytics.driving_job import DrivingJobConfig, TripWindow

S = 1_000_000_000
OTHER = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"


def _wide_read(rng: np.random.Generator, ids: tuple[str, ...]) -> TelemetryColumns:
    rows = rng.integers(0, 40, len(ids))
    vehicle = np.repeat(np.arange(len(ids), dtype=np.int32), rows)
    ts = np.concatenate([np.sort(rng.integers(0, 3600, n)) for n in rows]).astype(np.int64) * S
    values = {s: rng.normal(size=vehicle.size) for s in (*SIGNALS, OTHER)}
    return TelemetryColumns(ids, vehicle, ts, values)


@pytest.mark.parametrize("seed", range(5))
def test_the_window_cut_from_pieces_is_the_windows_own_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = tuple(f"V{k}" for k in range(6))
    wide = _wide_read(rng, ids)
    oldest = {v: int(rng.integers(0, 3600)) * S for v in ids}
    window = TripWindow(oldest, DrivingJobConfig(trailing_s=1200.0))
    cuts = np.unique(np.searchsorted(wide.vehicle, rng.integers(0, len(ids), 3)))  # whole vehicles
    for lo, hi in zip([0, *cuts], [*cuts, wide.n_rows], strict=True):
        window.add(
            TelemetryColumns(
                ids, wide.vehicle[lo:hi], wide.ts_ns[lo:hi], {s: c[lo:hi] for s, c in wide.values.items()}
            )
        )
    got = window.columns()
    keep = wide.ts_ns >= np.array([oldest[v] - 1200 * S for v in ids])[wide.vehicle]
    assert got.vehicle_ids == ids and set(got.values) == set(SIGNALS)
    np.testing.assert_array_equal(got.vehicle, wide.vehicle[keep])
    np.testing.assert_array_equal(got.ts_ns, wide.ts_ns[keep])
    for s in SIGNALS:
        np.testing.assert_array_equal(got.values[s], wide.values[s][keep])
    got.check()


def test_pieces_of_other_vehicles_or_without_the_signals_are_refused() -> None:
    window = TripWindow({"A": 0, "B": 0})
    empty = window.columns()
    assert empty.n_rows == 0 and empty.vehicle_ids == ("A", "B")
    z = np.zeros(0)
    with pytest.raises(ValueError):
        window.add(TelemetryColumns(("A",), z.astype(np.int32), z.astype(np.int64), {s: z for s in SIGNALS}))
    with pytest.raises(ValueError):
        window.add(TelemetryColumns(("A", "B"), z.astype(np.int32), z.astype(np.int64), {OTHER: z}))
