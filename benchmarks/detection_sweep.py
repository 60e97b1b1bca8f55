"""The detection sweep: fault and hazard detection scored on many random simulator scenarios, in
memory, across everything a scenario file can vary.

Owns: drawing scenarios (`draw_scenario`: seed, fleet size and EV share, city and latitude,
climate from a cold winter to a hot summer, start hour, parking and trip habits, every fault kind
with drawn parameters, onsets late in the run and repairs, hazard counts, placements, severities
and repairs), running one without broker or database (`run_draw`: the simulator stepped, what its
vehicles sample collected as the detectors' columns in true time, the stored codes beside them,
each DTC report with the software that ran, the check-ins' software inventory), running every
detector the job runs on it (the telemetry suite, the trouble codes, the fleet firmware test, the
hazard map), scoring them against the ground truth (`analytics.scoring`, `analytics.hazard_scoring`)
and adding the scores up over the draws (`sweep`). `python -m benchmarks.detection_sweep --help`.

Leaves to others: the detectors and scorers themselves, and the pipeline (broker, ingest, the
database, clock skew and outages: `fleet simulate` measures those).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.code_state import with_code_columns
from analytics.columns import TelemetryColumns, VehicleParams, is_code_signal
from analytics.detectors.dtcs import DtcReportRow, detect_dtc_alarms
from analytics.detectors.software import Inventory, detect_firmware_bug, find_software_issues
from analytics.hazard_scoring import score_hazards
from analytics.hazards.batch import map_of
from analytics.hazards.events import SIGNALS as HAZARD_SIGNALS
from analytics.scoring import AlarmRecord, findings_to_alarms, score_faults
from analytics.suite import default_detectors
from simulators.engine import FleetSimulation
from simulators.faults import KIND_INDEX
from simulators.ground_truth import ground_truth
from simulators.models import powertrain_ecu
from simulators.roads import city_grid
from simulators.scenario import CitySpec, FaultSpec, HazardSpec, NetworkSpec, Scenario

# Signals a stuck or dropped sensor is drawn from: every one the sensor detectors watch.
SENSOR_SIGNALS = (
    "Vehicle.Speed",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.CurrentLocation.Heading",
    "Vehicle.TraveledDistance",
    "Vehicle.Acceleration.Longitudinal",
    "Vehicle.Acceleration.Lateral",
    "Vehicle.Acceleration.Vertical",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Powertrain.CombustionEngine.Speed",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.Powertrain.FuelSystem.RelativeLevel",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    *(f"Vehicle.Chassis.Axle.Row{r}.Wheel.{s}.Tire.Pressure" for r in (1, 2) for s in ("Left", "Right")),
)
CLIMATES = {"winter": (-20.0, 0.0), "mild": (0.0, 20.0), "summer": (20.0, 40.0)}
FIRMWARE_CODES = ("P0606", "P0601", "P0700", "U0100", "U0101", "P0A1F", "B1234")


@dataclass(frozen=True)
class Draw:
    """One drawn scenario, with what the scenario file cannot say: when the run starts (local
    hour) and when an OTA campaign patches its firmware bug (None: never)."""

    scenario: Scenario
    climate: str
    start_local_h: float
    patch_at_s: float | None


@dataclass(frozen=True)
class DrawRun:
    draw: Draw
    columns: TelemetryColumns
    params: VehicleParams
    truth: dict[str, Any]
    reports: list[DtcReportRow]
    inventory: Inventory
    simulate_s: float


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _faults(rng: np.random.Generator, duration_s: float) -> tuple[FaultSpec, ...]:
    """Every fault kind on one to three vehicles, one spec per vehicle, parameters and onsets (up to
    85% into the run) drawn; a quarter of the hardware faults repaired part-way."""
    specs: list[FaultSpec] = []

    def add(kind: str, params: dict[str, Any], *, onset: tuple[float, float] | None = None) -> None:
        lo, hi = onset or (0.0, 0.85 * duration_s)
        t0 = float(rng.uniform(lo, hi))
        repaired = None
        if rng.random() < 0.25 and duration_s - t0 > 1200.0:
            repaired = float(t0 + rng.uniform(0.3, 0.9) * (duration_s - t0))
        specs.append(FaultSpec(kind, 1, onset_range_s=(t0, t0), repaired_at_s=repaired, params=params))

    for _ in range(int(rng.integers(1, 4))):
        add("battery_12v_failing", {"ramp_s": _log_uniform(rng, 300.0, 7200.0)})
    for _ in range(int(rng.integers(1, 4))):
        add("charging_fault", {})
    for _ in range(int(rng.integers(1, 4))):
        add("thermostat_stuck", {})
    for _ in range(int(rng.integers(1, 4))):
        add(
            "tyre_slow_leak", {"rate_kpa_per_h": _log_uniform(rng, 2.5, 100.0), "wheel": int(rng.integers(4))}
        )
    for _ in range(int(rng.integers(1, 4))):
        params = {"start_mm": float(rng.uniform(1.8, 3.6)), "wear_factor": _log_uniform(rng, 100.0, 4000.0)}
        add("brake_pad_wear", params, onset=(0.0, 0.0))
    for kind in ("sensor_stuck", "sensor_dropout"):
        for path in rng.choice(SENSOR_SIGNALS, int(rng.integers(2, 5)), replace=False):
            add(kind, {"signal": str(path)})
    for _ in range(int(rng.integers(1, 4))):
        add("misfire", {"cylinder": int(rng.integers(0, 5)), "rate_per_h": _log_uniform(rng, 5.0, 200.0)})
    major, minor = int(rng.integers(1, 9)), int(rng.integers(0, 20))
    specs.append(
        FaultSpec(
            "firmware_bug",
            int(rng.integers(4, 12)),
            onset_s=0.0,
            params={
                "version": f"{major}.{minor}.0",
                "fixed_version": f"{major}.{minor}.{int(rng.integers(1, 4))}",
                "dtc": str(rng.choice(FIRMWARE_CODES)),
                "rate_per_h": _log_uniform(rng, 3.0, 40.0),
            },
        )
    )
    return tuple(specs)


def _hazards(rng: np.random.Generator, duration_s: float) -> tuple[HazardSpec, ...]:
    repair = (0.15 * duration_s, 0.5 * duration_s)
    specs = [
        HazardSpec("pothole", int(rng.integers(1, 6)), severity=float(rng.uniform(0.5, 1.5))),
        HazardSpec("slippery", int(rng.integers(1, 4))),
        HazardSpec("junction", int(rng.integers(1, 4))),
    ]
    for kind in ("pothole", "junction"):
        if rng.random() < 0.7:
            sev = float(rng.uniform(0.5, 1.5)) if kind == "pothole" else 1.0
            specs.append(HazardSpec(kind, 1, repaired_at_s=float(rng.uniform(*repair)), severity=sev))
    return tuple(specs)


DURATIONS_S = (3600.0, 5400.0, 7200.0, 10800.0)


def draw_scenario(
    rng: np.random.Generator,
    index: int,
    *,
    vehicles: tuple[int, int] = (200, 400),
    durations_s: Sequence[float] = DURATIONS_S,
) -> Draw:
    """A random scenario across what the scenario file allows (the network's realism excepted: in
    memory time is true), with a fleet of `vehicles` (low, high) and a duration among `durations_s`."""
    duration_s = float(rng.choice(list(durations_s)))
    climate = str(rng.choice(list(CLIMATES)))
    n_vehicles = int(rng.integers(vehicles[0], vehicles[1] + 1))
    trip_lo = float(rng.uniform(800.0, 3000.0))
    scenario = Scenario(
        name=f"sweep-{index}",
        seed=int(rng.integers(1, 2**31)),
        vehicles=n_vehicles,
        duration_s=duration_s,
        ambient_c=float(rng.uniform(*CLIMATES[climate])),
        ev_share=float(rng.uniform(0.0, 0.8)),
        parked_sample_interval_s=float(rng.choice([10.0, 30.0, 60.0])),
        initially_driving_share=float(rng.uniform(0.4, 0.9)),
        mean_parking_s=_log_uniform(rng, 300.0, 3600.0),
        trip_length_m=(trip_lo, trip_lo + float(rng.uniform(3000.0, 20000.0))),
        city=CitySpec(
            origin_lat_deg=float(rng.uniform(-45.0, 62.0)),
            origin_lon_deg=float(rng.uniform(-120.0, 150.0)),
            blocks=int(rng.integers(6, 13)),
            block_m=float(rng.uniform(120.0, 260.0)),
        ),
        faults=_faults(rng, duration_s),
        hazards=_hazards(rng, duration_s),
        network=NetworkSpec(outage_vehicle_share=0.0, duplicate_batch_probability=0.0, clock_skew_sd_s=0.0),
    )
    patch_at_s = float(rng.uniform(0.4, 0.8) * duration_s) if rng.random() < 0.5 else None
    return Draw(scenario, climate, float(rng.uniform(6.0, 18.0)), patch_at_s)


def run_draw(draw: Draw, signals: Sequence[str]) -> DrawRun:
    """Simulate `draw` in memory and collect `signals` (and the codes detectors list) as columns."""
    started = time.perf_counter()
    scenario = draw.scenario
    # A start on a whole day at the drawn local hour (the fleet parks at night).
    start_unix_s = 1_764_201_600.0 + (draw.start_local_h - scenario.utc_offset_h) * 3600.0
    sim = FleetSimulation(
        scenario, city_grid(blocks=scenario.city.blocks, block_m=scenario.city.block_m), start_unix_s
    )
    if draw.patch_at_s is not None:  # the cure installed over the air, as a committed OTA install
        for v in np.flatnonzero(sim.faults.kind == KIND_INDEX["firmware_bug"]).tolist():
            ecu = powertrain_ecu(bool(sim.params.is_ev[v]))
            sim.install_software(v, ecu, str(sim.faults.fixed_version[v]), draw.patch_at_s, "sweep")
    start_ns = int(round(start_unix_s * 1e9))
    ran = {
        vid: {(e, ver) for e, ver in sim.software.inventory(v).items()}
        for v, vid in enumerate(sim.vehicle_ids)
    }
    current = {vid: {e: (ver, start_ns) for e, ver in sim.software.inventory(v).items()}
               for v, vid in enumerate(sim.vehicle_ids)}  # fmt: skip
    n_steps = int(round(scenario.duration_s / scenario.sample_interval_s))
    wanted = [p for p in dict.fromkeys(signals) if not is_code_signal(p)]
    ts_ns = np.empty(n_steps, dtype=np.int64)
    present = np.zeros((n_steps, sim.n_vehicles), dtype=bool)
    stacked = {p: np.full((n_steps, sim.n_vehicles), np.nan, dtype=np.float32) for p in wanted}
    reports: list[DtcReportRow] = []
    for k in range(n_steps):
        out = sim.step()
        ts_ns[k] = out.ts_ns
        for col in out.signals.values():
            present[k] |= ~np.isnan(col)
        for path in wanted:
            if path in out.signals:
                stacked[path][k] = out.signals[path]
        for v in out.software_vehicles.tolist():  # a check-in with the new software
            vid = sim.vehicle_ids[v]
            for ecu, version in sim.software.inventory(v).items():
                ran[vid].add((ecu, version))
                if current[vid].get(ecu, ("",))[0] != version:
                    current[vid][ecu] = (version, out.ts_ns)
        firmware = sim.firmware_versions()
        for v, codes in zip(out.dtc_vehicles.tolist(), out.dtc_sets, strict=True):
            software = {powertrain_ecu(bool(sim.params.is_ev[v])): str(firmware[v])}
            reports.append(DtcReportRow(sim.vehicle_ids[v], out.ts_ns, tuple(codes), software))
    rows = present.T
    vehicle = np.broadcast_to(np.arange(sim.n_vehicles, dtype=np.int32)[:, None], rows.shape)[rows]
    row_ts = np.broadcast_to(ts_ns[None, :], rows.shape)[rows]
    values = {p: stacked.pop(p).T[rows].astype(np.float64) for p in wanted}
    columns = with_code_columns(
        TelemetryColumns(tuple(sim.vehicle_ids), vehicle, row_ts, values), reports, signals
    )
    params = VehicleParams(
        is_ev=sim.params.is_ev.copy(),
        cylinders=sim.params.cylinders.copy(),
        tyre_placard_kpa=sim.params.tyre_placard_kpa.astype(np.float64),
    )
    inventory = Inventory({v: frozenset(p) for v, p in ran.items()}, current)
    return DrawRun(
        draw, columns, params, ground_truth(sim), reports, inventory, time.perf_counter() - started
    )


def fault_alarms(run: DrawRun) -> list[AlarmRecord]:
    """Every alarm the job would raise on the run: the telemetry suite, the codes, the firmware test."""
    findings = []
    for detector in default_detectors():
        findings += detector.detect(run.columns, run.params)
    findings += detect_dtc_alarms(run.reports)
    issues = find_software_issues(run.reports, run.inventory)
    findings += detect_firmware_bug(issues, run.inventory, run.reports)
    return findings_to_alarms(findings)


def sweep_signals() -> list[str]:
    out: list[str] = []
    for detector in default_detectors():
        out += detector.signals
    return list(dict.fromkeys([*out, *HAZARD_SIGNALS]))


def score_draw(run: DrawRun) -> dict[str, Any]:
    """One draw's fault scores (per kind) and hazard scores, with what it was."""
    s = run.draw.scenario
    faults = score_faults(run.truth, fault_alarms(run))
    missed = {(kind, v) for kind, k in faults.items() for v in k["missed_vehicles"]}
    keep = ("kind", "vehicle_id", "onset_s", "repaired_at_s", "symptom_s", "params")
    return {
        "name": s.name,
        "seed": s.seed,
        "vehicles": s.vehicles,
        "duration_s": s.duration_s,
        "climate": run.draw.climate,
        "ambient_c": round(s.ambient_c, 1),
        "ev_share": round(s.ev_share, 2),
        "start_local_h": round(run.draw.start_local_h, 1),
        "mean_parking_s": round(s.mean_parking_s),
        "simulate_s": round(run.simulate_s, 1),
        "faults": faults,
        "missed": [
            {k: f[k] for k in keep} for f in run.truth["faults"] if (f["kind"], f["vehicle_id"]) in missed
        ],
        "hazards": score_hazards(run.truth, map_of(run.columns)),
    }


