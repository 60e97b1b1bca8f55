"""Hazards leave their signatures where they are, and nowhere once repaired."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.sampling import ABS, ACCEL_LONG, ACCEL_VERT, SPEED, TCS
from tests.simulators.helpers import HAZARDS, Run, busy_scenario, run

SPIKE_MS2 = 4.0  # well above road noise (at most ~0.7 m/s² sd at highway speed)
HARSH_MS2 = -4.0  # about 0.4 g, inside the 0.25-0.45 g thresholds in use


@pytest.fixture(scope="module")
def hazardous() -> Run:
    return run(busy_scenario(vehicles=300, duration_s=900.0, hazards=HAZARDS))


def _near(r: Run, hazard: dict, radius_m: float) -> np.ndarray:
    return np.hypot(r.true_xy[:, 0, :] - hazard["x_m"], r.true_xy[:, 1, :] - hazard["y_m"]) < radius_m


def _active(r: Run, hazard: dict) -> np.ndarray:
    until = hazard["repaired_at_s"] if hazard["repaired_at_s"] is not None else np.inf
    return ((r.t_s >= hazard["active_from_s"]) & (r.t_s < until))[:, None]


def _of(r: Run, kind: str) -> list[dict]:
    return [h for h in r.sim.hazards.records if h["kind"] == kind]


def test_potholes_spike_vertical_acceleration_only_where_they_are(hazardous: Run) -> None:
    spikes = hazardous.signals[ACCEL_VERT] > SPIKE_MS2
    anywhere_near = np.zeros_like(spikes)
    for h in _of(hazardous, "pothole"):
        near = _near(hazardous, h, 20.0)
        anywhere_near |= near
        assert (spikes & near & _active(hazardous, h)).sum() >= 5
        assert not (spikes & near & ~_active(hazardous, h)).any()  # repaired: forgotten
    assert not (spikes & ~anywhere_near).any()


def test_pothole_spike_grows_with_speed(hazardous: Run) -> None:
    spikes = hazardous.signals[ACCEL_VERT] > SPIKE_MS2
    severity_one = np.zeros_like(spikes)
    for h in _of(hazardous, "pothole"):
        if h["severity"] == 1.0:
            severity_one |= _near(hazardous, h, 20.0)
    sel = spikes & severity_one
    speed, peak = hazardous.signals[SPEED][sel], hazardous.signals[ACCEL_VERT][sel]
    assert np.corrcoef(speed, peak)[0, 1] > 0.5


def test_slippery_stretch_engages_abs_and_tcs(hazardous: Run) -> None:
    (h,) = _of(hazardous, "slippery")
    near = _near(hazardous, h, h["length_m"] / 2 + 30)  # flags are for the edge at the step start
    abs_on, tcs_on = hazardous.signals[ABS] == 1, hazardous.signals[TCS] == 1
    assert (abs_on & near).sum() > 20 and (tcs_on & near).sum() > 10
    emergency = hazardous.signals[ACCEL_LONG] < -6.0
    assert (abs_on & ~near & ~emergency).sum() == 0
    assert (tcs_on & near).sum() > 3 * (tcs_on & ~near).sum()


def test_dangerous_junction_causes_harsh_braking_until_repaired(hazardous: Run) -> None:
    harsh = hazardous.signals[ACCEL_LONG] < HARSH_MS2
    junctions = _of(hazardous, "junction")
    assert any(h["repaired_at_s"] is not None for h in junctions)
    net = hazardous.sim.network
    others = [n for n in range(net.n_nodes) if n not in {h["node"] for h in junctions}]
    background = []
    for n in others[:: max(1, len(others) // 20)]:
        spot = {"x_m": net.node_x_m[n], "y_m": net.node_y_m[n]}
        background.append((harsh & _near(hazardous, spot, 60.0)).sum())
    for h in junctions:
        near = _near(hazardous, h, 60.0)
        active = _active(hazardous, h)
        active_share = active.mean()
        during = (harsh & near & active).sum()
        assert during > 5 * max(np.mean(background), 1.0) * active_share
        if h["repaired_at_s"] is not None:
            assert (harsh & near & ~active).sum() <= max(np.percentile(background, 90), 2)
