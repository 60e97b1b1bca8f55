"""Fault injection: which vehicle gets which fault when, how far it has progressed, and its DTC.

Owns: drawing the fault plan from the scenario (each vehicle gets at most one fault, so every
signature has a single cause), the per-instant fault levels the powertrain kernel consumes, and
when each fault's monitor detects it (what then happens to the stored code is `simulators.dtcs`).

A fault lasts from its onset until `repaired_at_s` (scenario, optional; never by default): the
workshop repairs it, so its effect stops and its stored code is cleared at once (worn brake pads
are replaced). Until then, codes clear as each kind says below; "drive cycles" are trips (engine
on, or EV ready, to parked), and a clean cycle is one in which the monitor did not detect the fault.
Kind-specific parameters (scenario `params`):

- battery_12v_failing: `ramp_s` (3600) until the battery is fully failing (starts at 40%). No code.
- charging_fault: raises P0562 (system voltage low) while running below 12.5 V; stored until repaired.
- thermostat_stuck: stuck closed; raises P0217 (engine over temperature) above 110 °C; stored
  until repaired.
- tyre_slow_leak: `rate_kpa_per_h` (20), `wheel` (0-3 = FL, FR, RL, RR; random if absent). No code.
  The repair inflates the tyre again by what it lost.
- brake_pad_wear: `start_mm` (3.0) front pads at the start, `wear_factor` (400) from the onset;
  raises C1A00 (simulator's manufacturer code: pad wear indicator) below 2.0 mm; stored until the
  repair replaces the pads.
- sensor_stuck / sensor_dropout: `signal` (VSS path; default front-left tyre pressure), on vehicles
  that have the sensor (engine signals on combustion cars, the traction battery's on EVs). No code.
- misfire: `cylinder` (0 = random misfire P0300, else P030n; random if absent), `rate_per_h` (30)
  misfires while the engine runs; the code clears after `clear_cycles` (3) clean drive cycles.
- firmware_bug: `version` ("4.2.0"), `dtc` ("P0606"), `rate_per_h` (12), `fixed_version` ("4.2.1":
  the version that cures it, for the ground truth and the catalogue), `clear_cycles` (3). The chosen
  vehicles' powertrain controllers run the buggy version; the bug shows only while that version
  runs. An OTA install that commits another version (`simulators.software`, fed by
  `simulators.ota_responder`) stops it, and the code clears after `clear_cycles` clean drive cycles
  on the new version; a rolled-back install keeps the bug. There is no patch time in the scenario
  (`fixed_at_s` is refused): the campaign decides.

A booked shop visit (`FleetSimulation.schedule_visit`) repairs every kind but the firmware bug at
the visit's time, as `repaired_at_s` does, and clears the stored codes.
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
EV_SIGNALS = {"Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"}
DEFAULT_SENSOR = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
BASE_FIRMWARE = "4.1.2"
DEFAULT_CLEAR_CYCLES = 3  # OBD-II: a confirmed fault is healed after three passing drive cycles
PAD_WARN_MM = 2.0
# A leak shows once it has taken this much off the tyre (a TPMS reads in steps of about 1.4 kPa,
# and a degree's change of temperature moves a tyre's pressure by 1.2-1.6 kPa).
LEAK_SHOWING_KPA = 2.0
PAD_SERVICE_MM = 3.0  # pads are due for replacement below about 3 mm (workshops' rule of thumb)
OVERHEAT_C = 110.0
LOW_SYSTEM_V = 12.5


@dataclass(frozen=True)
class FaultPlan:
    """Per-vehicle arrays (kind -1 = healthy, onset +inf) plus the ground-truth records."""

    kind: np.ndarray
    onset_s: np.ndarray
    repaired_at_s: np.ndarray  # +inf = never repaired
    ramp_s: np.ndarray
    wheel: np.ndarray
    leak_kpa_per_h: np.ndarray
    pad_wear_factor: np.ndarray
    pad_start_mm: np.ndarray  # NaN = the vehicle's own random thickness
    rate_per_s: np.ndarray
    sensor_path: np.ndarray  # object array of VSS paths ('' = none)
    firmware_version: np.ndarray  # object array: powertrain version at the start (the bug's: buggy)
    fixed_version: np.ndarray  # object array
    dtc_code: np.ndarray  # object array: the code the vehicle's fault raises ('' = none)
    heals_from_s: np.ndarray  # clean drive cycles count towards clearing from then (+inf = never)
    # When a fault that strikes at random (misfire, firmware bug) first struck (+inf = not yet): before
    # that the vehicle runs like a healthy one (`symptom_showing`).
    first_event_s: np.ndarray
    clear_cycles: np.ndarray  # int: clean drive cycles that clear the stored code
    records: list[dict[str, Any]] = field(default_factory=list)

    def active(self, kind: str, t_s: float) -> np.ndarray:
        return (self.kind == KIND_INDEX[kind]) & (t_s >= self.onset_s) & (t_s < self.repaired_at_s)

    def repaired_between(self, kind: str, t0_s: float, t1_s: float) -> np.ndarray:
        """Vehicles whose fault of `kind` was repaired in (t0_s, t1_s]."""
        return (self.kind == KIND_INDEX[kind]) & (t0_s < self.repaired_at_s) & (self.repaired_at_s <= t1_s)


def draw_faults(
    rng: np.random.Generator, specs: tuple[FaultSpec, ...], is_ev: np.ndarray, duration_s: float
) -> FaultPlan:
    """Choose vehicles and onsets. Raises ValueError when there are too few eligible vehicles, a
    sensor fault names a signal outside the catalogue, or a repair comes before an onset."""
    n = is_ev.shape[0]
    kind = np.full(n, -1)
    onset = np.full(n, np.inf)
    plan = FaultPlan(
        kind=kind,
        onset_s=onset,
        repaired_at_s=np.full(n, np.inf),
        ramp_s=np.full(n, 3600.0),
        wheel=np.zeros(n, dtype=np.int64),
        leak_kpa_per_h=np.zeros(n),
        pad_wear_factor=np.ones(n),
        pad_start_mm=np.full(n, np.nan),
        rate_per_s=np.zeros(n),
        sensor_path=np.full(n, "", dtype=object),
        firmware_version=np.full(n, BASE_FIRMWARE, dtype=object),
        fixed_version=np.full(n, "", dtype=object),
        dtc_code=np.full(n, "", dtype=object),
        heals_from_s=np.full(n, np.inf),
        first_event_s=np.full(n, np.inf),
        clear_cycles=np.full(n, DEFAULT_CLEAR_CYCLES, dtype=np.int64),
    )
    for spec in specs:
        p = dict(spec.params)
        sensor = str(p.get("signal", DEFAULT_SENSOR)) if spec.kind.startswith("sensor_") else ""
        if sensor and sensor not in BY_PATH:
            raise ValueError(f"{spec.kind}: signal {sensor!r} is not in the catalogue")
        # A sensor fault goes to a vehicle that has the sensor (no engine signals on an EV, no
        # traction battery on a combustion car).
        eligible = (kind == -1) & ~(is_ev & (spec.kind in ICE_ONLY or sensor in ICE_SIGNALS))
        eligible &= ~(~is_ev & (sensor in EV_SIGNALS))
        pool = np.flatnonzero(eligible)
        if spec.vehicles > pool.size:
            raise ValueError(f"{spec.kind}: {spec.vehicles} vehicles wanted, {pool.size} eligible")
        chosen = np.sort(rng.choice(pool, spec.vehicles, replace=False))
        if spec.onset_range_s is not None:
            lo, hi = spec.onset_range_s
            onsets = rng.uniform(lo, hi, chosen.size)
        else:
            onsets = np.full(chosen.size, spec.onset_s if spec.onset_s is not None else duration_s * 0.25)
        repaired = spec.repaired_at_s
        if repaired is not None and chosen.size and repaired <= onsets.max():
            raise ValueError(f"{spec.kind}: repaired_at_s {repaired} is not after every onset")
        for v, t0 in zip(chosen, onsets, strict=True):
            kind[v], onset[v] = KIND_INDEX[spec.kind], float(t0)
            plan.repaired_at_s[v] = float(repaired) if repaired is not None else np.inf
            plan.records.append(
                {
                    "vehicle_index": int(v),
                    "kind": spec.kind,
                    "onset_s": float(t0),
                    "repaired_at_s": float(repaired) if repaired is not None else None,
                    "repaired_by": "scenario" if repaired is not None else None,
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
        plan.dtc_code[v] = "C1A00"
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
        plan.dtc_code[v] = f"P030{cylinder}"
        plan.rate_per_s[v] = float(p.get("rate_per_h", 30.0)) / 3600.0
        plan.heals_from_s[v] = -np.inf
        plan.clear_cycles[v] = int(p.get("clear_cycles", DEFAULT_CLEAR_CYCLES))
        return {
            "cylinder": cylinder,
            "dtc": plan.dtc_code[v],
            "rate_per_h": plan.rate_per_s[v] * 3600,
            "clear_cycles": int(plan.clear_cycles[v]),
        }
    if kind == "firmware_bug":
        plan.firmware_version[v] = str(p.get("version", "4.2.0"))
        plan.dtc_code[v] = str(p.get("dtc", "P0606"))
        plan.rate_per_s[v] = float(p.get("rate_per_h", 12.0)) / 3600.0
        if "fixed_at_s" in p:
            raise ValueError("firmware_bug: fixed_at_s is gone; an OTA campaign patches the bug")
        plan.fixed_version[v] = str(p.get("fixed_version", "4.2.1"))
        plan.heals_from_s[v] = np.inf  # until an install moves the vehicle off the buggy version
        plan.clear_cycles[v] = int(p.get("clear_cycles", DEFAULT_CLEAR_CYCLES))
        return {
            "version": plan.firmware_version[v],
            "dtc": plan.dtc_code[v],
            "rate_per_h": plan.rate_per_s[v] * 3600,
            "fixed_version": plan.fixed_version[v],
            "clear_cycles": int(plan.clear_cycles[v]),
        }
    if kind == "charging_fault":
        plan.dtc_code[v] = "P0562"
        return {"dtc": "P0562"}
    if kind == "thermostat_stuck":
        plan.dtc_code[v] = "P0217"
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


def repair(plan: FaultPlan, vehicle: int, t_s: float) -> str | None:
    """The workshop repairs `vehicle`'s hardware fault at `t_s` (a visit): its effect stops and its
    code is cleared from then on, as with `repaired_at_s`; its ground-truth record says so. Returns
    the kind repaired, or None when there is nothing to repair (no fault, a firmware bug, a fault
    that has not begun or was repaired already)."""
    k = int(plan.kind[vehicle])
    if k < 0 or FAULT_KINDS[k] == "firmware_bug":
        return None
    if plan.onset_s[vehicle] > t_s or plan.repaired_at_s[vehicle] <= t_s:
        return None
    plan.repaired_at_s[vehicle] = t_s
    for record in plan.records:
        if record["vehicle_index"] == vehicle:
            record["repaired_at_s"] = float(t_s)
            record["repaired_by"] = "visit"
    return FAULT_KINDS[k]


def buggy_running(plan: FaultPlan, powertrain_versions: np.ndarray) -> np.ndarray:
    """Which vehicles with a firmware bug still run its buggy version, as a mask."""
    return (plan.kind == KIND_INDEX["firmware_bug"]) & (powertrain_versions == plan.firmware_version)


def software_changed(plan: FaultPlan, vehicle: int, t_s: float, new_version: str) -> None:
    """A vehicle's powertrain software changed at `t_s`: a firmware bug's code may heal from then on
    (clean drive cycles wholly after it), or never again once the buggy version is back."""
    if plan.kind[vehicle] == KIND_INDEX["firmware_bug"]:
        plan.heals_from_s[vehicle] = np.inf if new_version == plan.firmware_version[vehicle] else t_s


# The step each watched signal is read in on a real car (OBD-II PIDs, a TPMS, a GPS receiver): a
# stuck sensor shows only once a healthy one would read more than a step away from its frozen value.
SENSOR_RESOLUTION = {
    "Vehicle.Speed": 1.0,  # km/h, PID 0D
    "Vehicle.Powertrain.CombustionEngine.Speed": 0.25,  # rpm, PID 0C
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature": 1.0,  # °C, PID 05
    "Vehicle.Powertrain.FuelSystem.RelativeLevel": 100.0 / 255.0,  # %, PID 2F
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 100.0 / 255.0,  # %, PID 5B
    "Vehicle.LowVoltageBattery.CurrentVoltage": 0.001,  # V, PID 42
    "Vehicle.TraveledDistance": 0.1,  # km, PID A6
    "Vehicle.CurrentLocation.Latitude": 1e-6,  # degrees
    "Vehicle.CurrentLocation.Longitude": 1e-6,
    "Vehicle.CurrentLocation.Heading": 0.1,  # degrees
    "Vehicle.Acceleration.Longitudinal": 0.01,  # m/s²
    "Vehicle.Acceleration.Lateral": 0.01,
    "Vehicle.Acceleration.Vertical": 0.01,
    **{
        f"Vehicle.Chassis.Axle.Row{r}.Wheel.{s}.Tire.Pressure": 1.4 for r in (1, 2) for s in ("Left", "Right")
    },
}
SHOWING_COOLANT_C = 100.0  # a healthy engine's coolant stays below this (its regulated band)
MOVING_MS = 5.0 / 3.6


def symptom_showing(
    plan: FaultPlan,
    t_s: float,
    *,
    running: np.ndarray,
    ice_on: np.ndarray,
    speed_ms: np.ndarray,
    coolant_c: np.ndarray,
    bug_running: np.ndarray,
    powertrain_ecu: np.ndarray,
    front_pad_mm: np.ndarray,
    stuck_departed: np.ndarray,
) -> np.ndarray:
    """Which vehicles' faults show in what the vehicle samples in this step, as a mask: the
    ground truth's `symptom_s` adds these steps up, so a score can tell a fault no data could have
    shown (a charging fault whose car parked for the rest of the run) from a missed one. Generic
    by kind, not by any detector's rule: a failing battery shows at rest or at a start, a charging
    fault while running, misfires while running once the engine has misfired (before its first
    misfire it runs like a healthy one), a stuck thermostat while the coolant is above the
    regulated band, a leak once it has taken `LEAK_SHOWING_KPA` off the tyre's cold pressure (less
    is within a TPMS reading's resolution and a degree's worth of temperature), worn pads while
    the thinner front pad is under the usual service minimum (`PAD_SERVICE_MM`: a thicker pad is
    not worn, however fast it wears), a dropped sensor while the vehicle moves, a stuck one while
    the vehicle moves and a healthy sensor would read otherwise (`stuck_departed`: until the
    quantity moves by the sensor's resolution, a frozen reading is what a healthy sensor reports), a
    firmware bug while its buggy version runs (`bug_running`, from `buggy_running`) once the bug
    has struck in at least two vehicles running that version on the same ECU
    (`powertrain_ecu`: each vehicle's, "ECM" or "VCU"): a fleet fault shows by comparing
    vehicles, and in one vehicle alone nothing tells a software fault from that car's own."""
    moving = speed_ms > MOVING_MS
    showing = plan.active("battery_12v_failing", t_s) & ~running
    showing |= plan.active("charging_fault", t_s) & ice_on
    showing |= plan.active("misfire", t_s) & ice_on & (plan.first_event_s <= t_s)
    showing |= plan.active("thermostat_stuck", t_s) & ice_on & (coolant_c > SHOWING_COOLANT_C)
    lost_kpa = plan.leak_kpa_per_h * np.maximum(t_s - plan.onset_s, 0.0) / 3600.0
    showing |= plan.active("tyre_slow_leak", t_s) & (lost_kpa >= LEAK_SHOWING_KPA)
    showing |= plan.active("brake_pad_wear", t_s) & (front_pad_mm < PAD_SERVICE_MM)
    showing |= plan.active("sensor_stuck", t_s) & moving & stuck_departed
    showing |= plan.active("sensor_dropout", t_s) & moving
    bug = plan.active("firmware_bug", t_s) & running & bug_running
    if bug.any():
        showing |= bug & _struck_in_two(plan, t_s, powertrain_ecu)
    return showing


def stuck_departed(
    plan: FaultPlan, t_s: float, healthy: dict[str, np.ndarray], stuck_value: np.ndarray
) -> np.ndarray:
    """Which vehicles' stuck sensors are frozen more than the signal's resolution
    (`SENSOR_RESOLUTION`; any difference for a signal not listed) away from what a healthy sensor
    reads in this step (`healthy`: the sampled signals before the sensor faults apply)."""
    out = np.zeros(plan.kind.shape[0], dtype=bool)
    stuck = plan.active("sensor_stuck", t_s) & ~np.isnan(stuck_value)
    for path in {str(p) for p in plan.sensor_path[stuck]}:
        rows = stuck & (plan.sensor_path == path)
        with np.errstate(invalid="ignore"):
            away = np.abs(healthy[path] - stuck_value) > SENSOR_RESOLUTION.get(path, 0.0)
        out |= rows & away
    return out


def _struck_in_two(plan: FaultPlan, t_s: float, powertrain_ecu: np.ndarray) -> np.ndarray:
    """Vehicles with a firmware bug whose (ECU, buggy version) has struck (`first_event_s`) in at
    least two vehicles by `t_s`."""
    buggy = np.flatnonzero(plan.kind == KIND_INDEX["firmware_bug"])
    struck: dict[tuple[str, str], int] = {}
    for v in buggy[plan.first_event_s[buggy] <= t_s].tolist():
        key = (str(powertrain_ecu[v]), str(plan.firmware_version[v]))
        struck[key] = struck.get(key, 0) + 1
    out = np.zeros(plan.kind.shape[0], dtype=bool)
    for v in buggy.tolist():
        out[v] = struck.get((str(powertrain_ecu[v]), str(plan.firmware_version[v])), 0) >= 2
    return out


def detect_dtcs(
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
    bug_running: np.ndarray,
) -> np.ndarray:
    """Which vehicles' fault monitors detect their fault (`plan.dtc_code`) in this step, as a mask.
    Misfires and the firmware bug (while its buggy version runs: `bug_running`) are random events
    at their rate (the first one is recorded in `plan.first_event_s`); the others are thresholds."""
    u = rng.random(plan.kind.shape[0])
    detected = np.zeros(plan.kind.shape[0], dtype=bool)
    if not (plan.kind >= 0).any():
        return detected
    detected |= plan.active("misfire", t_s) & ice_on & (u < plan.rate_per_s * dt_s)
    buggy = plan.active("firmware_bug", t_s) & running & bug_running
    detected |= buggy & (u < plan.rate_per_s * dt_s)
    struck = detected & ~np.isfinite(plan.first_event_s)
    plan.first_event_s[struck] = t_s  # misfires and bugs: the first time they struck
    detected |= plan.active("thermostat_stuck", t_s) & ice_on & (coolant_c > OVERHEAT_C)
    detected |= plan.active("charging_fault", t_s) & ice_on & (battery_12v_v < LOW_SYSTEM_V)
    detected |= plan.active("brake_pad_wear", t_s) & running & (front_pad_mm < PAD_WARN_MM)
    return detected
