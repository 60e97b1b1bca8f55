"""`fleet bench simulator`: how many vehicles one core simulates at 1 Hz in real time.

Owns: the measurement. Everything a real run does per simulated second is inside it: the
vectorised simulation, cutting batches (FleetBatcher), wire-v1 encoding with zlib, and QoS 1
publishing through MqttPublisher (edge_agent.fleet_publishing) to a real broker, until the broker
acknowledged every batch. Setup (building the fleet, connecting) is outside. The process is pinned
to one CPU.

Two figures, both vehicle-seconds simulated per second:
- `vehicles_realtime_per_cpu_core`: N x simulated seconds / CPU seconds of this process (all its
  threads, paho's network thread included). Robust against other load on the machine.
- `vehicles_realtime_wall`: N x simulated seconds / wall seconds, pinned to one core, so it
  also counts time lost to other processes sharing that core.
The broker runs in its own process; its CPU time is reported apart and not in either figure.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import math
import os
import pstats
import time
from dataclasses import dataclass
from typing import Any

from contract import accounts
from contract.endpoint import MqttEndpoint
from edge_agent.fleet_publishing import MqttPublisher
from simulators.engine import FleetSimulation
from simulators.feeder import FeedConfig, feed
from simulators.roads import city_grid
from simulators.runner import VehiclePublishers
from simulators.scenario import FaultSpec, HazardSpec, NetworkSpec, Scenario

TARGET_VEHICLES = 10_000


@dataclass(frozen=True)
class BenchConfig:
    vehicles: int = 10_000
    sim_seconds: float = 60.0
    batch_interval_s: float = 10.0
    seed: int = 1
    pin_cpu: bool = True
    realtime_check_s: float = 0.0  # also run this long at 1x and report how far it fell behind


def bench_scenario(config: BenchConfig) -> Scenario:
    """Every vehicle sampled at 1 Hz for the whole run (parked ones too), with faults and hazards."""
    n = config.vehicles
    return Scenario(
        name="bench",
        seed=config.seed,
        vehicles=n,
        duration_s=config.sim_seconds,
        start_unix_s=1_764_237_600.0,  # a weekday at 10:00 local: traffic, not night
        parked_sample_interval_s=1.0,
        batch_interval_s=config.batch_interval_s,
        faults=tuple(
            FaultSpec(kind, max(1, n // 1000), onset_s=config.sim_seconds / 4)
            for kind in ("misfire", "tyre_slow_leak", "battery_12v_failing", "firmware_bug")
        ),
        hazards=(HazardSpec("pothole", 10), HazardSpec("slippery", 2), HazardSpec("junction", 3)),
        network=NetworkSpec(outage_vehicle_share=0.02, outage_duration_s=(10.0, 30.0)),
    )


def run_bench(
    gateway: MqttEndpoint, config: BenchConfig, *, broker_pid: int | None = None, profile: bool = False
) -> dict[str, Any]:
    """Measure; returns the JSON-ready result. Raises PublishError/ConnectionError if the broker fails."""
    cpus = _pin(config.pin_cpu)
    scenario = bench_scenario(config)
    sim = FleetSimulation(scenario, city_grid(), start_unix_s=scenario.start_unix_s or 0.0)
    pubs = VehiclePublishers.connect(sim.vehicle_ids, gateway=gateway)
    dtc = MqttPublisher(gateway, accounts.SIMULATOR_DTC)
    dtc.connect()
    broker_cpu0 = _cpu_of(broker_pid)
    profiler = cProfile.Profile() if profile else None
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        stats = feed(
            sim,
            pubs,
            FeedConfig(config.sim_seconds, config.batch_interval_s, speedup=math.inf),
            publish_message=dtc.publish_message,
        )
        acked = pubs.wait_acked(120) and dtc.wait_acked(30)
        if profiler:
            profiler.disable()
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        pubs.close()
        dtc.close()
    broker_cpu = _cpu_of(broker_pid) - broker_cpu0 if broker_pid else None
    vehicle_seconds = config.vehicles * stats.steps * sim.dt_s
    per_cpu = vehicle_seconds / cpu_s
    result: dict[str, Any] = {
        "benchmark": "simulator",
        "vehicles": config.vehicles,
        "simulated_s": stats.steps * sim.dt_s,
        "sample_interval_s": sim.dt_s,
        "batch_interval_s": config.batch_interval_s,
        "samples_per_vehicle_per_s": round(pubs.samples_sent() / vehicle_seconds, 2),
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "vehicles_realtime_per_cpu_core": int(per_cpu),
        "vehicles_realtime_wall": int(vehicle_seconds / wall_s),
        "target": TARGET_VEHICLES,
        "target_met": per_cpu >= TARGET_VEHICLES,
        "batches_published": pubs.batches_sent(),
        "samples_published": pubs.samples_sent(),
        "samples_acked": pubs.samples_acked(),
        "all_acked": acked,
        "wire_bytes": pubs.bytes_sent(),
        "duplicates": stats.duplicates,
        "dtc_messages": stats.dtc_messages,
        "broker_cpu_s": round(broker_cpu, 3) if broker_cpu is not None else None,
        "pinned_cpus": cpus,
        "method": (
            "vehicles x simulated seconds / process CPU seconds (all threads), for a run as fast as possible "
            "of generation + FleetBatcher + wire_v1 (zlib) + MqttPublisher QoS 1 until every PUBACK; "
            "setup excluded; broker CPU not included"
        ),
    }
    if config.realtime_check_s > 0:
        result["realtime_check"] = _realtime_check(gateway, config)
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        result["profile_top"] = text.getvalue()
    return result


def _realtime_check(gateway: MqttEndpoint, config: BenchConfig) -> dict[str, Any]:
    """Run the same fleet paced at real time: it keeps up when no step finishes late."""
    scenario = bench_scenario(config).with_overrides(duration_s=config.realtime_check_s)
    sim = FleetSimulation(scenario, city_grid(), start_unix_s=scenario.start_unix_s or 0.0)
    pubs = VehiclePublishers.connect(sim.vehicle_ids, gateway=gateway)
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        stats = feed(sim, pubs, FeedConfig(config.realtime_check_s, config.batch_interval_s, speedup=1.0))
        pubs.wait_acked(60)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        pubs.close()
    return {
        "simulated_s": stats.steps * sim.dt_s,
        "wall_s": round(wall_s, 2),
        "cpu_busy_share": round(cpu_s / wall_s, 3),
        "max_behind_schedule_s": round(stats.max_lag_s, 3),
        "kept_up": stats.max_lag_s < 1.0,
    }


def _pin(pin: bool) -> list[int]:
    if not hasattr(os, "sched_getaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    if pin and len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[-1]})
        cpus = [cpus[-1]]
    return cpus


def _cpu_of(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with contextlib.suppress(Exception):
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    return 0.0
