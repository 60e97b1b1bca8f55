"""Fault injection: which vehicle gets which fault when, how far it has progressed, and the DTCs.

Owns: drawing the fault plan from the scenario (each vehicle gets at most one fault, so every
signature has a single cause), the per-instant fault levels the powertrain kernel consumes, and
the diagnostic trouble codes the faults raise. Kind-specific parameters (scenario `params`):

- battery_12v_failing: `ramp_s` (3600) until the battery is fully failing (starts at 40%).
- charging_fault: none; raises P0562 (system voltage low) while running below 12.5 V.
- thermostat_stuck: stuck closed; raises P0217 (engine over temperature) above 110 °C.
- tyre_slow_leak: `rate_kpa_per_h` (20), `wheel` (0-3 = FL, FR, RL, RR; random if absent).
- brake_pad_wear: `start_mm` (3.0) front pads at the start, `wear_factor` (400) from the onset;
  raises C1A00 (simulator's manufacturer code: pad wear indicator) below 2.0 mm.
- sensor_stuck / sensor_dropout: `signal` (VSS path; default front-left tyre pressure).
- misfire: `cylinder` (0 = random misfire P0300, else P030n; random if absent), `rate_per_h` (30).
- firmware_bug: `version` ("4.2.0"), `dtc` ("P0606"), `rate_per_h` (12), `fixed_at_s` (OTA patch
  time, none = never), `fixed_version` ("4.2.1"). The chosen vehicles run the buggy version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contract.signals import BY_PATH
from simulators.powertrain import FaultLevels
from simulators.scenario import FAULT_KINDS, FaultSpec

KIND_INDEX = {kind: i for i, kind in enumerate(FAULT_KINDS)}
ICE_ONLY = {"charging_fault", "thermostat_stuck", "misfire"}
ICE_SIGNALS = {
    "Vehicle.Powertrain.CombustionEngine.Speed",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.Powertrain.FuelSystem.RelativeLevel",
}
DEFAULT_SENSOR = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
FIRMWARE_VERSIONS = ("4.1.2", "4.2.0", "4.2.1")
BASE_FIRMWARE = "4.1.2"
DTC_REPEAT_S = 60.0  # a vehicle reports a code again at most this often
PAD_WARN_MM = 2.0
OVERHEAT_C = 110.0
LOW_SYSTEM_V = 12.5


@dataclass(frozen=True)
class FaultPlan:
    """Per-vehicle arrays (kind -1 = healthy, onset +inf) plus the ground-truth records."""

    kind: np.ndarray
    onset_s: np.ndarray
    ramp_s: np.ndarray
    wheel: np.ndarray
    leak_kpa_per_h: np.ndarray
    pad_wear_factor: np.ndarray
    pad_start_mm: np.ndarray  # NaN = the vehicle's own random thickness
    misfire_code: np.ndarray  # object array of codes ('' = none)
    rate_per_s: np.ndarray
    sensor_path: np.ndarray  # object array of VSS paths ('' = none)
    firmware_code: np.ndarray  # object array
    fixed_at_s: np.ndarray
    firmware_version: np.ndarray  # object array: version at the start of the run
    fixed_version: np.ndarray  # object array
    records: list[dict[str, Any]] = field(default_factory=list)

    def active(self, kind: str, t_s: float) -> np.ndarray:
        return (self.kind == KIND_INDEX[kind]) & (t_s >= self.onset_s)


def draw_faults(
    rng: np.random.Generator, specs: tuple[FaultSpec, ...], is_ev: np.ndarray, duration_s: float
) -> FaultPlan:
    """Choose vehicles and onsets. Raises ValueError when there are too few eligible vehicles or
    a sensor fault names a signal outside the catalogue."""
    n = is_ev.shape[0]
    kind = np.full(n, -1)
    onset = np.full(n, np.inf)
    plan = FaultPlan(
        kind=kind,
        onset_s=onset,
        ramp_s=np.full(n, 3600.0),
        wheel=np.zeros(n, dtype=np.int64),
        leak_kpa_per_h=np.zeros(n),
        pad_wear_factor=np.ones(n),
        pad_start_mm=np.full(n, np.nan),
        misfire_code=np.full(n, "", dtype=object),
        rate_per_s=np.zeros(n),
        sensor_path=np.full(n, "", dtype=object),
        firmware_code=np.full(n, "", dtype=object),
        fixed_at_s=np.full(n, np.inf),
        firmware_version=np.full(n, BASE_FIRMWARE, dtype=object),
        fixed_version=np.full(n, "", dtype=object),
    )
    for spec in specs:
        p = dict(spec.params)
        sensor = str(p.get("signal", DEFAULT_SENSOR)) if spec.kind.startswith("sensor_") else ""
        if sensor and sensor not in BY_PATH:
            raise ValueError(f"{spec.kind}: signal {sensor!r} is not in the catalogue")
        eligible = (kind == -1) & ~(is_ev & (spec.kind in ICE_ONLY or sensor in ICE_SIGNALS))
        pool = np.flatnonzero(eligible)
        if spec.vehicles > pool.size:
            raise ValueError(f"{spec.kind}: {spec.vehicles} vehicles wanted, {pool.size} eligible")
        chosen = np.sort(rng.choice(pool, spec.vehicles, replace=False))
        if spec.onset_range_s is not None:
            lo, hi = spec.onset_range_s
            onsets = rng.uniform(lo, hi, chosen.size)
        else:
            onsets = np.full(chosen.size, spec.onset_s if spec.onset_s is not None else duration_s * 0.25)
        for v, t0 in zip(chosen, onsets, strict=True):
            kind[v], onset[v] = KIND_INDEX[spec.kind], float(t0)
            plan.records.append(
                {
                    "vehicle_index": int(v),
                    "kind": spec.kind,
                    "onset_s": float(t0),
                    "params": _apply_params(plan, spec.kind, int(v), p, sensor, rng),
                }
            )
    return plan


def _apply_params(
    plan: FaultPlan, kind: str, v: int, p: dict[str, Any], sensor: str, rng: np.random.Generator
) -> dict[str, Any]:
    """Write one vehicle's fault parameters into the plan arrays; return them resolved."""
    if kind == "battery_12v_failing":
        plan.ramp_s[v] = float(p.get("ramp_s", 3600.0))
        return {"ramp_s": float(plan.ramp_s[v])}
    if kind == "tyre_slow_leak":
        plan.wheel[v] = int(p.get("wheel", rng.integers(0, 4)))
        plan.leak_kpa_per_h[v] = float(p.get("rate_kpa_per_h", 20.0))
        return {"wheel": ("FL", "FR", "RL", "RR")[plan.wheel[v]], "rate_kpa_per_h": plan.leak_kpa_per_h[v]}
    if kind == "brake_pad_wear":
        plan.pad_wear_factor[v] = float(p.get("wear_factor", 400.0))
        start_mm = float(p.get("start_mm", 3.0))
        plan.pad_start_mm[v] = start_mm
        return {
            "start_mm": start_mm,
            "wear_factor": plan.pad_wear_factor[v],
            "dtc": "C1A00",
            "warn_below_mm": PAD_WARN_MM,
        }
    if kind.startswith("sensor_"):
        plan.sensor_path[v] = sensor
        return {"signal": sensor}
    if kind == "misfire":
        cylinder = int(p.get("cylinder", rng.integers(0, 5)))
        plan.misfire_code[v] = f"P030{cylinder}"
        plan.rate_per_s[v] = float(p.get("rate_per_h", 30.0)) / 3600.0
        return {"cylinder": cylinder, "dtc": plan.misfire_code[v], "rate_per_h": plan.rate_per_s[v] * 3600}
    if kind == "firmware_bug":
        plan.firmware_version[v] = str(p.get("version", "4.2.0"))
        plan.firmware_code[v] = str(p.get("dtc", "P0606"))
        plan.rate_per_s[v] = float(p.get("rate_per_h", 12.0)) / 3600.0
        fixed = p.get("fixed_at_s")
        plan.fixed_at_s[v] = float(fixed) if fixed is not None else np.inf
        plan.fixed_version[v] = str(p.get("fixed_version", "4.2.1"))
        return {
            "version": plan.firmware_version[v],
            "dtc": plan.firmware_code[v],
            "rate_per_h": plan.rate_per_s[v] * 3600,
            "fixed_at_s": fixed,
            "fixed_version": plan.fixed_version[v],
        }
    if kind == "charging_fault":
        return {"dtc": "P0562"}
    if kind == "thermostat_stuck":
        return {"dtc": "P0217", "stuck": "closed"}
    return {}


