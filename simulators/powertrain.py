"""Engine, batteries, fuel, coolant, tyres and brakes: the signals that follow from motion.

Owns: the powertrain kernel, a pure function of the previous state, this step's motion and the
fault levels. The numbers are the usual lead-acid figures: 12 V at rest about 12.6 V when healthy
and below 12.0 V when failing, 13.7-14.7 V while charging, cranking dips to about 10 V (deeper when
the battery fails); tyre pressure follows temperature at constant volume (Gay-Lussac, on absolute pressure).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from simulators.models import GEAR_FROM_MS, RPM_PER_MS, FleetParams

KELVIN = 273.15
ATMOSPHERE_KPA = 101.325  # tyre pressures are gauge; the gas law holds for absolute pressure
TYRE_REFERENCE_C = 20.0
THERMOSTAT_C = 90.0
STUCK_THERMOSTAT_TARGET_C = 128.0
PAD_NEW_MM = 11.0
FLAT_TYRE_KPA = 60.0  # a leaking tyre's cold pressure goes no lower (the bead still holds)


@dataclass(frozen=True)
class PowertrainState:
    odometer_km: np.ndarray
    coolant_c: np.ndarray
    battery_charge: np.ndarray  # 12 V battery, 0..1
    soc_pct: np.ndarray
    fuel_pct: np.ndarray
    tyre_cold_kpa: np.ndarray  # (4, n): FL, FR, RL, RR at the reference temperature
    tyre_temp_c: np.ndarray  # (4, n)
    pad_mm: np.ndarray  # (4, n) brake-pad thickness


@dataclass(frozen=True)
class FaultLevels:
    """How far each fault has progressed for each vehicle at this instant (0 = no fault)."""

    battery_failing: np.ndarray  # 0..1
    charging_fault: np.ndarray  # 0..1
    thermostat_stuck: np.ndarray  # bool
    leak_kpa_per_h: np.ndarray  # (4, n)
    pad_wear_factor: np.ndarray  # 1 = normal wear


@dataclass(frozen=True)
class PowertrainStep:
    state: PowertrainState
    engine_rpm: np.ndarray
    battery_12v_v: np.ndarray
    tyre_kpa: np.ndarray  # (4, n)


def initial_powertrain(rng: np.random.Generator, params: FleetParams, ambient_c: float) -> PowertrainState:
    n = params.is_ev.shape[0]
    return PowertrainState(
        odometer_km=np.asarray(rng.uniform(2_000, 180_000, n)),
        coolant_c=np.full(n, ambient_c) + rng.normal(0, 1, n),
        battery_charge=np.asarray(rng.uniform(0.85, 1.0, n)),
        soc_pct=np.where(params.is_ev, rng.uniform(35, 95, n), 0.0),
        fuel_pct=np.where(params.is_ev, 0.0, rng.uniform(20, 95, n)),
        tyre_cold_kpa=params.tyre_placard_kpa[None, :] + rng.normal(0, 4, (4, n)),
        tyre_temp_c=np.full((4, n), ambient_c),
        pad_mm=rng.uniform(5.0, PAD_NEW_MM, (4, n)),
    )


def step_powertrain(
    st: PowertrainState,
    params: FleetParams,
    faults: FaultLevels,
    rng: np.random.Generator,
    *,
    speed_ms: np.ndarray,
    prev_speed_ms: np.ndarray,
    accel_ms2: np.ndarray,
    distance_m: np.ndarray,
    running: np.ndarray,
    cranking: np.ndarray,
    night_charging: np.ndarray,
    ambient_c: float,
    dt_s: float,
) -> PowertrainStep:
    """Advance the powertrain by `dt_s`. `running` is engine on (ICE) or ready (EV); `cranking`
    marks ICE engine starts in this step (the 1 Hz sample catches the cranking dip)."""
    n = speed_ms.shape[0]
    noise = rng.normal(0.0, 1.0, (3, n))
    ev = params.is_ev
    ice_on = running & ~ev
    # Engine speed: the gear follows road speed; idle when stopped with the engine on.
    gear = np.searchsorted(GEAR_FROM_MS, speed_ms, side="right") - 1
    load_rpm = np.maximum(accel_ms2, 0.0) * 250.0
    rpm = np.maximum(params.idle_rpm, speed_ms * RPM_PER_MS[gear] * params.rpm_scale + load_rpm)
    rpm = np.where(ice_on, rpm + noise[0] * 12.0, 0.0)
    # Coolant: towards the thermostat while running (a stuck-closed thermostat lets it climb on).
    target = np.where(faults.thermostat_stuck, STUCK_THERMOSTAT_TARGET_C, THERMOSTAT_C)
    target = np.where(ice_on, target + np.maximum(accel_ms2, 0) * 1.5, ambient_c)
    tau = np.where(ice_on, np.where(faults.thermostat_stuck, 300.0, 220.0), 1_800.0)
    coolant = st.coolant_c + (target - st.coolant_c) * (1.0 - np.exp(-dt_s / tau))
    # 12 V battery: charged while the alternator (or EV DC-DC) works, drained by a faulty one.
    charging_ok = running & (faults.charging_fault == 0)
    drain = np.where(running, 2e-5, 1e-7) * dt_s
    charge = np.clip(st.battery_charge + np.where(charging_ok, 1e-4 * dt_s, -drain), 0.0, 1.0)
    rest_v = 11.9 + 0.75 * charge - 0.8 * faults.battery_failing
    running_v = np.where(ev, 14.0, 14.2) - faults.charging_fault * (1.6 + 0.5 * (1.0 - charge))
    crank_v = 10.4 - 1.9 * faults.battery_failing - 0.5 * (1.0 - charge)
    volts = np.where(running, np.where(cranking & ~ev, crank_v, running_v), rest_v) + noise[1] * 0.03
    # Traction battery: energy per metre, more when accelerating, some back when braking.
    e_kwh = distance_m / 1000.0 * params.kwh_per_km * (1.0 + 0.08 * np.maximum(accel_ms2, 0.0))
    e_kwh -= 0.3 * np.maximum(-accel_ms2, 0.0) * distance_m / 1000.0 * params.kwh_per_km
    e_kwh += np.where(running, 0.8 * dt_s / 3600.0, 0.0)  # heating, pumps, electronics
    e_kwh -= np.where(night_charging & ~running, 7.0 * dt_s / 3600.0, 0.0)
    soc = np.where(ev, np.clip(st.soc_pct - 100.0 * e_kwh / np.maximum(params.battery_kwh, 1.0), 0, 100), 0.0)
    # Fuel: per distance plus idling.
    litres = distance_m / 100_000.0 * params.fuel_l_per_100km * (1.0 + 0.25 * np.maximum(accel_ms2, 0.0))
    litres += np.where(ice_on, 0.8 * dt_s / 3600.0, 0.0)
    fuel = np.where(ev, 0.0, np.clip(st.fuel_pct - 100.0 * litres / np.maximum(params.tank_l, 1.0), 0, 100))
    # Tyres warm with speed; a leak lowers the cold pressure; pressure follows temperature.
    tyre_target = ambient_c + 0.9 * speed_ms
    tyre_temp = st.tyre_temp_c + (tyre_target - st.tyre_temp_c) * (1.0 - np.exp(-dt_s / 600.0))
    cold = np.maximum(st.tyre_cold_kpa - faults.leak_kpa_per_h * dt_s / 3600.0, FLAT_TYRE_KPA)
    tyre_kpa = (cold + ATMOSPHERE_KPA) * (tyre_temp + KELVIN) / (TYRE_REFERENCE_C + KELVIN) - ATMOSPHERE_KPA
    # Brake pads wear with the kinetic energy braked away (front pads take about 70%).
    braked = np.maximum(prev_speed_ms**2 - speed_ms**2, 0.0) * faults.pad_wear_factor
    wear = braked * 4e-7 * np.array([0.7, 0.7, 0.3, 0.3])[:, None]
    pads = np.maximum(st.pad_mm - wear, 0.0)
    state = dataclasses.replace(
        st,
        odometer_km=st.odometer_km + distance_m / 1000.0,
        coolant_c=coolant,
        battery_charge=charge,
        soc_pct=soc,
        fuel_pct=fuel,
        tyre_cold_kpa=cold,
        tyre_temp_c=tyre_temp,
        pad_mm=pads,
    )
    return PowertrainStep(state, rpm, volts, tyre_kpa)
