"""Trips: moving rows grouped, split by parking (a long stop or a gap in the data) and by a shorter
stop with the engine off; light stops stay inside a trip; vehicles never share a trip."""

from __future__ import annotations

import numpy as np

from analytics.driving.config import TripRules
from analytics.driving.trips import find_trips
from tests.analytics.driving.driving_data import S, random_fleet

RULES = TripRules()


def _trips(
    speed: list[float], rpm: list[float] | None = None, vehicle: list[int] | None = None, dt_s: float = 1
):
    n = len(speed)
    ts = (np.arange(n) * dt_s * S).astype(np.int64)
    v = np.zeros(n, dtype=np.int32) if vehicle is None else np.asarray(vehicle, dtype=np.int32)
    r = np.full(n, np.nan) if rpm is None else np.asarray(rpm, dtype=float)
    return find_trips(v, ts, np.asarray(speed, dtype=float), r, RULES)


def test_a_light_stop_stays_inside_a_trip_and_parking_splits() -> None:
    speed = [50.0] * 100 + [0.0] * 40 + [50.0] * 100 + [0.0] * 300 + [40.0] * 50
    trips = _trips(speed)  # an EV: no engine speed, the stop's length decides
    assert trips.n == 2
    assert trips.start_row.tolist() == [0, 540] and trips.end_row.tolist() == [239, 589]
    assert (trips.row_trip[:240] == 0).all() and (trips.row_trip[240:540] == -1).all()
    assert (trips.row_trip[540:] == 1).all()


def test_a_short_stop_with_the_engine_off_ends_a_trip_but_idling_does_not() -> None:
    speed = [50.0] * 60 + [0.0] * 45 + [50.0] * 60
    idling = [900.0] * 165
    off = [900.0] * 60 + [0.0] * 45 + [900.0] * 60
    assert _trips(speed, idling).n == 1
    assert _trips(speed, off).n == 2
    brief_off = [900.0] * 60 + [0.0] * 10 + [900.0] * 95  # start-stop at a light: under 30 s
    assert _trips([50.0] * 60 + [0.0] * 20 + [50.0] * 85, brief_off).n == 1


def test_a_gap_in_the_data_as_long_as_parking_splits() -> None:
    trips = _trips([50.0] * 10 + [45.0] * 10, dt_s=1)
    assert trips.n == 1
    n = 20
    ts = np.r_[np.arange(10), 200 + np.arange(10)].astype(np.int64) * S
    t = find_trips(np.zeros(n, dtype=np.int32), ts, np.full(n, 50.0), np.full(n, np.nan), RULES)
    assert t.n == 2 and t.start_ns.tolist() == [0, 200 * S]


def test_vehicles_never_share_a_trip() -> None:
    trips = _trips([50.0] * 20, vehicle=[0] * 10 + [1] * 10)
    assert trips.n == 2 and trips.vehicle.tolist() == [0, 1]


def test_random_drives_give_the_drives_they_were_made_of() -> None:
    for seed in range(5):
        fleet = random_fleet(seed)
        c = fleet.columns
        trips = find_trips(
            c.vehicle,
            c.ts_ns,
            c.column("Vehicle.Speed"),
            c.column("Vehicle.Powertrain.CombustionEngine.Speed"),
            RULES,
        )
        found = list(zip(trips.vehicle.tolist(), trips.start_ns.tolist(), trips.end_ns.tolist(), strict=True))
        assert found == sorted(fleet.trips)


def test_no_rows_no_trips() -> None:
    trips = _trips([])
    assert trips.n == 0 and trips.row_trip.shape == (0,)