def fault_levels(plan: FaultPlan, t_s: float) -> FaultLevels:
    """The fault levels at `t_s` seconds into the run."""
    n = plan.kind.shape[0]
    since = t_s - plan.onset_s
    battery = np.where(
        plan.active("battery_12v_failing", t_s), np.clip(0.4 + 0.6 * since / plan.ramp_s, 0.0, 1.0), 0.0
    )
    leak = np.zeros((4, n))
    leaking = np.flatnonzero(plan.active("tyre_slow_leak", t_s))
    leak[plan.wheel[leaking], leaking] = plan.leak_kpa_per_h[leaking]
    return FaultLevels(
        battery_failing=battery,
        charging_fault=plan.active("charging_fault", t_s).astype(np.float64),
        thermostat_stuck=plan.active("thermostat_stuck", t_s),
        leak_kpa_per_h=leak,
        pad_wear_factor=np.where(plan.active("brake_pad_wear", t_s), plan.pad_wear_factor, 1.0),
    )


def firmware_at(plan: FaultPlan, t_s: float) -> np.ndarray:
    """Each vehicle's firmware version at `t_s` (the patch replaces the buggy one at fixed_at_s)."""
    return np.where(t_s >= plan.fixed_at_s, plan.fixed_version, plan.firmware_version)


