"""Properties of the driving kernels (hypothesis): a constant drive raises no harsh event; shifting
time shifts trips and events and changes nothing else (a whole number of days: not even the
night shares); the events found are the harsh brakes the drives were made with."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.columns import TelemetryColumns
from analytics.driving.config import G_MS2, DrivingThresholds
from analytics.driving.events import harsh_events
from analytics.driving.score import ACCEL_LAT, ACCEL_LONG, ODOMETER, SPEED, TripTable, score_trips
from tests.analytics.driving.driving_data import T0, S, columns_of, random_fleet

TH = DrivingThresholds()
SEEDS = st.integers(0, 2**32 - 1)
DAY_NS = 86_400 * S


def _score(cols: TelemetryColumns) -> TripTable:
    return score_trips(cols, np.full(cols.n_rows, 50.0), np.full(len(cols.vehicle_ids), 3600.0), TH)[1]


@settings(max_examples=40, deadline=None)
@given(
    speeds=st.lists(st.floats(5.0, 250.0), min_size=1, max_size=4),
    hz=st.sampled_from([1.0, 2.0, 10.0]),
    seconds=st.integers(30, 900),
)
def test_a_constant_drive_raises_no_harsh_event(speeds: list[float], hz: float, seconds: int) -> None:
    n = int(seconds * hz)
    v = np.repeat(np.arange(len(speeds)), n)
    ts = T0 + np.tile(np.round(np.arange(n) / hz * S).astype(np.int64), len(speeds))
    speed = np.repeat(speeds, n)
    odo = np.tile(np.arange(n) / hz / 3600.0, len(speeds)) * speed
    cols = columns_of(v, ts, {SPEED: speed, ACCEL_LONG: np.zeros(v.size), ACCEL_LAT: np.zeros(v.size),
                              ODOMETER: odo}, len(speeds))  # fmt: skip
    trips, table = score_trips(cols, np.full(v.size, np.nan), np.zeros(len(speeds)), TH)
    long_enough = np.asarray(speeds) * (n - 1) / hz / 3600.0 >= TH.trips.min_distance_km
    assert trips.vehicle.tolist() == np.flatnonzero(long_enough).tolist()
    assert table.harsh_brakes.sum() == table.harsh_accelerations.sum() == table.harsh_corners.sum() == 0
    assert (trips.start_row == np.searchsorted(v, trips.vehicle)).all()  # one trip per vehicle, whole


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, days=st.integers(-3000, 3000), extra_s=st.integers(-86_399, 86_399))
def test_shifting_time_shifts_trips_and_events_and_changes_nothing_else(
    seed: int, days: int, extra_s: int
) -> None:
    cols = random_fleet(seed % 1000).columns
    base_trips, base = score_trips(cols, np.full(cols.n_rows, 50.0), np.zeros(3), TH)
    for shift in (days * DAY_NS, days * DAY_NS + extra_s * S):
        moved = dataclasses.replace(cols, ts_ns=cols.ts_ns + shift)
        trips, table = score_trips(moved, np.full(cols.n_rows, 50.0), np.zeros(3), TH)
        assert (trips.start_ns - shift).tolist() == base_trips.start_ns.tolist()
        assert (trips.row_trip == base_trips.row_trip).all()
        for name in ("distance_km", "harsh_brakes", "harsh_accelerations", "speeding_s", "duration_s"):
            assert np.array_equal(getattr(table, name), getattr(base, name)), name
        if shift % DAY_NS == 0:
            assert np.array_equal(table.score, base.score)


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, hz=st.sampled_from([1.0, 10.0]))
def test_the_events_are_the_harsh_brakes_the_drives_were_made_with(seed: int, hz: float) -> None:
    fleet = random_fleet(seed % 1000, hz=hz)
    c = fleet.columns
    rows = harsh_events(c.vehicle, c.ts_ns, -c.column(ACCEL_LONG) / G_MS2, TH.braking)
    assert list(zip(c.vehicle[rows].tolist(), c.ts_ns[rows].tolist(), strict=True)) == sorted(
        fleet.harsh_brakes
    )
