"""The vectorised fleet simulation: one numpy array per state variable, advanced a step at a time.

Owns: wiring the kernels together in a fixed order (software installs and shop visits due ->
hazards -> motion -> powertrain -> faults -> sampling -> stored DTCs) and the bits of state between
them (GPS error, stuck sensor values, the stored DTCs, how long each vehicle has been parked), plus
the history of every vehicle's DTC set, software changes and visits for the ground truth.
The closed loop's hooks: `install_software` (an OTA install that committed, from
`simulators.closed_loop`) and `schedule_visit` (a booked shop visit: the owner may not show up;
`VisitSpec`). Both take effect at the first step at or after their time.
It holds no Python object per vehicle, does no I/O and reads no clock: simulated time is
`start_unix_s + step * sample_interval_s`, so one seed and start give one history.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators import faults as fault_mod
from simulators import hazards as hazard_mod
from simulators.connectivity import ConnectivityPlan, draw_connectivity
from simulators.dtcs import DtcState, changed_sets, clear_dtcs, initial_dtcs, step_dtcs
from simulators.models import MODELS, draw_models, powertrain_ecu
from simulators.motion import (
    NIGHT_FROM_H,
    NIGHT_TO_H,
    PARKED,
    MotionStep,
    initial_motion,
    local_hour,
    step_motion,
)
from simulators.powertrain import (
    FLAT_TYRE_KPA,
    PAD_NEW_MM,
    PowertrainState,
    initial_powertrain,
    step_powertrain,
)
from simulators.roads import RoadNetwork
from simulators.sampling import TrueState, apply_sensor_faults, sample_signals, step_gps_error
from simulators.scenario import Scenario
from simulators.software import FleetSoftware
from simulators.workshop import Workshop


@dataclass
class DrivingLog:
    """What the driving scores are checked against: when each trip began and ended, each harsh
    brake, and each driver's aggression (the share of the limit it aims for) averaged over its
    driving time. Times are seconds into the run."""

    trip_starts: list[tuple[float, int]]
    trip_ends: list[tuple[float, int]]
    harsh_brakes: list[tuple[float, int]]
    aggression_sum: np.ndarray
    driving_steps: np.ndarray
    driving_at_start: np.ndarray  # bool: mid-trip when the run began

    @classmethod
    def empty(cls, driving_at_start: np.ndarray) -> DrivingLog:
        n = driving_at_start.shape[0]
        return cls([], [], [], np.zeros(n), np.zeros(n, dtype=np.int64), driving_at_start.copy())

    def record(self, t_s: float, ms: MotionStep, cycle_ended: np.ndarray, running: np.ndarray) -> None:
        self.trip_starts.extend((t_s, int(v)) for v in np.flatnonzero(ms.engine_start))
        self.trip_ends.extend((t_s, int(v)) for v in np.flatnonzero(cycle_ended))
        self.harsh_brakes.extend((t_s, int(v)) for v in np.flatnonzero(ms.harsh_start))
        self.aggression_sum += np.where(running, ms.state.aggression, 0.0)
        self.driving_steps += running


@dataclass(frozen=True)
class StepOutput:
    t_s: float  # seconds since the start of the run
    ts_ns: int  # true sampling instant (vehicles add their clock skew when sending)
    signals: dict[str, np.ndarray]
    dtc_vehicles: np.ndarray  # indices of vehicles whose set of stored codes changed in this step
    dtc_sets: list[tuple[str, ...]]  # each one's whole new set, parallel to dtc_vehicles (() = cleared)
    # vehicles whose ECU software changed in this step (they check in again)
    software_vehicles: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class FleetSimulation:
    """The whole fleet. `step()` advances one sample interval and returns what the agents sample."""

    def __init__(self, scenario: Scenario, network: RoadNetwork, start_unix_s: float) -> None:
        self.scenario = scenario
        self.network = network
        self.start_unix_s = float(start_unix_s)
        self.dt_s = scenario.sample_interval_s
        n = scenario.vehicles
        rng = np.random.default_rng(scenario.seed)
        # Independent streams: adding a fault to the scenario does not change the traffic.
        plan_rng, fault_rng, hazard_rng, net_rng, self._rng = (
            np.random.default_rng(s)
            for s in rng.bit_generator.seed_seq.spawn(5)  # type: ignore[attr-defined]
        )
        self.vehicle_ids = [f"SIM-{scenario.seed % 10_000:04d}-{i:05d}" for i in range(n)]
        self.params = draw_models(plan_rng, n, scenario.ev_share)
        self.motion = initial_motion(
            network, plan_rng, n, scenario.initially_driving_share, scenario.mean_parking_s
        )
        self.faults = fault_mod.draw_faults(
            fault_rng, scenario.faults, self.params.is_ev, scenario.duration_s
        )
        self.hazards = hazard_mod.place_hazards(hazard_rng, network, scenario.hazards)
        self.connectivity: ConnectivityPlan = draw_connectivity(
            net_rng, n, scenario.network, scenario.duration_s
        )
        pt = initial_powertrain(plan_rng, self.params, scenario.ambient_c)
        worn = ~np.isnan(self.faults.pad_start_mm)
        pt.pad_mm[:2, worn] = self.faults.pad_start_mm[worn]
        self.powertrain = pt
        self._gps_err = plan_rng.normal(0.0, 2.9, (2, n))
        self._stuck_value = np.full(n, np.nan)
        self.dtcs: DtcState = initial_dtcs(n)
        self.dtc_history: list[tuple[float, int, tuple[str, ...]]] = []  # (t_s, vehicle, new set)
        self.symptom_s = np.zeros(n)  # per vehicle: how long its fault showed (`faults.symptom_showing`)
        self.driving_log = DrivingLog.empty(self.motion.mode != PARKED)
        self._running = self.motion.mode != PARKED
        self._parked_every = max(1, int(round(scenario.parked_sample_interval_s / self.dt_s)))
        self._phase = plan_rng.integers(0, self._parked_every, n)
        self.step_index = 0
        self.software = FleetSoftware(self.params.is_ev, self.faults.firmware_version)
        self._ecu = np.where(self.params.is_ev, "VCU", "ECM")  # `models.powertrain_ecu`
        self._bug_running = fault_mod.buggy_running(self.faults, self.software.powertrain())
        self.parked_s = np.zeros(n)  # how long each vehicle has been parked (0 while running)
        self.battery_12v_v = np.full(n, np.nan)  # the 12 V battery's last true voltage
        self.workshop = Workshop(n, scenario.seed, scenario.visits)

    @property
    def n_vehicles(self) -> int:
        return len(self.vehicle_ids)

    def positions_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """True position of every vehicle in local metres."""
        net, m = self.network, self.motion
        frac = m.offset_m / net.edge_length_m[m.edge]
        s, d = net.edge_src[m.edge], net.edge_dst[m.edge]
        return (
            net.node_x_m[s] + frac * (net.node_x_m[d] - net.node_x_m[s]),
            net.node_y_m[s] + frac * (net.node_y_m[d] - net.node_y_m[s]),
        )

    @property
    def t_s(self) -> float:
        """Seconds into the run of the last step (0 before the first)."""
        return self.step_index * self.dt_s

    def unix_s_at(self, t_s: float) -> float:
        """The true Unix time of `t_s` seconds into the run."""
        return self.start_unix_s + t_s

    def t_s_at(self, unix_s: float) -> float:
        """Seconds into the run of the true Unix time `unix_s` (negative before the start)."""
        return unix_s - self.start_unix_s

    def install_software(self, vehicle: int, ecu: str, version: str, at_s: float, source: str) -> None:
        """`ecu` of `vehicle` runs `version` from the first step at or after `at_s` (an OTA install
        that committed; `source` names it, e.g. "ota:<offer id>"). The vehicle checks in with its
        new software, and a firmware bug stops once its buggy version no longer runs. Raises
        ValueError for an unknown vehicle or ECU, or an invalid version."""
        self.software.schedule(vehicle, ecu, version, at_s, source)

    def schedule_visit(self, vehicle: int, at_s: float) -> None:
        """A booked shop visit of `vehicle` at `at_s` seconds into the run (applied at the first
        step at or after it). The owner does not show up with `scenario.visits.no_show_probability`
        (drawn from the seed, per vehicle and visit); otherwise the hardware fault is repaired and
        the stored codes are cleared (`simulators.workshop`). Raises ValueError for an unknown
        vehicle."""
        self.workshop.book(vehicle, at_s)

    def cancel_visit(self, vehicle: int, at_s: float) -> bool:
        """Withdraw a booked visit that has not been held (a cancelled or rescheduled booking):
        whether there was one."""
        return self.workshop.cancel(vehicle, at_s)

    @property
    def visits(self) -> list[dict[str, Any]]:
        """Each visit held so far (for the ground truth)."""
        return self.workshop.visits

    def _software_and_visits(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Apply the installs and visits due at `t_s`: the vehicles whose software changed, and a
        mask of those whose stored codes the workshop clears."""
        changed = self.software.apply_due(t_s)
        for c in changed:
            if c.ecu in ("ECM", "VCU"):
                fault_mod.software_changed(self.faults, c.vehicle, t_s, c.after)
        cleared = self.workshop.visit_due(t_s, self.faults, self.dtcs.stored)
        return np.array(sorted({c.vehicle for c in changed}), dtype=np.int64), cleared

    def step(self) -> StepOutput:
        sc, net, dt, rng = self.scenario, self.network, self.dt_s, self._rng
        self.step_index += 1
        t_s = self.step_index * dt
        t_unix = self.start_unix_s + t_s
        software_vehicles, workshop_cleared = self._software_and_visits(t_s)
        if software_vehicles.size:  # object arrays: compared again only when software changed
            self._bug_running = fault_mod.buggy_running(self.faults, self.software.powertrain())
        bug_running = self._bug_running
        prev_speed = self.motion.speed_ms
        ms = step_motion(
            self.motion,
            net,
            hazard_mod.road_context(self.hazards, t_s),
            self.params.max_accel_ms2,
            rng,
            t_unix_s=t_unix,
            dt_s=dt,
            utc_offset_h=sc.utc_offset_h,
            mean_parking_s=sc.mean_parking_s,
            trip_length_m=sc.trip_length_m,
        )
        self.motion = mot = ms.state
        running = mot.mode != PARKED
        self.parked_s = np.where(mot.mode == PARKED, self.parked_s + dt, 0.0)
        cycle_ended = self._running & ~running
        self.driving_log.record(t_s, ms, cycle_ended, running)
        self._running = running
        is_ev = self.params.is_ev
        hour = local_hour(t_unix, sc.utc_offset_h)
        night = hour >= NIGHT_FROM_H or hour < NIGHT_TO_H
        pts = step_powertrain(
            self._workshop_repairs(t_s),
            self.params,
            fault_mod.fault_levels(self.faults, t_s),
            rng,
            speed_ms=mot.speed_ms,
            prev_speed_ms=prev_speed,
            accel_ms2=ms.accel_ms2,
            distance_m=ms.distance_m,
            running=running,
            cranking=ms.engine_start,
            night_charging=is_ev & night & (self.powertrain.soc_pct < 90.0),
            ambient_c=sc.ambient_c,
            dt_s=dt,
        )
        self.powertrain = pt = pts.state
        self.battery_12v_v = pts.battery_12v_v
        hit = hazard_mod.pothole_hits(
            self.hazards, t_s, ms.prev_edge, ms.prev_offset_m, mot.edge, mot.offset_m
        )
        spike = hazard_mod.vertical_spike_ms2(
            self.hazards, hit, mot.speed_ms, np.asarray(rng.random(hit.shape[0]))
        )
        abs_on, tcs_on = hazard_mod.stability_flags(rng, ms.accel_ms2, mot.speed_ms, ms.on_slippery)
        x, y = self.positions_xy()
        lat, lon = net.to_latlon(x, y)
        truth = TrueState(
            lat_deg=lat,
            lon_deg=lon,
            heading_deg=mot.heading_deg,
            speed_ms=mot.speed_ms,
            accel_long_ms2=ms.accel_ms2,
            yaw_rate_dps=ms.yaw_rate_dps,
            vertical_peak_ms2=spike,
            engine_rpm=pts.engine_rpm,
            coolant_c=pt.coolant_c,
            battery_12v_v=pts.battery_12v_v,
            soc_pct=pt.soc_pct,
            fuel_pct=pt.fuel_pct,
            tyre_kpa=pts.tyre_kpa,
            tyre_temp_c=pt.tyre_temp_c,
            odometer_km=pt.odometer_km,
            abs_on=abs_on.astype(np.float64),
            tcs_on=tcs_on.astype(np.float64),
            pad_wear_pct=np.clip(100.0 * (1.0 - pt.pad_mm / PAD_NEW_MM), 0.0, 100.0),
        )
        self._gps_err = step_gps_error(self._gps_err, rng)
        sampled = running | ((self.step_index + self._phase) % self._parked_every == 0)
        signals = sample_signals(truth, is_ev, sampled, self._gps_err, rng)
        f = self.faults
        stuck_departed = fault_mod.stuck_departed(f, t_s, signals, self._stuck_value)
        self._stuck_value = apply_sensor_faults(
            signals,
            f.sensor_path,
            f.active("sensor_stuck", t_s),
            self._stuck_value,
            f.sensor_path,
            f.active("sensor_dropout", t_s),
        )
        detected = fault_mod.detect_dtcs(
            f,
            rng,
            t_s,
            dt,
            running=running,
            ice_on=running & ~is_ev,
            coolant_c=pt.coolant_c,
            battery_12v_v=pts.battery_12v_v,
            front_pad_mm=pt.pad_mm[:2].min(axis=0),
            bug_running=bug_running,
        )
        self.symptom_s += dt * fault_mod.symptom_showing(
            f,
            t_s,
            running=running,
            ice_on=running & ~is_ev,
            speed_ms=mot.speed_ms,
            coolant_c=pt.coolant_c,
            bug_running=bug_running,
            powertrain_ecu=self._ecu,
            front_pad_mm=pt.pad_mm[:2].min(axis=0),
            stuck_departed=stuck_departed,
        )
        before, self.dtcs = (
            self.dtcs,
            step_dtcs(f, self.dtcs, t_s, detected=detected, running=running, cycle_ended=cycle_ended),
        )
        if workshop_cleared.any():  # the workshop's scan tool clears the stored codes
            self.dtcs = clear_dtcs(self.dtcs, workshop_cleared)
        dtc_v, dtc_sets = changed_sets(f, before, self.dtcs)
        self.dtc_history.extend((t_s, int(v), codes) for v, codes in zip(dtc_v, dtc_sets, strict=True))
        ts_ns = int(round(self.start_unix_s * 1e9)) + self.step_index * int(round(dt * 1e9))
        return StepOutput(t_s, ts_ns, signals, dtc_v, dtc_sets, software_vehicles)

    def _workshop_repairs(self, t_s: float) -> PowertrainState:
        """The powertrain state with the workshop's repairs done: new front pads where it repaired
        worn ones, and a repaired leaking tyre inflated again by what it lost (to the pressure it
        held before the leak: a tyre fitter inflates it after fixing the puncture)."""
        new = self.faults.repaired_between("brake_pad_wear", t_s - self.dt_s, t_s)
        tyre = self.faults.repaired_between("tyre_slow_leak", t_s - self.dt_s, t_s)
        if not new.any() and not tyre.any():
            return self.powertrain
        pads = self.powertrain.pad_mm.copy()
        pads[:2, new] = PAD_NEW_MM
        cold = self.powertrain.tyre_cold_kpa.copy()
        fixed = np.flatnonzero(tyre)
        f, wheel = self.faults, self.faults.wheel[fixed]
        lost = f.leak_kpa_per_h[fixed] * (t_s - f.onset_s[fixed]) / 3600.0
        flat = cold[wheel, fixed] <= FLAT_TYRE_KPA  # lost all it could: inflated to the placard
        cold[wheel, fixed] = np.where(flat, self.params.tyre_placard_kpa[fixed], cold[wheel, fixed] + lost)
        return dataclasses.replace(self.powertrain, pad_mm=pads, tyre_cold_kpa=cold)

    def firmware_versions(self) -> np.ndarray:
        """Each vehicle's powertrain controller version now (ECM, or VCU in an EV)."""
        return self.software.powertrain()

    def power_ok(self, min_battery_v: float = 12.2, min_traction_soc_pct: float = 30.0) -> np.ndarray:
        """Which vehicles have the power to install (the agent's `Thresholds`): the 12 V battery at
        `min_battery_v` or above, or an EV's traction battery at `min_traction_soc_pct` or above."""
        volts = np.nan_to_num(self.battery_12v_v, nan=0.0)
        traction = self.params.is_ev & (self.powertrain.soc_pct >= min_traction_soc_pct)
        return (volts >= min_battery_v) | traction

    def fleet_description(self) -> list[dict[str, Any]]:
        """One entry per vehicle: id, model, powertrain and the software its powertrain controller
        (ECM, or VCU in an EV) runs at the start (for the ground truth)."""
        return [
            {
                "vehicle_id": vid,
                "model": MODELS[int(m)].name,
                "powertrain": "electric" if ev else "combustion",
                "ecu_software": {powertrain_ecu(bool(ev)): str(fw)},
            }
            for vid, m, ev, fw in zip(
                self.vehicle_ids,
                self.params.model_index,
                self.params.is_ev,
                self.faults.firmware_version,
                strict=True,
            )
        ]