def raise_dtcs(
    plan: FaultPlan,
    rng: np.random.Generator,
    t_s: float,
    dt_s: float,
    *,
    running: np.ndarray,
    ice_on: np.ndarray,
    coolant_c: np.ndarray,
    battery_12v_v: np.ndarray,
    front_pad_mm: np.ndarray,
    last_dtc_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes raised in this step, as (vehicle indices, codes). A vehicle repeats a code at most every
    DTC_REPEAT_S seconds; the caller records when it reported (`last_dtc_s`)."""
    u = rng.random(plan.kind.shape[0])
    codes = np.full(plan.kind.shape[0], "", dtype=object)
    if not (plan.kind >= 0).any():
        return np.zeros(0, dtype=np.int64), codes[:0]
    misfire = plan.active("misfire", t_s) & ice_on & (u < plan.rate_per_s * dt_s)
    codes[misfire] = plan.misfire_code[misfire]
    buggy = (
        plan.active("firmware_bug", t_s) & running & (t_s < plan.fixed_at_s) & (u < plan.rate_per_s * dt_s)
    )
    codes[buggy] = plan.firmware_code[buggy]
    codes[plan.active("thermostat_stuck", t_s) & ice_on & (coolant_c > OVERHEAT_C)] = "P0217"
    codes[plan.active("charging_fault", t_s) & ice_on & (battery_12v_v < LOW_SYSTEM_V)] = "P0562"
    codes[plan.active("brake_pad_wear", t_s) & running & (front_pad_mm < PAD_WARN_MM)] = "C1A00"
    due = (codes != "") & (t_s - last_dtc_s >= DTC_REPEAT_S)
    idx = np.flatnonzero(due)
    return idx, codes[idx]
