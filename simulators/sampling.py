"""Turning the fleet's true state into what the in-car agent samples, keyed by VSS path.

Owns: sensor noise (GPS error is an AR(1) process of about 4 m, so fixes wander rather than jump),
which signals a powertrain has (EVs have no engine speed, coolant or fuel; combustion cars no
traction battery), tyre temperature as a TPMS sensor reports it (whole degrees, beside the
pressure), the reduced sampling of parked vehicles, and the sensor faults (stuck at the
value they had at onset, or gone). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.signals import SIGNALS
from simulators.roads import M_PER_DEG_LAT

GPS_SIGMA_M = 2.9  # per axis: about 4 m horizontal RMS error
GPS_CORRELATION = 0.9  # per second

SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
RPM = "Vehicle.Powertrain.CombustionEngine.Speed"
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
BATTERY_12V = "Vehicle.LowVoltageBattery.CurrentVoltage"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
TYRES = tuple(s.vss_path for s in SIGNALS if s.vss_path.endswith(".Tire.Pressure"))  # FL, FR, RL, RR
TYRE_TEMPS = tuple(s.vss_path for s in SIGNALS if s.vss_path.endswith(".Tire.Temperature"))  # FL..RR
ODOMETER = "Vehicle.TraveledDistance"
ACCEL_LONG = "Vehicle.Acceleration.Longitudinal"
ACCEL_LAT = "Vehicle.Acceleration.Lateral"
ACCEL_VERT = "Vehicle.Acceleration.Vertical"
ABS = "Vehicle.ADAS.ABS.IsEngaged"
TCS = "Vehicle.ADAS.TCS.IsEngaged"
FUEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
PAD_WEAR = tuple(s.vss_path for s in SIGNALS if s.vss_path.endswith(".Brake.PadWear"))  # FL, FR, RL, RR


@dataclass(frozen=True)
class TrueState:
    """The physical truth at one instant, for the whole fleet."""

    lat_deg: np.ndarray
    lon_deg: np.ndarray
    heading_deg: np.ndarray
    speed_ms: np.ndarray
    accel_long_ms2: np.ndarray
    yaw_rate_dps: np.ndarray
    vertical_peak_ms2: np.ndarray
    engine_rpm: np.ndarray
    coolant_c: np.ndarray
    battery_12v_v: np.ndarray
    soc_pct: np.ndarray
    fuel_pct: np.ndarray
    tyre_kpa: np.ndarray  # (4, n)
    tyre_temp_c: np.ndarray  # (4, n): the gas in the tyre (what a TPMS sensor reads)
    odometer_km: np.ndarray
    abs_on: np.ndarray
    tcs_on: np.ndarray
    pad_wear_pct: np.ndarray  # (4, n): 0 = new, 100 = worn out (VSS PadWear semantics)


def step_gps_error(err_m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Next GPS error (2, n) in metres: AR(1), stationary standard deviation GPS_SIGMA_M per axis."""
    innov = rng.normal(0.0, GPS_SIGMA_M * np.sqrt(1 - GPS_CORRELATION**2), err_m.shape)
    return GPS_CORRELATION * err_m + innov


def sample_signals(
    truth: TrueState,
    is_ev: np.ndarray,
    sampled: np.ndarray,
    gps_err_m: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Signals of one sampling instant; NaN where a vehicle has no such signal or was not sampled."""
    n = is_ev.shape[0]
    noise = rng.normal(0.0, 1.0, (4, n))
    miss = np.where(sampled, 1.0, np.nan)
    ice = np.where(is_ev, np.nan, miss)
    ev = np.where(is_ev, miss, np.nan)
    v = truth.speed_ms
    out = {
        SPEED: v * 3.6 * miss,
        LAT: (truth.lat_deg + gps_err_m[1] / M_PER_DEG_LAT) * miss,
        LON: (truth.lon_deg + gps_err_m[0] / (M_PER_DEG_LAT * np.cos(np.radians(truth.lat_deg)))) * miss,
        HEADING: ((truth.heading_deg + noise[0] * np.where(v > 1.0, 1.0, 20.0)) % 360.0) * miss,
        RPM: truth.engine_rpm * ice,
        COOLANT: truth.coolant_c * ice,
        BATTERY_12V: truth.battery_12v_v * miss,
        SOC: truth.soc_pct * ev,
        ODOMETER: truth.odometer_km * miss,
        ACCEL_LONG: (truth.accel_long_ms2 + noise[1] * 0.05) * miss,
        ACCEL_LAT: (-v * np.radians(truth.yaw_rate_dps) + noise[2] * 0.05)
        * miss,  # clockwise yaw pulls right
        ACCEL_VERT: (noise[3] * (0.1 + 0.02 * v) + truth.vertical_peak_ms2) * miss,
        ABS: truth.abs_on * miss,
        TCS: truth.tcs_on * miss,
        FUEL: truth.fuel_pct * ice,
    }
    for i, path in enumerate(TYRES):
        out[path] = truth.tyre_kpa[i] * miss
    for i, path in enumerate(TYRE_TEMPS):  # TPMS sensors report whole degrees
        out[path] = np.round(truth.tyre_temp_c[i]) * miss
    for i, path in enumerate(PAD_WEAR):
        out[path] = np.round(truth.pad_wear_pct[i]) * miss
    return out


def apply_sensor_faults(
    signals: dict[str, np.ndarray],
    stuck_path: np.ndarray,
    stuck_active: np.ndarray,
    stuck_value: np.ndarray,
    dropout_path: np.ndarray,
    dropout_active: np.ndarray,
) -> np.ndarray:
    """Flat-line stuck sensors at their first value after onset and blank dropped ones (in place).
    Returns the updated stuck values (NaN until a stuck sensor has been read once)."""
    stuck_value = stuck_value.copy()
    for path in {str(p) for p in stuck_path[stuck_active]}:
        rows = stuck_active & (stuck_path == path)
        col = signals[path]
        fresh = rows & np.isnan(stuck_value) & ~np.isnan(col)
        stuck_value[fresh] = col[fresh]
        keep = rows & ~np.isnan(stuck_value) & ~np.isnan(col)
        signals[path] = np.where(keep, stuck_value, col)
    for path in {str(p) for p in dropout_path[dropout_active]}:
        rows = dropout_active & (dropout_path == path)
        signals[path] = np.where(rows, np.nan, signals[path])
    return stuck_value
