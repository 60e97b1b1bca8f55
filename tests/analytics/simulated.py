"""A simulator run in memory, as the detectors see it: for tests and benches of `analytics`.

Owns: stepping `simulators.engine.FleetSimulation` for a scenario (no broker, no database) and
collecting what its vehicles sample into `TelemetryColumns` (sorted by vehicle and time), with the
`VehicleParams` the registry would give, the ground-truth document and the DTC timeline; and a
few standard random scenarios (`standard_scenarios`) with every fault kind, drawn parameters and
onsets, for accuracy tests across seeds.

Time is the TRUE sampling time (`StepOutput.ts_ns`). The real path (`simulators.feeder`) stamps
each vehicle's samples with its own skewed clock (ground truth `clock_skew_s`); here there is no
skew, no outage backlog and no duplicate delivery, so a detector's delay measured here is the
kernel's own. A row exists where the vehicle sampled (parked vehicles sample every
`parked_sample_interval_s`): any of its signals is present, as ingest would store it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.code_state import with_code_columns
from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors.dtcs import DtcReportRow
from contract.signals import SIGNALS
from simulators.engine import FleetSimulation
from simulators.faults import KIND_INDEX
from simulators.ground_truth import ground_truth
from simulators.roads import city_grid
from simulators.scenario import FAULT_KINDS, CitySpec, FaultSpec, NetworkSpec, Scenario

# When a standard scenario's firmware bug is patched (by name and seed; `standard_scenarios` draws it).
PATCH_AT_S: dict[tuple[str, int], float] = {}
START_UNIX_S = 1_764_237_600.0  # 2025-11-27 10:00 local (utc_offset_h 1): daytime traffic

TYRE_PRESSURES = tuple(s.vss_path for s in SIGNALS if s.vss_path.endswith(".Tire.Pressure"))
TYRE_TEMPERATURES = tuple(s.vss_path for s in SIGNALS if s.vss_path.endswith(".Tire.Temperature"))
PAD_WEARS = tuple(s.vss_path for s in SIGNALS if s.vss_path.endswith(".Brake.PadWear"))


def recent_morning_unix_s() -> float:
    """Yesterday 09:00 UTC (10:00 local in the simulated city): daytime traffic, and recent enough
    for ingest to accept (it refuses samples older than its limit)."""
    day = 86_400
    return float((int(time.time()) // day - 1) * day + 9 * 3600)


@dataclass(frozen=True)
class SimulatedRun:
    """One run's telemetry (true time), parameters, ground truth and DTC timeline."""

    scenario: Scenario
    columns: TelemetryColumns
    params: VehicleParams
    truth: dict[str, Any]  # simulators.ground_truth.ground_truth(sim): the ground_truth.json document
    dtc_history: list[tuple[float, int, tuple[str, ...]]]  # (t_s, vehicle index, its new whole set)
    start_ts_ns: int  # t_s = 0 of the run, ns since the Unix epoch
    sim: FleetSimulation

    def ts_ns_at(self, t_s: float) -> int:
        """The run's time `t_s` seconds in, as Unix nanoseconds."""
        return self.start_ts_ns + int(round(t_s * 1e9))


def simulate(
    scenario: Scenario,
    signals: Iterable[str] | None = None,
    *,
    steps: int | None = None,
    start_unix_s: float = START_UNIX_S,
) -> SimulatedRun:
    """Run `scenario` for its duration (or `steps` steps) in memory and collect `signals` (VSS
    paths; None = every signal the simulator samples). Steps are stacked as float32 (what most
    signals are on the wire) and only the requested signals become float64 columns at the end,
    so a 300-vehicle, 2-hour run with ten signals stays well under 200 MB."""
    sim = FleetSimulation(
        scenario, city_grid(blocks=scenario.city.blocks, block_m=scenario.city.block_m), start_unix_s
    )
    patch_at_s = PATCH_AT_S.get((scenario.name, scenario.seed))
    if patch_at_s is not None:  # the bug's cure installed over the air, as a committed OTA install
        for v in np.flatnonzero(sim.faults.kind == KIND_INDEX["firmware_bug"]).tolist():
            ecu = "VCU" if sim.params.is_ev[v] else "ECM"
            sim.install_software(v, ecu, str(sim.faults.fixed_version[v]), patch_at_s, "test")
    n_steps = steps if steps is not None else int(round(scenario.duration_s / scenario.sample_interval_s))
    wanted: list[str] | None = list(dict.fromkeys(signals)) if signals is not None else None
    ts_ns = np.empty(n_steps, dtype=np.int64)
    present = np.zeros((n_steps, sim.n_vehicles), dtype=bool)
    stacked: dict[str, np.ndarray] = {}
    for k in range(n_steps):
        out = sim.step()
        ts_ns[k] = out.ts_ns
        if wanted is None:
            wanted = list(out.signals)
        for v in out.signals.values():
            present[k] |= ~np.isnan(v)
        for path in wanted:
            col = out.signals.get(path)
            if col is None:
                continue
            if path not in stacked:
                stacked[path] = np.full((n_steps, sim.n_vehicles), np.nan, dtype=np.float32)
            stacked[path][k] = col
    # Vehicle-major order: transposing (steps, vehicles) and masking gives rows sorted by (vehicle, time).
    rows = present.T
    vehicle = np.broadcast_to(np.arange(sim.n_vehicles, dtype=np.int32)[:, None], rows.shape)[rows]
    row_ts = np.broadcast_to(ts_ns[None, :], rows.shape)[rows]
    values = {path: stacked[path].T[rows].astype(np.float64) for path in (wanted or []) if path in stacked}
    columns = TelemetryColumns(tuple(sim.vehicle_ids), vehicle, row_ts, values)
    start_ts_ns = int(round(start_unix_s * 1e9))
    columns = with_code_columns(columns, dtc_reports(sim, start_ts_ns), wanted or [])
    params = VehicleParams(
        is_ev=sim.params.is_ev.copy(),
        cylinders=sim.params.cylinders.copy(),
        tyre_placard_kpa=sim.params.tyre_placard_kpa.astype(np.float64),
    )
    return SimulatedRun(
        scenario=scenario,
        columns=columns,
        params=params,
        truth=ground_truth(sim),
        dtc_history=list(sim.dtc_history),
        start_ts_ns=start_ts_ns,
        sim=sim,
    )


