"""The fleet `fleet bench analytics` measures on: the standard scenario's simulator run in memory,
as the detectors see it.

Owns: stepping `simulators.engine.FleetSimulation` (no broker, no database) for the standard
scenario (`simulators/scenarios/standard.toml`: every fault kind, several of each) resized to the
bench's vehicles and hours, and collecting what the vehicles sample into `TelemetryColumns` of the
suite's signals, with the `VehicleParams` the registry gives them. The collection is the one of
the analytics tests' harness (`tests/analytics/simulated.py`): true sample time, a row wherever a
vehicle sampled, float32 values as they travel on the wire, widened to float64. The run ends
about now so that ingest accepts the rows for the end-to-end part, and the city's time zone is
chosen so that it starts at about `LOCAL_START_H` local time: the simulated fleet parks at night, so a
run taken at night had less than half the rows of one taken by day, and the measurements depended
on the hour they were taken at.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from simulators.engine import FleetSimulation
from simulators.roads import city_grid
from simulators.scenario import Scenario, builtin_scenario_path, load_scenario

LOCAL_START_H = 14.0  # the simulated city's local time when a bench run starts: the fleet drives


@dataclass(frozen=True)
class BenchFleet:
    scenario: Scenario
    sim: FleetSimulation
    columns: TelemetryColumns
    params: VehicleParams
    simulate_s: float

    def faults_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.sim.faults.records:
            counts[record["kind"]] = counts.get(record["kind"], 0) + 1
        return dict(sorted(counts.items()))


def bench_scenario(vehicles: int, hours: float, seed: int | None = None) -> Scenario:
    """The standard scenario with `vehicles` vehicles for `hours`: its fault counts in proportion to
    the fleet (at least one of each), every onset and repair scaled into a shorter run."""
    base = load_scenario(builtin_scenario_path("standard"))
    duration_s = hours * 3600.0
    scale = min(duration_s / base.duration_s, 1.0)
    share = vehicles / base.vehicles
    faults = tuple(
        dataclasses.replace(
            f,
            vehicles=max(1, round(f.vehicles * share)),
            onset_s=None if f.onset_s is None else f.onset_s * scale,
            onset_range_s=None
            if f.onset_range_s is None
            else (f.onset_range_s[0] * scale, f.onset_range_s[1] * scale),
            repaired_at_s=None if f.repaired_at_s is None else f.repaired_at_s * scale,
        )
        for f in base.faults
    )
    return dataclasses.replace(
        base,
        vehicles=vehicles,
        duration_s=duration_s,
        faults=faults,
        seed=base.seed if seed is None else seed,
    )


def daytime_utc_offset_h(start_unix_s: float) -> float:
    """The whole-hour UTC offset (-11..12) at which `start_unix_s` is within half an hour of
    `LOCAL_START_H` local time."""
    utc_h = (start_unix_s / 3600.0) % 24.0
    return float((math.floor(LOCAL_START_H - utc_h + 0.5) + 11) % 24 - 11)


def simulate_fleet(scenario: Scenario, signals: tuple[str, ...]) -> BenchFleet:
    """Run `scenario` in memory, ending about now, starting at about `LOCAL_START_H` local time (the
    scenario's time zone is replaced), and collect `signals` as columns."""
    started = time.perf_counter()
    start_unix_s = float(math.floor(time.time() - scenario.duration_s - 60.0))
    scenario = dataclasses.replace(scenario, utc_offset_h=daytime_utc_offset_h(start_unix_s))
    sim = FleetSimulation(
        scenario, city_grid(blocks=scenario.city.blocks, block_m=scenario.city.block_m), start_unix_s
    )
    n_steps = int(round(scenario.duration_s / scenario.sample_interval_s))
    ts_ns = np.empty(n_steps, dtype=np.int64)
    present = np.zeros((n_steps, sim.n_vehicles), dtype=bool)
    stacked = {path: np.full((n_steps, sim.n_vehicles), np.nan, dtype=np.float32) for path in signals}
    for k in range(n_steps):
        out = sim.step()
        ts_ns[k] = out.ts_ns
        for v in out.signals.values():
            present[k] |= ~np.isnan(v)
        for path in signals:
            col = out.signals.get(path)
            if col is not None:
                stacked[path][k] = col
    # Vehicle-major order: transposing (steps, vehicles) and masking gives rows sorted by (vehicle, time).
    rows = present.T
    vehicle = np.broadcast_to(np.arange(sim.n_vehicles, dtype=np.int32)[:, None], rows.shape)[rows]
    row_ts = np.broadcast_to(ts_ns[None, :], rows.shape)[rows]
    values = {path: stacked.pop(path).T[rows].astype(np.float64) for path in signals}
    columns = TelemetryColumns(tuple(sim.vehicle_ids), vehicle, row_ts, values)
    params = VehicleParams(
        is_ev=sim.params.is_ev.copy(),
        cylinders=sim.params.cylinders.copy(),
        tyre_placard_kpa=sim.params.tyre_placard_kpa.astype(np.float64),
    )
    return BenchFleet(scenario, sim, columns, params, time.perf_counter() - started)
