"""The hazard map's accuracy across random scenarios (seeds, fleet sizes, pothole severities and
which hazards get repaired when), in memory: every kind found, nothing else on the map, positions
within 10 m, and no repaired hazard still on the map 30 minutes after its repair. The thresholds
were not tuned on these scenarios: they come from the references in docs/hazards.md."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.hazard_scoring import score_hazards
from analytics.hazards.batch import map_of
from analytics.hazards.events import SIGNALS
from simulators.scenario import CitySpec, HazardSpec, NetworkSpec, Scenario
from tests.analytics.simulated import simulate


def random_hazard_scenario(seed: int) -> Scenario:
    rng = np.random.default_rng(seed)
    duration = float(rng.uniform(2700.0, 3600.0))
    return Scenario(
        name=f"random-hazards-{seed}",
        seed=int(rng.integers(1, 1_000_000)),
        vehicles=int(rng.integers(250, 450)),
        duration_s=duration,
        city=CitySpec(blocks=int(rng.integers(7, 11)), block_m=float(rng.uniform(150.0, 250.0))),
        network=NetworkSpec(outage_vehicle_share=0.0, duplicate_batch_probability=0.0, clock_skew_sd_s=0.0),
        hazards=(
            HazardSpec("pothole", int(rng.integers(1, 4)), severity=float(rng.uniform(0.5, 1.5))),
            HazardSpec(
                "pothole",
                1,
                severity=float(rng.uniform(0.5, 1.5)),
                repaired_at_s=float(rng.uniform(300, 900)),
            ),
            HazardSpec("slippery", int(rng.integers(1, 3))),
            HazardSpec("junction", int(rng.integers(1, 3))),
            HazardSpec("junction", 1, repaired_at_s=float(rng.uniform(300, 900))),
        ),
        mean_parking_s=float(rng.uniform(400.0, 900.0)),
    )


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_every_hazard_kind_is_found_where_it_is(seed: int) -> None:
    run = simulate(random_hazard_scenario(seed), SIGNALS)
    scores = score_hazards(run.truth, map_of(run.columns))
    for kind, s in scores["kinds"].items():
        assert s["precision"] is not None and s["precision"] >= 0.9, (kind, s)
        assert s["recall"] is not None and s["recall"] >= 0.9, (kind, s)
        assert s["median_error_m"] <= 10.0, (kind, s)
    assert scores["kinds"]["pothole"]["repaired_checked"] == 1
    assert scores["repaired_still_on_map"] == [], scores
