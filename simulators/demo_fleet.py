"""A small vectorised fleet for the demo: plausible, mutually consistent signals, no faults.

Owns: one numpy array per state variable across the fleet and a pure `step` that advances it.
The full simulator (road network, trips, fault and hazard injection, ground truth) is the
simulator issue; this is the data source the Foundation demo needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

G_MS2 = 9.80665
M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class FleetSpec:
    n_vehicles: int = 100
    seed: int = 0
    ev_share: float = 0.3
    origin_lat_deg: float = 48.137  # Munich
    origin_lon_deg: float = 11.575
    spread_m: float = 5_000.0
    gps_noise_m: float = 4.0


class DemoFleet:
    """Vehicles cruising around a city centre. `step(dt_s)` returns one sample per vehicle per signal."""

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        n = spec.n_vehicles
        rng = np.random.default_rng(spec.seed)
        self._rng = rng
        self.vehicle_ids = [f"SIM-{i:05d}" for i in range(n)]
        self.is_ev = rng.random(n) < spec.ev_share
        north, east = rng.normal(0, spec.spread_m / 2, (2, n))
        self.lat = spec.origin_lat_deg + north / M_PER_DEG_LAT
        self.lon = spec.origin_lon_deg + east / (M_PER_DEG_LAT * np.cos(np.radians(spec.origin_lat_deg)))
        self.heading = rng.uniform(0, 360, n)
        self.speed_ms = np.zeros(n)
        self.target_ms = rng.uniform(8, 20, n)
        self.odometer_km = rng.uniform(1_000, 150_000, n)
        self.coolant_c = rng.uniform(5, 20, n)
        self.soc_pct = rng.uniform(40, 95, n)
        self.fuel_pct = rng.uniform(20, 95, n)
        self.tire_cold_kpa = rng.normal(240, 5, (4, n))
        self.tire_temp_c = np.full((4, n), 15.0)

    def step(self, dt_s: float) -> dict[str, np.ndarray]:
        """Advance every vehicle by dt_s seconds and return the sampled signals (VSS path -> array)."""
        rng, n = self._rng, self.spec.n_vehicles
        retarget = rng.random(n) < dt_s / 20.0  # new target speed about every 20 s
        self.target_ms = np.where(retarget, rng.choice([0.0, 8.0, 14.0, 22.0], n), self.target_ms)
        accel_cmd = np.clip((self.target_ms - self.speed_ms) / dt_s, -3.0, 2.0)
        new_speed = np.maximum(self.speed_ms + accel_cmd * dt_s, 0.0)
        accel_long = (new_speed - self.speed_ms) / dt_s
        yaw_rate = np.where(new_speed > 1, rng.normal(0, 3.0, n), 0.0)  # deg/s
        mean_speed = (new_speed + self.speed_ms) / 2
        self.speed_ms = new_speed
        self.heading = (self.heading + yaw_rate * dt_s) % 360
        dist_m = mean_speed * dt_s
        h = np.radians(self.heading)
        self.lat += dist_m * np.cos(h) / M_PER_DEG_LAT
        self.lon += dist_m * np.sin(h) / (M_PER_DEG_LAT * np.cos(np.radians(self.lat)))
        self.odometer_km += dist_m / 1000
        moving = self.speed_ms > 0.5
        # Engine warms towards 90 °C while running (time constant ~5 min).
        self.coolant_c += (90 - self.coolant_c) * (1 - np.exp(-dt_s / 300))
        self.soc_pct = np.where(self.is_ev, self.soc_pct - dist_m / 1000 * 0.025, self.soc_pct)
        self.fuel_pct = np.where(~self.is_ev, self.fuel_pct - dist_m / 1000 * 0.014, self.fuel_pct)
        self.tire_temp_c += ((15 + 0.6 * self.speed_ms) - self.tire_temp_c) * (1 - np.exp(-dt_s / 600))
        tire_kpa = self.tire_cold_kpa * (273.15 + self.tire_temp_c) / 288.15
        gear_ratio = np.select([self.speed_ms < 5, self.speed_ms < 10, self.speed_ms < 16], [120, 75, 50], 36)
        rpm = np.maximum(800, self.speed_ms * gear_ratio + rng.normal(0, 20, n))
        noise_m = rng.normal(0, self.spec.gps_noise_m, (2, n))
        ice = np.where(self.is_ev, np.nan, 1.0)
        ev = np.where(self.is_ev, 1.0, np.nan)
        hard_brake = accel_long < -0.45 * G_MS2
        return {
            "Vehicle.Speed": self.speed_ms * 3.6,
            "Vehicle.CurrentLocation.Latitude": self.lat + noise_m[0] / M_PER_DEG_LAT,
            "Vehicle.CurrentLocation.Longitude": self.lon
            + noise_m[1] / (M_PER_DEG_LAT * np.cos(np.radians(self.lat))),
            "Vehicle.CurrentLocation.Heading": self.heading.copy(),
            "Vehicle.Powertrain.CombustionEngine.Speed": rpm * ice,
            "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature": self.coolant_c * ice,
            "Vehicle.LowVoltageBattery.CurrentVoltage": np.where(self.is_ev, 13.8, 14.2)
            + rng.normal(0, 0.05, n),
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": self.soc_pct * ev,
            "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": tire_kpa[0],
            "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure": tire_kpa[1],
            "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure": tire_kpa[2],
            "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure": tire_kpa[3],
            "Vehicle.TraveledDistance": self.odometer_km.copy(),
            "Vehicle.Acceleration.Longitudinal": accel_long + rng.normal(0, 0.05, n),
            "Vehicle.Acceleration.Lateral": mean_speed * np.radians(yaw_rate) + rng.normal(0, 0.05, n),
            "Vehicle.Acceleration.Vertical": rng.normal(0, 0.3, n) * moving,
            "Vehicle.ADAS.ABS.IsEngaged": hard_brake.astype(float),
            "Vehicle.ADAS.TCS.IsEngaged": np.zeros(n),
            "Vehicle.Powertrain.FuelSystem.RelativeLevel": self.fuel_pct * ice,
        }