def dtc_reports(sim: FleetSimulation, start_ts_ns: int) -> list[DtcReportRow]:
    """The simulator's DTC timeline as the reports the job reads (true time, no software)."""
    ids = sim.vehicle_ids
    return [
        DtcReportRow(ids[v], start_ts_ns + int(round(t_s * 1e9)), codes) for t_s, v, codes in sim.dtc_history
    ]


# Signals a stuck or dropped sensor is drawn from: ones that vary while a vehicle drives.
VARYING_SIGNALS = (
    "Vehicle.Speed",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Powertrain.CombustionEngine.Speed",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.Acceleration.Longitudinal",
    "Vehicle.CurrentLocation.Heading",
    *TYRE_PRESSURES,
)


def random_faults(rng: np.random.Generator, duration_s: float) -> tuple[tuple[FaultSpec, ...], float | None]:
    """Every fault kind, on one to three vehicles each, with parameters and onsets drawn from
    ranges (one spec per vehicle where parameters differ: slow and fast leaks, other wheels,
    other stuck or dropped signals, other firmware versions and codes)."""
    onset = (0.05 * duration_s, 0.4 * duration_s)
    specs: list[FaultSpec] = [
        FaultSpec(
            "battery_12v_failing",
            2,
            onset_range_s=onset,
            params={"ramp_s": float(rng.uniform(600.0, 3600.0))},
        ),
        FaultSpec("charging_fault", 2, onset_range_s=onset),
        FaultSpec("thermostat_stuck", 2, onset_range_s=onset),
        FaultSpec("misfire", 2, onset_range_s=onset, params={"rate_per_h": float(rng.uniform(10.0, 120.0))}),
    ]
    for _ in range(3):
        specs.append(
            FaultSpec(
                "tyre_slow_leak",
                1,
                onset_range_s=onset,
                params={
                    "rate_kpa_per_h": float(np.exp(rng.uniform(np.log(5.0), np.log(80.0)))),
                    "wheel": int(rng.integers(0, 4)),
                },
            )
        )
    for _ in range(2):
        specs.append(
            FaultSpec(
                "brake_pad_wear",
                1,
                # The simulator fits the thin pads at the start, so the condition is there from 0. (A
                # zero-width range, not onset_s: it draws as a range does, keeping the later faults'
                # draws, and so the scenarios, what they were.)
                onset_range_s=(0.0, 0.0),
                params={
                    "start_mm": float(rng.uniform(2.1, 3.5)),
                    "wear_factor": float(np.exp(rng.uniform(np.log(200.0), np.log(3000.0)))),
                },
            )
        )
    for kind in ("sensor_stuck", "sensor_dropout"):
        for path in rng.choice(VARYING_SIGNALS, 2, replace=False):
            specs.append(FaultSpec(kind, 1, onset_range_s=onset, params={"signal": str(path)}))
    minor = int(rng.integers(1, 9))
    buggy_vehicles = int(rng.integers(4, 9))
    fixed_version, dtc, rate_per_h = (
        f"5.{minor}.1",
        str(rng.choice(["P0606", "P0601", "U0100", "P0700"])),
        float(rng.uniform(6.0, 30.0)),
    )
    # Half the scenarios patch their bug over the air part-way (the draw order is kept as it was).
    patch_at_s = float(rng.uniform(0.5, 0.8) * duration_s) if rng.random() < 0.5 else None
    specs.append(
        FaultSpec(
            "firmware_bug",
            buggy_vehicles,
            onset_s=0.0,
            params={
                "version": f"5.{minor}.0",
                "fixed_version": fixed_version,
                "dtc": dtc,
                "rate_per_h": rate_per_h,
            },
        )
    )
    assert {s.kind for s in specs} == set(FAULT_KINDS)
    return tuple(specs), patch_at_s


def standard_scenarios(
    count: int = 3, *, seed: int = 2024, duration_s: float = 3600.0, vehicles: Sequence[int] = (100, 300)
) -> list[Scenario]:
    """`count` reproducible random scenarios: seeds, fleet sizes (uniform in `vehicles`), ambient
    temperatures and fault parameters drawn from `seed`, every fault kind present, a small city
    with ordinary parking, and no network realism (the harness uses true time anyway)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        s = int(rng.integers(1, 1_000_000))
        name = f"standard-{i}"
        n_vehicles = int(rng.integers(vehicles[0], vehicles[1] + 1))
        ambient_c = float(rng.uniform(-5.0, 30.0))
        mean_parking_s = float(rng.uniform(300.0, 900.0))
        faults, patch_at_s = random_faults(rng, duration_s)
        if patch_at_s is not None:
            PATCH_AT_S[(name, s)] = patch_at_s
        out.append(
            Scenario(
                name=name,
                seed=s,
                vehicles=n_vehicles,
                duration_s=duration_s,
                ambient_c=ambient_c,
                city=CitySpec(blocks=8),
                mean_parking_s=mean_parking_s,
                faults=faults,
                network=NetworkSpec(outage_vehicle_share=0.0, duplicate_batch_probability=0.0),
            )
        )
    return out
