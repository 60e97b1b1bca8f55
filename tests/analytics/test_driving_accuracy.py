"""The driving kernels against the simulator's ground truth, on random scenarios (seeds, fleet
sizes, parking times and faults drawn, not tuned): the trips found are the simulated trips, the
harsh brakes found are the simulated harsh brakes, and drivers who drive faster relative to the
limit have the larger speeding share and the lower score (rank correlation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

from analytics.driving.config import G_MS2, DrivingThresholds
from analytics.driving.events import harsh_events
from analytics.driving.roads import build_road_index, parse_road_geojson, snap_speed_limit_kmh
from analytics.driving.score import ACCEL_LONG, HEADING, LAT, LON, SIGNALS, score_trips, vehicle_scores
from simulators.network_export import network_geojson
from tests.analytics.simulated import SimulatedRun, simulate, standard_scenarios

TH = DrivingThresholds()
SCENARIOS = standard_scenarios(3, seed=77, duration_s=1800.0)
S = 1_000_000_000


@pytest.fixture(scope="module", params=SCENARIOS, ids=[s.name for s in SCENARIOS])
def run(request: pytest.FixtureRequest) -> SimulatedRun:
    return simulate(request.param, SIGNALS)


def _matched(a: list[tuple[int, int, int]], b: list[tuple[int, int, int]], tol_ns: int) -> int:
    """How many of `a` (vehicle, start, end) have a trip in `b` of the same vehicle whose start and
    end are both within `tol_ns`."""
    by_vehicle: dict[int, list[tuple[int, int]]] = {}
    for v, s, e in b:
        by_vehicle.setdefault(v, []).append((s, e))
    count = 0
    for v, s, e in a:
        cand = np.array(by_vehicle.get(v, []), dtype=np.int64).reshape(-1, 2)
        count += bool(((np.abs(cand[:, 0] - s) <= tol_ns) & (np.abs(cand[:, 1] - e) <= tol_ns)).any())
    return count


def _true_trips(run: SimulatedRun, truth: dict[str, Any]) -> list[tuple[int, int, int]]:
    """The simulated trips; one under way when the run began or ended is cut at that end."""
    index = {v: i for i, v in enumerate(run.columns.vehicle_ids)}
    end_ns = run.ts_ns_at(run.scenario.duration_s)
    return [
        (index[t["vehicle_id"]], t["start_ts_ns"] or run.start_ts_ns, t["end_ts_ns"] or end_ns)
        for t in truth["trips"]
    ]


def test_trips_found_are_the_simulated_trips(run: SimulatedRun) -> None:
    cols = run.columns
    trips, _ = score_trips(cols, np.full(cols.n_rows, np.nan), np.zeros(len(cols.vehicle_ids)), TH)
    found = list(zip(trips.vehicle.tolist(), trips.start_ns.tolist(), trips.end_ns.tolist(), strict=True))
    true = _true_trips(run, run.truth["driving"])
    precision = _matched(found, true, 5 * S) / len(found)
    recall = _matched(true, found, 5 * S) / len(true)
    assert len(true) > 100
    assert precision >= 0.97 and recall >= 0.97, (precision, recall)


def test_harsh_brakes_found_are_the_simulated_harsh_brakes(run: SimulatedRun) -> None:
    c = run.columns
    rows = harsh_events(c.vehicle, c.ts_ns, -c.column(ACCEL_LONG) / G_MS2, TH.braking)
    found = [(int(v), int(t), int(t)) for v, t in zip(c.vehicle[rows], c.ts_ns[rows], strict=True)]
    index = {v: i for i, v in enumerate(c.vehicle_ids)}
    true = [(index[h["vehicle_id"]], h["ts_ns"], h["ts_ns"]) for h in run.truth["driving"]["harsh_brakes"]]
    assert len(true) >= 20
    precision = _matched(found, true, 2 * S) / max(len(found), 1)
    recall = _matched(true, found, 2 * S) / len(true)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)


def test_faster_drivers_score_worse_on_speeding(run: SimulatedRun) -> None:
    c = run.columns
    index = build_road_index(parse_road_geojson(network_geojson(run.sim.network)))
    limit = snap_speed_limit_kmh(index, c.column(LAT), c.column(LON), c.column(HEADING))
    _, table = score_trips(c, limit, np.zeros(len(c.vehicle_ids)), TH)
    scores = vehicle_scores(table, len(c.vehicle_ids))
    aggression = np.array([run.truth["driving"]["mean_aggression"].get(v, np.nan) for v in c.vehicle_ids])
    ok = np.isfinite(aggression) & np.isfinite(scores.speeding_share) & (scores.distance_km >= 1.0)
    assert ok.sum() >= 50
    assert spearmanr(aggression[ok], scores.speeding_share[ok]).statistic >= 0.6
    assert spearmanr(aggression[ok], scores.score[ok]).statistic <= -0.4
    # Moving time is almost all on a road with a known limit (GPS error is about 4 m).
    assert table.limit_known_s.sum() >= 0.9 * table.duration_s.sum()
