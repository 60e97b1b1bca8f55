"""Trip scores by hand: distance from the odometer, events per 100 km, the share of time over the
limit where it is known, night and high-risk time in local time, and the distance-weighted
vehicle score."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.driving.config import DrivingThresholds
from analytics.driving.score import ACCEL_LONG, ODOMETER, SPEED, score_trips, vehicle_scores
from tests.analytics.driving.driving_data import S, columns_of

T0 = 1_764_201_600 * S  # 2025-11-27 00:00 UTC


def _trip(start_s: float, n: int, speed_kmh: float, km0: float, vehicle: int = 0):
    ts = T0 + np.round((start_s + np.arange(n)) * S).astype(np.int64)
    return np.full(n, vehicle), ts, np.full(n, speed_kmh), km0 + np.arange(n) * speed_kmh / 3600.0


def test_one_trip_by_hand() -> None:
    v, ts, speed, odo = _trip(3600.0, 601, 72.0, 1000.0)  # 01:00 UTC, 10 minutes at 72 km/h: 12 km
    accel = np.zeros(601)
    accel[[100, 300, 301]] = -4.0  # two harsh brakes (0.41 g), one of two samples
    cols = columns_of(v, ts, {SPEED: speed, ODOMETER: odo, ACCEL_LONG: accel}, 1)
    limit = np.where(np.arange(601) < 300, 60.0, np.nan)  # known for the first half: all over 63
    _, table = score_trips(cols, limit, np.array([3600.0]))  # local 02:00: high-risk and night
    assert table.n == 1
    assert table.distance_km[0] == pytest.approx(12.0)
    assert table.duration_s[0] == 600.0
    assert table.harsh_brakes[0] == 2 and table.harsh_accelerations[0] == 0
    assert table.limit_known_s[0] == 300.0 and table.speeding_s[0] == 300.0
    assert table.high_risk_s[0] == 600.0 and table.night_s[0] == 600.0
    w = DrivingThresholds().weights
    braking = w.braking * min((2 / 12.0 * 100.0) / w.full_braking_per_100km, 1.0)
    expected = 100.0 - braking - w.speeding - w.high_risk_time - w.night
    assert table.penalty_braking[0] == pytest.approx(braking)
    assert table.score[0] == pytest.approx(expected)


def test_a_calm_daytime_trip_scores_100_and_unknown_limits_cost_nothing() -> None:
    v, ts, speed, odo = _trip(12 * 3600.0, 300, 50.0, 0.0)
    cols = columns_of(v, ts, {SPEED: speed, ODOMETER: odo, ACCEL_LONG: np.zeros(300)}, 1)
    _, table = score_trips(cols, np.full(300, np.nan), np.array([0.0]))
    assert table.score.tolist() == [100.0]
    assert np.isnan(table.speeding_share()).all()


def test_vehicle_score_weighs_trips_by_distance_and_short_trips_are_dropped() -> None:
    a = _trip(12 * 3600.0, 601, 60.0, 0.0)  # 10 km
    b = _trip(13 * 3600.0, 301, 60.0, 20.0)  # 5 km, speeding the whole time
    c = _trip(14 * 3600.0, 4, 30.0, 30.0)  # 25 m: moving the car, not a trip
    parts = [np.concatenate(x) for x in zip(a, b, c, strict=True)]
    v, ts, speed, odo = parts
    limit = np.concatenate([np.full(601, np.nan), np.full(301, 50.0), np.full(4, np.nan)])
    cols = columns_of(v, ts, {SPEED: speed, ODOMETER: odo}, 2)
    _, table = score_trips(cols, limit, np.zeros(2))
    assert table.n == 2
    scores = vehicle_scores(table, 2)
    w = DrivingThresholds().weights
    assert table.score.tolist() == [100.0, 100.0 - w.speeding]
    assert scores.score[0] == pytest.approx((100.0 * 10 + (100.0 - w.speeding) * 5) / 15)
    assert scores.trips.tolist() == [2, 0] and np.isnan(scores.score[1])
    assert scores.speeding_share[0] == pytest.approx(1.0)
