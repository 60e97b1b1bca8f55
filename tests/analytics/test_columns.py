"""The columns shape the kernels take: bounds per vehicle, and the checks readers rely on."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.columns import TelemetryColumns


def _cols(vehicle: list[int], ts: list[int], n_vehicles: int = 3) -> TelemetryColumns:
    return TelemetryColumns(
        tuple(f"V{i}" for i in range(n_vehicles)),
        np.array(vehicle, np.int32),
        np.array(ts, np.int64),
        {"Vehicle.Speed": np.arange(len(ts), dtype=np.float64)},
    )


def test_bounds_give_each_vehicle_its_rows_empty_ones_included() -> None:
    cols = _cols([0, 0, 2, 2, 2], [1, 2, 1, 5, 9])
    cols.check()
    b = cols.bounds()
    assert [(int(b[k]), int(b[k + 1])) for k in range(3)] == [(0, 2), (2, 2), (2, 5)]
    assert np.isnan(cols.column("Vehicle.TraveledDistance")).all()


@pytest.mark.parametrize(("vehicle", "ts"), [([1, 0], [1, 2]), ([0, 0], [2, 1]), ([0, 3], [1, 2])])
def test_unsorted_or_out_of_range_rows_are_refused(vehicle: list[int], ts: list[int]) -> None:
    with pytest.raises(ValueError, match="."):
        _cols(vehicle, ts).check()
