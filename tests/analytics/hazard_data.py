"""Small simulated runs with every hazard kind, for the hazard map's tests: in memory (columns and
ground truth) and stored in a real PostgreSQL through ingest's own store, as vehicles would."""

from __future__ import annotations

import time

import numpy as np

from analytics.hazards.events import SIGNALS
from contract import topics, wire_v1
from contract.batch import TelemetryBatch
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from simulators.scenario import CitySpec, HazardSpec, NetworkSpec, Scenario
from tests.analytics.simulated import SimulatedRun, recent_morning_unix_s, simulate


def hazard_scenario(
    seed: int, *, vehicles: int = 250, duration_s: float = 2400.0, blocks: int = 8
) -> Scenario:
    """Every hazard kind in a small city, one pothole repaired early enough to check it is gone 30
    minutes later; no faults."""
    return Scenario(
        name=f"hazards-{seed}",
        seed=seed,
        vehicles=vehicles,
        duration_s=duration_s,
        city=CitySpec(blocks=blocks, block_m=200.0),
        network=NetworkSpec(outage_vehicle_share=0.0, duplicate_batch_probability=0.0, clock_skew_sd_s=0.0),
        hazards=(
            HazardSpec("pothole", 2),
            HazardSpec("pothole", 1, repaired_at_s=duration_s / 5),
            HazardSpec("slippery", 1),
            HazardSpec("junction", 1),
        ),
        mean_parking_s=600.0,
    )


def simulate_hazards(scenario: Scenario) -> SimulatedRun:
    return simulate(scenario, SIGNALS, start_unix_s=recent_morning_unix_s())


def store_run(url: str, run: SimulatedRun, *, until_ns: int | None = None, from_ns: int | None = None) -> int:
    """Write the run's rows with from_ns <= ts < until_ns as one batch per vehicle and minute; how
    many rows were written."""
    cols = run.columns
    keep = np.ones(cols.n_rows, dtype=bool)
    if from_ns is not None:
        keep &= cols.ts_ns >= from_ns
    if until_ns is not None:
        keep &= cols.ts_ns < until_ns
    minute = (cols.ts_ns - run.start_ts_ns) // 60_000_000_000
    key = cols.vehicle.astype(np.int64) * 1_000_000 + minute
    rows = np.flatnonzero(keep)
    envelopes = []
    cuts = np.flatnonzero(np.diff(key[rows]) != 0) + 1
    for part in np.split(rows, cuts):
        if part.size == 0:
            continue
        vid = cols.vehicle_ids[int(cols.vehicle[part[0]])]
        values = {s: cols.values[s][part] for s in cols.values}
        batch = TelemetryBatch(vid, int(minute[part[0]]), cols.ts_ns[part], values)
        envelopes.append(
            Envelope(topics.topic_for(vid, topics.TELEMETRY), wire_v1.encode(batch), time.time_ns())
        )
    store = TelemetryStore(url)
    try:
        for i in range(0, len(envelopes), 500):
            store.write(triage(envelopes[i : i + 500]))
    finally:
        store.close()
    return int(rows.size)
