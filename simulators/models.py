"""Vehicle models of the simulated fleet: combustion and electric, with the numbers physics needs.

Owns: the model table and turning a per-vehicle model index into per-vehicle parameter arrays,
so that kernels read `params.tank_l[i]` for the whole fleet at once instead of a Python object
per vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VehicleModel:
    name: str
    is_ev: bool
    cylinders: int
    idle_rpm: float
    rpm_scale: float  # 1.0 petrol, below 1 for diesels (lower revs at the same speed)
    fuel_l_per_100km: float
    tank_l: float
    battery_kwh: float
    kwh_per_km: float
    max_accel_ms2: float
    tyre_placard_kpa: float
    share: float  # relative weight within its powertrain


MODELS: tuple[VehicleModel, ...] = (
    VehicleModel("Compact 1.2 petrol", False, 3, 800, 1.0, 5.8, 45, 0, 0, 2.2, 230, 0.35),
    VehicleModel("Sedan 2.0 petrol", False, 4, 750, 1.0, 7.2, 60, 0, 0, 2.8, 240, 0.30),
    VehicleModel("Van 2.2 diesel", False, 4, 700, 0.8, 8.5, 75, 0, 0, 1.8, 320, 0.25),
    VehicleModel("Pickup 3.0 V6", False, 6, 700, 0.9, 11.0, 80, 0, 0, 2.5, 280, 0.10),
    VehicleModel("City EV", True, 0, 0, 0, 0, 0, 42, 0.150, 2.6, 250, 0.6),
    VehicleModel("Sedan EV", True, 0, 0, 0, 0, 0, 78, 0.175, 3.2, 260, 0.4),
)

def powertrain_ecu(is_ev: bool) -> str:
    """The ECU whose software the simulated firmware faults concern: the engine control module, or
    the vehicle control unit of an EV."""
    return "VCU" if is_ev else "ECM"


# Speeds (m/s) above which each gear is used, and rpm per m/s in that gear (petrol reference).
GEAR_FROM_MS = np.array([0.0, 4.5, 8.5, 13.0, 18.0, 24.0])
RPM_PER_MS = np.array([520.0, 290.0, 195.0, 140.0, 105.0, 92.0])


@dataclass(frozen=True)
class FleetParams:
    """Per-vehicle model parameters, each an array of shape (n_vehicles,)."""

    model_index: np.ndarray
    is_ev: np.ndarray
    cylinders: np.ndarray
    idle_rpm: np.ndarray
    rpm_scale: np.ndarray
    fuel_l_per_100km: np.ndarray
    tank_l: np.ndarray
    battery_kwh: np.ndarray
    kwh_per_km: np.ndarray
    max_accel_ms2: np.ndarray
    tyre_placard_kpa: np.ndarray


def draw_models(rng: np.random.Generator, n_vehicles: int, ev_share: float) -> FleetParams:
    """Assign a model to each vehicle: EVs with probability `ev_share`, weighted by `share`."""
    is_ev = rng.random(n_vehicles) < ev_share
    ev_idx = np.array([i for i, m in enumerate(MODELS) if m.is_ev])
    ice_idx = np.array([i for i, m in enumerate(MODELS) if not m.is_ev])
    ev_w = np.array([MODELS[i].share for i in ev_idx])
    ice_w = np.array([MODELS[i].share for i in ice_idx])
    pick_ev = rng.choice(ev_idx, n_vehicles, p=ev_w / ev_w.sum())
    pick_ice = rng.choice(ice_idx, n_vehicles, p=ice_w / ice_w.sum())
    model_index = np.where(is_ev, pick_ev, pick_ice)

    def col(name: str) -> np.ndarray:
        return np.array([getattr(m, name) for m in MODELS], dtype=np.float64)[model_index]

    return FleetParams(
        model_index=model_index,
        is_ev=is_ev,
        cylinders=col("cylinders").astype(np.int64),
        idle_rpm=col("idle_rpm"),
        rpm_scale=col("rpm_scale"),
        fuel_l_per_100km=col("fuel_l_per_100km"),
        tank_l=col("tank_l"),
        battery_kwh=col("battery_kwh"),
        kwh_per_km=col("kwh_per_km"),
        max_accel_ms2=col("max_accel_ms2"),
        tyre_placard_kpa=col("tyre_placard_kpa"),
    )