def aggregate(draws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per fault and hazard kind over every draw: counts, precision, recall (raw and over the faults
    that showed), delays and position errors, and each miss and false alarm with its draw."""
    faults: dict[str, dict[str, Any]] = {}
    for d in draws:
        for kind, k in d["faults"].items():
            a = faults.setdefault(kind, {"faults": 0, "tp": 0, "fp": 0, "observable": 0, "observable_tp": 0,
                                         "delays_s": [], "missed": [], "false_alarms": []})  # fmt: skip
            a["faults"] += k["faults"]
            a["tp"] += k["true_positives"]
            a["fp"] += k["false_positives"]
            a["observable"] += k["observable_faults"]
            if k["recall_observable"] is not None:
                a["observable_tp"] += round(k["recall_observable"] * k["observable_faults"])
            if k["delay_s_median"] is not None:
                a["delays_s"].append(k["delay_s_median"])
            a["missed"] += [(d["name"], v, sym) for v, sym in k["missed_symptom_s"].items()]
            a["false_alarms"] += [(d["name"], v) for v in k["false_alarm_vehicles"]]
    fault_out = {}
    for kind, a in sorted(faults.items()):
        fault_out[kind] = {
            "faults": a["faults"],
            "true_positives": a["tp"],
            "false_positives": a["fp"],
            "precision": a["tp"] / (a["tp"] + a["fp"]) if a["tp"] + a["fp"] else None,
            "recall": a["tp"] / a["faults"] if a["faults"] else None,
            "observable_faults": a["observable"],
            "recall_observable": a["observable_tp"] / a["observable"] if a["observable"] else None,
            "delay_s_median_of_draw_medians": float(np.median(a["delays_s"])) if a["delays_s"] else None,
            "missed": a["missed"],
            "false_alarms": a["false_alarms"],
        }
    hazards: dict[str, dict[str, Any]] = {}
    for d in draws:
        for kind, k in d["hazards"]["kinds"].items():
            a = hazards.setdefault(kind, {"true": 0, "tp": 0, "fp": 0, "errors_m": []})
            a["true"] += k["true"]
            a["tp"] += k["true_positives"]
            a["fp"] += k["false_positives"]
            if k.get("median_error_m") is not None:
                a["errors_m"].append(k["median_error_m"])
    hazard_out = {
        kind: {
            "true_at_end": a["true"],
            "true_positives": a["tp"],
            "false_positives": a["fp"],
            "precision": a["tp"] / (a["tp"] + a["fp"]) if a["tp"] + a["fp"] else None,
            "recall": a["tp"] / a["true"] if a["true"] else None,
            "median_error_m_worst_draw": max(a["errors_m"]) if a["errors_m"] else None,
        }
        for kind, a in sorted(hazards.items())
    }
    still = [(d["name"], r) for d in draws for r in d["hazards"]["repaired_still_on_map"]]
    return {"draws": len(draws), "faults": fault_out, "hazards": hazard_out, "repaired_still_on_map": still}


def sweep(
    draws: int,
    seed: int,
    *,
    vehicles: tuple[int, int] = (200, 400),
    durations_s: Sequence[float] = DURATIONS_S,
    log: Any = None,
) -> dict[str, Any]:
    """`draws` scenarios drawn from `seed` (`draw_scenario`), each simulated and scored; the
    per-draw scores and their aggregate."""
    rng = np.random.default_rng(seed)
    signals = sweep_signals()
    scored = []
    for i in range(draws):
        draw = draw_scenario(rng, i, vehicles=vehicles, durations_s=durations_s)
        result = score_draw(run_draw(draw, signals))
        scored.append(result)
        if log is not None:
            print(json.dumps(_brief(result)), file=log, flush=True)
    return {"seed": seed, "aggregate": aggregate(scored), "per_draw": scored}


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "seed", "vehicles", "duration_s", "climate", "ambient_c", "ev_share", "start_local_h",
            "mean_parking_s", "simulate_s")  # fmt: skip
    out = {k: result[k] for k in keep}
    out["fault_misses"] = [
        (m["kind"], m["vehicle_id"], m["symptom_s"], round(m["onset_s"]), m["params"].get("signal", ""))
        for m in result["missed"]
    ]
    out["fault_false"] = {
        k: v["false_alarm_vehicles"] for k, v in result["faults"].items() if v["false_alarm_vehicles"]
    }
    out["hazards"] = {
        k: (
            v.get("true_positives"),
            v.get("false_positives"),
            v.get("false_negatives"),
            v.get("median_error_m"),
        )
        for k, v in result["hazards"]["kinds"].items()
    }
    out["repaired_still_on_map"] = result["hazards"]["repaired_still_on_map"]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--draws", type=int, default=10, help="random scenarios to run")
    parser.add_argument("--seed", type=int, default=1, help="seed the scenarios are drawn from")
    parser.add_argument(
        "--vehicles", type=int, nargs=2, default=(200, 400), help="fleet sizes drawn: low high"
    )
    parser.add_argument(
        "--durations", type=float, nargs="+", default=DURATIONS_S, help="run lengths drawn (s)"
    )
    parser.add_argument("--json", dest="json_path", default=None, help="write the full result here")
    args = parser.parse_args(argv)
    result = sweep(
        args.draws, args.seed, vehicles=tuple(args.vehicles), durations_s=args.durations, log=sys.stdout
    )
    print(json.dumps({k: v for k, v in result["aggregate"].items()}, indent=1, default=str))
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(result, fh, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
