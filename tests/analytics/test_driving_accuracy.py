"""The driving kernels against the simulator's ground truth, on random scenarios (seeds, fleet
sizes, parking times and faults drawn, not tuned): the trips found are the simulated trips, the
harsh brakes found are the simulated harsh brakes, and drivers who drive faster relative to the
limit have the larger speeding share and the lower score (rank correlation). The metrics are
`tests.analytics.driving_accuracy`'s, which also records them in docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.driving.score import SIGNALS
from tests.analytics.driving_accuracy import evaluate
from tests.analytics.simulated import simulate, standard_scenarios

SCENARIOS = standard_scenarios(3, seed=77, duration_s=1800.0)


@pytest.fixture(scope="module", params=SCENARIOS, ids=[s.name for s in SCENARIOS])
def result(request: pytest.FixtureRequest) -> dict[str, Any]:
    return evaluate(simulate(request.param, SIGNALS))


def test_trips_found_are_the_simulated_trips(result: dict[str, Any]) -> None:
    assert result["trips_true"] > 100
    assert result["trips_precision"] >= 0.97 and result["trips_recall"] >= 0.97, result


def test_harsh_brakes_found_are_the_simulated_harsh_brakes(result: dict[str, Any]) -> None:
    assert result["harsh_brakes_true"] >= 20
    assert result["harsh_brake_precision"] >= 0.9 and result["harsh_brake_recall"] >= 0.9, result


def test_faster_drivers_score_worse_on_speeding(result: dict[str, Any]) -> None:
    assert result["drivers_ranked"] >= 50
    assert result["spearman_aggression_speeding_share"] >= 0.6, result
    assert result["spearman_aggression_score"] <= -0.4, result
    # Nearly all trip time is on a road with a known limit (GPS error is about 4 m).
    assert result["limit_known_share_of_trip_time"] >= 0.9, result
