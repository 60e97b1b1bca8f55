"""The ground truth of a run: what was injected where and when, as one JSON document.

Owns: the file's shape. Analytics are scored against it, so it names vehicles by id and times
both as seconds into the run and as Unix nanoseconds (true time; a vehicle's clock skew is listed
separately, and its samples carry the skewed time). `dtc_sets` is each vehicle's timeline of its
whole set of stored codes (one entry per change, as its DTC messages report it; vehicles that
never stored a code are absent), so the newest entry is what the vehicle reports now
(`current_dtc_sets`). `registry` lists the fleets, models and service centres the run registered,
and each vehicle entry names its VIN, model, fleet, home service centre and owner
(`simulators.fleet_registry`). Each fault has `symptom_s`: how long it showed in what its vehicle
sampled (`simulators.faults.symptom_showing`), so that a score can set apart a fault no data could
have shown. `driving` holds what the driving scores are checked against: trips,
harsh-brake instants and each driver's mean aggression (`driving_truth`). The closed loop's
truth: `software_changes` (every ECU version change, e.g. an OTA install that committed, with its
source), each firmware bug's `patched_at_s` (when its vehicle first stopped running the buggy
version; None: never), each fault's `repaired_by` ("scenario", "visit" or None), `visits` (each
booked visit: when, whether the owner showed up, what was repaired and which codes cleared) and,
given the run's `ClosedLoop`, `ota` (each offer's final state and reason). It covers the steps
simulated so far: write the file after the run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from simulators.engine import FleetSimulation
from simulators.fleet_registry import build_registry

SCHEMA = "fleetpulse.ground_truth.v1"


def _ns(sim: FleetSimulation, t_s: float | None) -> int | None:
    if t_s is None or not math.isfinite(t_s):
        return None
    return int(round((sim.start_unix_s + t_s) * 1e9))


def ground_truth(sim: FleetSimulation, ota: dict[str, Any] | None = None) -> dict[str, Any]:
    """Faults, hazards, outages and clock skews of the run, plus the fleet list; `ota` is the closed
    loop's `truth()` when the run answered update offers."""
    ids = sim.vehicle_ids
    patched: dict[int, float] = {}
    for c in sim.software.changes:
        buggy = str(sim.faults.firmware_version[c.vehicle])
        if c.ecu in ("ECM", "VCU") and c.before == buggy and c.vehicle not in patched:
            patched[c.vehicle] = c.t_s
    faults = [
        {
            "vehicle_id": ids[r["vehicle_index"]],
            "kind": r["kind"],
            "onset_s": r["onset_s"],
            "onset_ts_ns": _ns(sim, r["onset_s"]),
            "repaired_at_s": r["repaired_at_s"],
            "repaired_at_ts_ns": _ns(sim, r["repaired_at_s"]),
            "repaired_by": r.get("repaired_by"),
            **({"patched_at_s": patched.get(r["vehicle_index"])} if r["kind"] == "firmware_bug" else {}),
            "params": r["params"],
            "symptom_s": round(float(sim.symptom_s[r["vehicle_index"]]), 1),
        }
        for r in sim.faults.records
    ]
    hazards = []
    for r in sim.hazards.records:
        entry = {k: v for k, v in r.items() if k not in ("x_m", "y_m")}
        entry["active_from_ts_ns"] = _ns(sim, r["active_from_s"])
        entry["active_until_ts_ns"] = _ns(sim, r["repaired_at_s"])
        hazards.append(entry)
    conn = sim.connectivity
    outages = [
        {
            "vehicle_id": ids[v],
            "from_s": float(conn.outage_from_s[v]),
            "until_s": float(conn.outage_until_s[v]),
        }
        for v in np.flatnonzero(np.isfinite(conn.outage_from_s))
    ]
    dtc_sets: dict[str, list[dict[str, Any]]] = {}
    for t_s, v, codes in sim.dtc_history:
        dtc_sets.setdefault(ids[v], []).append({"t_s": t_s, "ts_ns": _ns(sim, t_s), "codes": list(codes)})
    skews = {ids[v]: round(int(conn.clock_skew_ns[v]) / 1e9, 3) for v in range(sim.n_vehicles)}
    sc = sim.scenario
    registry = build_registry(sim)
    vehicles = [
        {**described, **record.row()}
        for described, record in zip(sim.fleet_description(), registry.vehicles, strict=True)
    ]
    return {
        "schema": SCHEMA,
        "scenario": sc.name,
        "seed": sc.seed,
        "start_ts_ns": _ns(sim, 0.0),
        "duration_s": sc.duration_s,
        "sample_interval_s": sc.sample_interval_s,
        "vehicles": vehicles,
        "registry": {
            "fleets": [r.row() for r in registry.fleets],
            "models": [r.row() for r in registry.models],
            "service_centres": [r.row() for r in registry.service_centres],
        },
        "faults": faults,
        "hazards": hazards,
        "outages": outages,
        "dtc_sets": dtc_sets,
        "clock_skew_s": skews,
        "duplicate_batch_probability": conn.duplicate_probability,
        "driving": driving_truth(sim),
        "software_changes": [
            {
                "vehicle_id": ids[c.vehicle],
                "ecu": c.ecu,
                "before": c.before,
                "after": c.after,
                "t_s": c.t_s,
                "ts_ns": _ns(sim, c.t_s),
                "source": c.source,
            }
            for c in sim.software.changes
        ],
        "visits": [
            {
                "vehicle_id": ids[v["vehicle_index"]],
                **{k: val for k, val in v.items() if k != "vehicle_index"},
                "ts_ns": _ns(sim, v["t_s"]),
            }
            for v in sim.visits
        ],
        **({"ota": ota} if ota is not None else {}),
    }


def driving_truth(sim: FleetSimulation) -> dict[str, Any]:
    """Trips (a start of None: driving when the run began; an end of None: still driving at its
    end), harsh brakes, and each driver's mean aggression while driving (share of the limit)."""
    ids, log = sim.vehicle_ids, sim.driving_log
    started: dict[int, float | None] = {int(v): None for v in np.flatnonzero(log.driving_at_start)}
    trips: list[tuple[int, float | None, float | None]] = []
    changes = [(t, 1, v) for t, v in log.trip_ends] + [(t, 0, v) for t, v in log.trip_starts]
    for t, is_end, v in sorted(changes):  # at one instant, an end before a start
        if is_end:
            trips.append((v, started.pop(v, None), t))
        else:
            started[v] = t
    trips += [(v, t, None) for v, t in started.items()]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = log.aggression_sum / log.driving_steps
    return {
        "trips": [
            {
                "vehicle_id": ids[v],
                "start_s": a,
                "end_s": b,
                "start_ts_ns": _ns(sim, a),
                "end_ts_ns": _ns(sim, b),
            }
            for v, a, b in sorted(trips, key=lambda r: (r[0], -1.0 if r[1] is None else r[1]))
        ],
        "harsh_brakes": [{"vehicle_id": ids[v], "t_s": t, "ts_ns": _ns(sim, t)} for t, v in log.harsh_brakes],
        "mean_aggression": {
            ids[v]: round(float(mean[v]), 4) for v in range(sim.n_vehicles) if log.driving_steps[v] > 0
        },
    }


def current_dtc_sets(truth: dict[str, Any]) -> dict[str, list[str]]:
    """Each reporting vehicle's newest set of stored codes (empty = cleared), from a ground truth."""
    return {vid: timeline[-1]["codes"] for vid, timeline in truth["dtc_sets"].items()}


def write_ground_truth(sim: FleetSimulation, path: Path, ota: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ground_truth(sim, ota), indent=1, default=_jsonable))
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
