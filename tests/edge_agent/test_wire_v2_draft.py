"""The wire v2 draft (a measured proposal, not on the wire): round trip within resolution/2."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.batch import TelemetryBatch
from edge_agent import wire_v2_draft as v2

SPEED, ABS = "Vehicle.Speed", "Vehicle.ADAS.ABS.IsEngaged"


@settings(max_examples=50)
@given(
    st.lists(st.floats(0, 400), min_size=1, max_size=60),
    st.lists(st.integers(1, 5_000_000), min_size=59, max_size=59),
    st.lists(st.booleans(), min_size=60, max_size=60),
)
def test_round_trip_within_half_a_resolution_step(speeds, gaps_us, present) -> None:  # noqa: ANN001
    n = len(speeds)
    ts_ns = (1_700_000_000_000_000 + np.concatenate(([0], np.cumsum(gaps_us[: n - 1])))) * 1000
    speed = np.array(speeds)
    speed[~np.array(present[:n])] = np.nan
    abs_col = (np.arange(n) % 3 == 0).astype(float)
    batch = TelemetryBatch("V-1", 42, ts_ns.astype(np.int64), {SPEED: speed, ABS: abs_col})
    back = v2.decode(v2.encode(batch))
    assert back.seq == 42 and back.vehicle_id == "V-1"
    np.testing.assert_array_equal(back.ts_ns, batch.ts_ns)
    np.testing.assert_array_equal(np.isnan(back.columns[SPEED]), np.isnan(speed))
    np.testing.assert_allclose(back.columns[SPEED], speed, atol=0.005 + 1e-9)
    np.testing.assert_array_equal(back.columns[ABS], abs_col)
