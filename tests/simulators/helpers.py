"""Scenarios and runners shared by the simulator tests (pure: no broker, no database)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.engine import FleetSimulation
from simulators.faults import KIND_INDEX
from simulators.motion import PARKED
from simulators.roads import city_grid
from simulators.scenario import CitySpec, FaultSpec, HazardSpec, NetworkSpec, Scenario

START_UNIX_S = 1_764_237_600.0  # 10:00 local: daytime traffic
PATCH_S = 500.0  # when `run(..., patch_at_s=PATCH_S)` patches ALL_FAULTS' firmware bugs


def busy_scenario(**overrides) -> Scenario:  # noqa: ANN003
    """A small, dense city where every vehicle drives and parks only briefly."""
    base = Scenario(
        name="test",
        seed=3,
        vehicles=240,
        duration_s=900.0,
        city=CitySpec(blocks=6),
        initially_driving_share=1.0,
        mean_parking_s=40.0,
        trip_length_m=(300.0, 2_500.0),
        parked_sample_interval_s=1.0,
        network=NetworkSpec(outage_vehicle_share=0.0, duplicate_batch_probability=0.0),
    )
    return base.with_overrides(**overrides)


ALL_FAULTS = (
    FaultSpec("battery_12v_failing", 2, onset_s=200.0, params={"ramp_s": 300.0}),
    FaultSpec("charging_fault", 2, onset_s=200.0),
    FaultSpec("thermostat_stuck", 2, onset_s=100.0),
    FaultSpec("tyre_slow_leak", 2, onset_s=100.0, params={"rate_kpa_per_h": 120.0, "wheel": 2}),
    FaultSpec("brake_pad_wear", 2, onset_s=100.0, params={"start_mm": 2.3, "wear_factor": 3000.0}),
    FaultSpec("sensor_stuck", 2, onset_s=300.0, params={"signal": "Vehicle.Speed"}),
    FaultSpec(
        "sensor_dropout", 2, onset_s=300.0, params={"signal": "Vehicle.LowVoltageBattery.CurrentVoltage"}
    ),
    FaultSpec("misfire", 2, onset_s=150.0, params={"rate_per_h": 400.0}),
    FaultSpec(
        "firmware_bug",
        4,
        onset_s=0.0,
        params={"version": "4.2.0", "dtc": "P0606", "rate_per_h": 300.0},
    ),
)
HAZARDS = (
    HazardSpec("pothole", 3),
    HazardSpec("pothole", 1, repaired_at_s=450.0, severity=1.5),
    HazardSpec("slippery", 1),
    HazardSpec("junction", 1),
    HazardSpec("junction", 1, repaired_at_s=450.0),
)


@dataclass
class Run:
    sim: FleetSimulation
    t_s: np.ndarray  # (steps,)
    signals: dict[str, np.ndarray]  # (steps, vehicles)
    true_xy: np.ndarray  # (steps, 2, vehicles)
    dtcs: list[tuple[float, int, tuple[str, ...]]]  # (t_s, vehicle, its new whole set of stored codes)
    pad_mm: np.ndarray  # (steps, vehicles): thinnest front pad
    running: np.ndarray  # (steps, vehicles): engine on / EV ready (the truth, not a signal)


def schedule_patches(sim: FleetSimulation, at_s: float) -> list[int]:
    """Install each firmware bug's cure (`fixed_version`) at `at_s`, as an OTA install that
    committed then would (`FleetSimulation.install_software`); the patched vehicles."""
    patched = []
    for v in np.flatnonzero(sim.faults.kind == KIND_INDEX["firmware_bug"]).tolist():
        ecu = "VCU" if sim.params.is_ev[v] else "ECM"
        sim.install_software(v, ecu, str(sim.faults.fixed_version[v]), at_s, "test")
        patched.append(v)
    return patched


def run(scenario: Scenario, steps: int | None = None, *, patch_at_s: float | None = None) -> Run:
    """Step `scenario` in memory; with `patch_at_s`, its firmware bugs are patched then."""
    net = city_grid(blocks=scenario.city.blocks, block_m=scenario.city.block_m)
    sim = FleetSimulation(scenario, net, START_UNIX_S)
    if patch_at_s is not None:
        schedule_patches(sim, patch_at_s)
    n_steps = steps or int(scenario.duration_s / scenario.sample_interval_s)
    t, cols, xy, dtcs, pads, running = [], {}, [], [], [], []
    for _ in range(n_steps):
        out = sim.step()
        t.append(out.t_s)
        for k, v in out.signals.items():
            cols.setdefault(k, []).append(v)
        xy.append(np.stack(sim.positions_xy()))
        dtcs.extend((out.t_s, int(v), codes) for v, codes in zip(out.dtc_vehicles, out.dtc_sets, strict=True))
        pads.append(sim.powertrain.pad_mm[:2].min(axis=0))
        running.append(sim.motion.mode != PARKED)
    return Run(
        sim,
        np.array(t),
        {k: np.array(v) for k, v in cols.items()},
        np.array(xy),
        dtcs,
        np.array(pads),
        np.array(running),
    )
