"""Fault and hazard detection on random scenarios (`benchmarks.detection_sweep`): a few small draws
(seeds, fleet sizes and EV shares, cities and latitudes, cold winters to hot summers, start hours,
parking and trip habits, every fault kind with drawn parameters, late onsets and repairs, hazard
counts, placements and repairs), every detector the job runs, scored against the ground truth.

The targets hold over the draws: per fault kind, precision and recall (over the faults whose
symptom showed for at least 10 minutes: `analytics.scoring`) of at least 0.95; per hazard kind,
precision and recall of at least 0.9 with a median position error of at most 10 m; and no
repaired hazard still on the map 30 minutes after its repair. The long sweep and its results:
docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.detection_sweep import sweep
from simulators.scenario import FAULT_KINDS, HAZARD_KINDS


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return sweep(3, seed=20261202, vehicles=(150, 220), durations_s=(3600.0, 5400.0))["aggregate"]


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_fault_kind_meets_the_targets_across_draws(kind: str, result: dict[str, Any]) -> None:
    s = result["faults"][kind]
    assert s["faults"] >= 3 and s["observable_faults"] >= 1, s
    assert s["precision"] is not None and s["precision"] >= 0.95, s
    assert s["recall_observable"] >= 0.95, s


@pytest.mark.parametrize("kind", HAZARD_KINDS)
def test_every_hazard_kind_meets_the_targets_across_draws(kind: str, result: dict[str, Any]) -> None:
    s = result["hazards"][kind]
    assert s["true_at_end"] >= 3, s
    assert s["precision"] is not None and s["precision"] >= 0.9, s
    assert s["recall"] is not None and s["recall"] >= 0.9, s
    assert s["median_error_m_worst_draw"] <= 10.0, s


def test_no_repaired_hazard_stays_on_the_map(result: dict[str, Any]) -> None:
    assert result["repaired_still_on_map"] == []
