"""The driving kernels scored against a simulated run's ground truth: trips (precision and recall,
start and end within 5 s), harsh brakes (within 2 s) and the rank correlation between each
driver's mean aggression and its speeding share and score. Shared by the accuracy tests and the
record in docs/benchmarks.md:

    .venv/bin/python -m tests.analytics.driving_accuracy --scenarios 4 --duration 3600
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from analytics.driving.config import G_MS2, DrivingThresholds
from analytics.driving.events import harsh_events
from analytics.driving.roads import build_road_index, parse_road_geojson, snap_speed_limit_kmh
from analytics.driving.score import ACCEL_LONG, HEADING, LAT, LON, SIGNALS, score_trips, vehicle_scores
from simulators.network_export import network_geojson
from tests.analytics.simulated import SimulatedRun, simulate, standard_scenarios

S = 1_000_000_000
Span = tuple[int, int, int]  # (vehicle index, start ns, end ns)


def matched(a: list[Span], b: list[Span], tol_ns: int) -> int:
    """How many of `a` have a span in `b` of the same vehicle with start and end within `tol_ns`."""
    by_vehicle: dict[int, list[tuple[int, int]]] = {}
    for v, s, e in b:
        by_vehicle.setdefault(v, []).append((s, e))
    count = 0
    for v, s, e in a:
        cand = np.array(by_vehicle.get(v, []), dtype=np.int64).reshape(-1, 2)
        count += bool(((np.abs(cand[:, 0] - s) <= tol_ns) & (np.abs(cand[:, 1] - e) <= tol_ns)).any())
    return count


def true_trips(run: SimulatedRun) -> list[Span]:
    """The simulated trips; one under way when the run began or ended is cut at that end."""
    index = {v: i for i, v in enumerate(run.columns.vehicle_ids)}
    end_ns = run.ts_ns_at(run.scenario.duration_s)
    return [
        (index[t["vehicle_id"]], t["start_ts_ns"] or run.start_ts_ns, t["end_ts_ns"] or end_ns)
        for t in run.truth["driving"]["trips"]
    ]


def evaluate(run: SimulatedRun, th: DrivingThresholds = DrivingThresholds()) -> dict[str, Any]:  # noqa: B008
    c = run.columns
    index = build_road_index(parse_road_geojson(network_geojson(run.sim.network)))
    limit = snap_speed_limit_kmh(index, c.column(LAT), c.column(LON), c.column(HEADING))
    trips, table = score_trips(c, limit, np.zeros(len(c.vehicle_ids)), th)
    found = list(zip(trips.vehicle.tolist(), trips.start_ns.tolist(), trips.end_ns.tolist(), strict=True))
    truth = true_trips(run)
    rows = harsh_events(c.vehicle, c.ts_ns, -c.column(ACCEL_LONG) / G_MS2, th.braking)
    brakes = [(int(v), int(t), int(t)) for v, t in zip(c.vehicle[rows], c.ts_ns[rows], strict=True)]
    vid = {v: i for i, v in enumerate(c.vehicle_ids)}
    true_brakes = [
        (vid[h["vehicle_id"]], h["ts_ns"], h["ts_ns"]) for h in run.truth["driving"]["harsh_brakes"]
    ]
    scores = vehicle_scores(table, len(c.vehicle_ids))
    aggression = np.array([run.truth["driving"]["mean_aggression"].get(v, np.nan) for v in c.vehicle_ids])
    ok = np.isfinite(aggression) & np.isfinite(scores.speeding_share) & (scores.distance_km >= 1.0)
    return {
        "scenario": run.scenario.name,
        "seed": run.scenario.seed,
        "vehicles": len(c.vehicle_ids),
        "trips_true": len(truth),
        "trips_found": len(found),
        "trips_precision": round(matched(found, truth, 5 * S) / max(len(found), 1), 4),
        "trips_recall": round(matched(truth, found, 5 * S) / max(len(truth), 1), 4),
        "harsh_brakes_true": len(true_brakes),
        "harsh_brakes_found": len(brakes),
        "harsh_brake_precision": round(matched(brakes, true_brakes, 2 * S) / max(len(brakes), 1), 4),
        "harsh_brake_recall": round(matched(true_brakes, brakes, 2 * S) / max(len(true_brakes), 1), 4),
        "drivers_ranked": int(ok.sum()),
        "spearman_aggression_speeding_share": round(
            float(spearmanr(aggression[ok], scores.speeding_share[ok]).statistic), 4
        ),
        "spearman_aggression_score": round(float(spearmanr(aggression[ok], scores.score[ok]).statistic), 4),
        "limit_known_share_of_trip_time": round(float(table.limit_known_s.sum() / table.duration_s.sum()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=4)
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    for scenario in standard_scenarios(args.scenarios, seed=args.seed, duration_s=args.duration):
        print(json.dumps(evaluate(simulate(scenario, SIGNALS))), flush=True)


if __name__ == "__main__":
    main()
