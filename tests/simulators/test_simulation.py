"""The simulated fleet as a whole: determinism and physics that hold across signals."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.sampling import ACCEL_LONG, COOLANT, ODOMETER, SOC, SPEED
from tests.simulators.helpers import ALL_FAULTS, HAZARDS, Run, busy_scenario, run


@pytest.fixture(scope="module")
def plain() -> Run:
    return run(busy_scenario(vehicles=120, duration_s=600.0))


def test_same_seed_gives_identical_data() -> None:
    sc = busy_scenario(vehicles=60, duration_s=120.0, faults=ALL_FAULTS[:4], hazards=HAZARDS)
    a, b = run(sc), run(sc)
    assert a.signals.keys() == b.signals.keys()
    for path in a.signals:
        np.testing.assert_array_equal(a.signals[path], b.signals[path], err_msg=path)
    assert a.dtcs == b.dtcs
    c = run(sc.with_overrides(seed=sc.seed + 1))
    assert not np.array_equal(a.signals[SPEED], c.signals[SPEED], equal_nan=True)


def test_speed_is_the_integral_of_longitudinal_acceleration(plain: Run) -> None:
    v_ms = plain.signals[SPEED] / 3.6
    accel = plain.signals[ACCEL_LONG]
    dv = np.diff(v_ms, axis=0)
    both = ~np.isnan(dv) & ~np.isnan(accel[1:])
    # Per step: the speed change equals the step's mean acceleration (sensor noise 0.05 m/s²).
    assert np.abs(dv[both] - accel[1:][both]).max() < 0.3
    # Over a minute: integrated acceleration matches the speed change (noise averages out).
    for j in range(0, v_ms.shape[1], 7):
        seg_v, seg_a = v_ms[:61, j], accel[1:61, j]
        if np.isnan(seg_v).any() or np.isnan(seg_a).any():
            continue
        assert abs((seg_v[60] - seg_v[0]) - seg_a.sum()) < 1.0


def test_odometer_never_decreases_and_matches_distance(plain: Run) -> None:
    odo = plain.signals[ODOMETER]
    for j in range(odo.shape[1]):
        col = odo[:, j][~np.isnan(odo[:, j])]
        assert (np.diff(col) >= 0).all()
    v_ms = plain.signals[SPEED] / 3.6
    full = ~np.isnan(v_ms).any(axis=0) & ~np.isnan(odo).any(axis=0)
    trapezoid_km = (v_ms[1:, full] + v_ms[:-1, full]).sum(axis=0) / 2 / 1000
    np.testing.assert_allclose(odo[-1, full] - odo[0, full], trapezoid_km, rtol=1e-6, atol=1e-6)


def test_ev_state_of_charge_falls_while_driving(plain: Run) -> None:
    soc, v = plain.signals[SOC], plain.signals[SPEED]
    evs = np.flatnonzero(~np.isnan(soc).all(axis=0))
    assert evs.size > 10
    checked = 0
    for j in evs:
        driving = v[:, j] > 5
        km = np.nansum(v[driving, j]) / 3600
        if km < 1.0:
            continue
        first, last = np.flatnonzero(driving)[[0, -1]]
        assert soc[last, j] < soc[first, j]
        checked += 1
    assert checked > 5


def test_coolant_warms_while_running_and_combustion_only(plain: Run) -> None:
    coolant, soc = plain.signals[COOLANT], plain.signals[SOC]
    ice = ~np.isnan(coolant).all(axis=0)
    assert not (ice & ~np.isnan(soc).all(axis=0)).any()  # no vehicle has both
    warmed = np.nanmax(coolant[:, ice], axis=0) - np.nanmin(coolant[:, ice], axis=0)
    assert np.median(warmed) > 20
    assert np.nanmax(coolant) < 100  # nobody overheats without a fault


def test_gps_noise_is_a_few_metres(plain: Run) -> None:
    net = plain.sim.network
    lat, lon = (
        plain.signals["Vehicle.CurrentLocation.Latitude"],
        plain.signals["Vehicle.CurrentLocation.Longitude"],
    )
    x, y = net.to_xy(lat, lon)
    err = np.hypot(x - plain.true_xy[:, 0, :], y - plain.true_xy[:, 1, :])
    rms = float(np.sqrt(np.nanmean(err**2)))
    assert 3.0 <= rms <= 5.0


def test_vehicles_stop_at_lights_and_park() -> None:
    r = run(busy_scenario(vehicles=100, duration_s=400.0))
    speed = r.signals[SPEED]
    stopped = (speed < 0.1).mean()
    assert 0.05 < stopped < 0.6
    assert np.nanmax(speed) > 90  # someone uses the ring highway
