"""A simulated car for the demo, the benchmark and tests: plausible, noisy, quantised signals.

Owns: values for every catalogue signal as a function of time and a seed. Each signal is quantised
to the resolution a real ECU sends it with (the DBC scale factor, e.g. 0.01 km/h for speed, 1 °C
for coolant over OBD), because real telemetry is quantised and that matters for compression
figures. Noise is added before quantisation so consecutive samples really differ.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from contract.signals import BY_PATH
from edge_agent.sources.base import RawReading, Source

_CORNERS = {
    "fl": "Row1.Wheel.Left",
    "fr": "Row1.Wheel.Right",
    "rl": "Row2.Wheel.Left",
    "rr": "Row2.Wheel.Right",
}
# path -> (resolution, noise standard deviation); units as in the catalogue
RESOLUTION_AND_NOISE: dict[str, tuple[float, float]] = {
    "Vehicle.Speed": (0.01, 0.15),
    "Vehicle.CurrentLocation.Latitude": (1e-7, 2e-6),
    "Vehicle.CurrentLocation.Longitude": (1e-7, 2e-6),
    "Vehicle.CurrentLocation.Heading": (0.01, 0.5),
    "Vehicle.Powertrain.CombustionEngine.Speed": (0.25, 15.0),
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature": (1.0, 0.3),
    "Vehicle.LowVoltageBattery.CurrentVoltage": (0.01, 0.02),
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": (0.1, 0.02),
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": (1.0, 0.4),
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure": (1.0, 0.4),
    "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure": (1.0, 0.4),
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure": (1.0, 0.4),
    "Vehicle.TraveledDistance": (0.001, 0.0),
    "Vehicle.Acceleration.Longitudinal": (0.01, 0.15),
    "Vehicle.Acceleration.Lateral": (0.01, 0.15),
    "Vehicle.Acceleration.Vertical": (0.01, 0.3),
    "Vehicle.ADAS.ABS.IsEngaged": (1.0, 0.0),
    "Vehicle.ADAS.TCS.IsEngaged": (1.0, 0.0),
    "Vehicle.Powertrain.FuelSystem.RelativeLevel": (100 / 255, 0.3),
    "Vehicle.CurrentLocation.Altitude": (0.1, 0.5),
    "Vehicle.CurrentLocation.HorizontalAccuracy": (0.1, 0.3),
    "Vehicle.AngularVelocity.Yaw": (0.01, 0.2),
    "Vehicle.AngularVelocity.Pitch": (0.01, 0.1),
    "Vehicle.AngularVelocity.Roll": (0.01, 0.1),
    "Vehicle.ADAS.ESC.IsEngaged": (1.0, 0.0),
    "Vehicle.Powertrain.TractionBattery.CurrentVoltage": (0.1, 0.3),
    "Vehicle.Powertrain.TractionBattery.CurrentCurrent": (0.1, 1.0),
    **{f"Vehicle.Chassis.Axle.{c}.Brake.PadWear": (1.0, 0.0) for c in _CORNERS.values()},
    **{f"Vehicle.Chassis.Axle.{c}.Tire.Temperature": (1.0, 0.2) for c in _CORNERS.values()},
    **{f"Vehicle.Chassis.Axle.{c}.Speed": (0.01, 0.15) for c in _CORNERS.values()},
    "Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature": (1.0, 0.3),
    "Vehicle.Powertrain.CombustionEngine.MAF": (0.01, 0.5),
    "Vehicle.Powertrain.CombustionEngine.MAP": (1.0, 1.0),
    "Vehicle.Powertrain.CombustionEngine.Torque": (1.0, 3.0),
    "Vehicle.Powertrain.FuelSystem.InstantConsumption": (0.1, 0.3),
    "Vehicle.Exterior.AirTemperature": (0.5, 0.05),
    "Vehicle.Chassis.SteeringWheel.Angle": (0.1, 0.5),
    "Vehicle.Chassis.Accelerator.PedalPosition": (100 / 255, 0.5),
    "Vehicle.Chassis.Brake.PedalPosition": (100 / 255, 0.0),
    "Vehicle.Powertrain.Transmission.CurrentGear": (1.0, 0.0),
    "Vehicle.Chassis.ParkingBrake.IsEngaged": (1.0, 0.0),
}


def drive_values(t_s: float, noise: np.ndarray, hard_brake_at_s: float | None = None) -> dict[str, float]:
    """Noise-free driving state at `t_s` plus `noise` (one standard normal per signal, in
    RESOLUTION_AND_NOISE order), quantised. Pure: the same inputs give the same values."""
    speed = 60 + 30 * math.sin(t_s / 47) + 10 * math.sin(t_s / 7.3)
    accel = (30 / 47 * math.cos(t_s / 47) + 10 / 7.3 * math.cos(t_s / 7.3)) / 3.6
    braking = hard_brake_at_s is not None and 0 <= t_s - hard_brake_at_s < 1.5
    if braking:
        accel = -5.5
    heading = (90 + 20 * math.sin(t_s / 120)) % 360
    base = {
        "Vehicle.Speed": max(speed, 0.0),
        "Vehicle.CurrentLocation.Latitude": 48.137 + 0.0001 * t_s * math.cos(math.radians(heading)),
        "Vehicle.CurrentLocation.Longitude": 11.575 + 0.0001 * t_s * math.sin(math.radians(heading)),
        "Vehicle.CurrentLocation.Heading": heading,
        "Vehicle.Powertrain.CombustionEngine.Speed": 800 + speed * 28,
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature": 90 + 2 * math.sin(t_s / 300),
        "Vehicle.LowVoltageBattery.CurrentVoltage": 14.1,
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 80 - t_s / 600,
        "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": 230,
        "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure": 231,
        "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure": 225,
        "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure": 226,
        "Vehicle.TraveledDistance": 12345.0 + t_s * 60 / 3600,
        "Vehicle.Acceleration.Longitudinal": accel,
        "Vehicle.Acceleration.Lateral": 0.8 * math.sin(t_s / 5.1),
        "Vehicle.Acceleration.Vertical": 0.0,
        "Vehicle.ADAS.ABS.IsEngaged": 1.0 if braking else 0.0,
        "Vehicle.ADAS.TCS.IsEngaged": 0.0,
        "Vehicle.Powertrain.FuelSystem.RelativeLevel": 70 - t_s / 900,
        "Vehicle.CurrentLocation.Altitude": 520 + 5 * math.sin(t_s / 200),
        "Vehicle.CurrentLocation.HorizontalAccuracy": 3.0,
        "Vehicle.AngularVelocity.Yaw": 10 * math.sin(t_s / 5.1),
        "Vehicle.AngularVelocity.Pitch": 0.0,
        "Vehicle.AngularVelocity.Roll": 0.0,
        "Vehicle.ADAS.ESC.IsEngaged": 0.0,
        "Vehicle.Powertrain.TractionBattery.CurrentVoltage": 400 - t_s / 600,
        "Vehicle.Powertrain.TractionBattery.CurrentCurrent": 50 + 30 * math.sin(t_s / 13),
        **{
            f"Vehicle.Chassis.Axle.{c}.Brake.PadWear": w
            for c, w in zip(_CORNERS.values(), (20, 21, 15, 16), strict=True)
        },
        **{f"Vehicle.Chassis.Axle.{c}.Tire.Temperature": 35.0 for c in _CORNERS.values()},
        **{f"Vehicle.Chassis.Axle.{c}.Speed": max(speed, 0.0) for c in _CORNERS.values()},
        "Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature": 95.0,
        "Vehicle.Powertrain.CombustionEngine.MAF": 5 + 0.2 * speed,
        "Vehicle.Powertrain.CombustionEngine.MAP": 35 + 0.3 * speed,
        "Vehicle.Powertrain.CombustionEngine.Torque": 100 + 40 * accel,
        "Vehicle.Powertrain.FuelSystem.InstantConsumption": 6 + accel,
        "Vehicle.Exterior.AirTemperature": 18.0,
        "Vehicle.Chassis.SteeringWheel.Angle": 30 * math.sin(t_s / 5.1),
        "Vehicle.Chassis.Accelerator.PedalPosition": max(0.0, 20 + 10 * accel),
        "Vehicle.Chassis.Brake.PedalPosition": 60.0 if braking else 0.0,
        "Vehicle.Powertrain.Transmission.CurrentGear": float(min(6, 1 + int(max(speed, 0) // 20))),
        "Vehicle.Chassis.ParkingBrake.IsEngaged": 0.0,
    }
    out = {}
    for k, (path, (resolution, sigma)) in enumerate(RESOLUTION_AND_NOISE.items()):
        value = base[path] + sigma * float(noise[k])
        out[path] = round(value / resolution) * resolution
    return out


# A parked car: at a standstill, engine off, parking brake on, the 12 V battery resting.
PARKED = {
    "Vehicle.Speed": 0.0,
    **{f"Vehicle.Chassis.Axle.{c}.Speed": 0.0 for c in _CORNERS.values()},
    "Vehicle.Powertrain.CombustionEngine.Speed": 0.0,
    "Vehicle.Powertrain.CombustionEngine.MAF": 0.0,
    "Vehicle.Powertrain.CombustionEngine.Torque": 0.0,
    "Vehicle.Powertrain.FuelSystem.InstantConsumption": 0.0,
    "Vehicle.Powertrain.TractionBattery.CurrentCurrent": 0.0,
    "Vehicle.Acceleration.Longitudinal": 0.0,
    "Vehicle.Acceleration.Lateral": 0.0,
    "Vehicle.AngularVelocity.Yaw": 0.0,
    "Vehicle.Chassis.SteeringWheel.Angle": 0.0,
    "Vehicle.Chassis.Accelerator.PedalPosition": 0.0,
    "Vehicle.Powertrain.Transmission.CurrentGear": 0.0,
    "Vehicle.Chassis.ParkingBrake.IsEngaged": 1.0,
    "Vehicle.LowVoltageBattery.CurrentVoltage": 12.6,
}


class SimulatedSource(Source):
    """Every catalogue signal, seeded. `hard_brake_at_s` (seconds after start) injects a hard brake
    (−5.5 m/s² for 1.5 s, ABS engaged) so trigger campaigns can be exercised. `parked_at_s`: from
    then on the car is parked (`PARKED`: speed 0, engine off), e.g. to let an OTA update install."""

    kind = "simulated"

    def __init__(
        self,
        *,
        seed: int = 0,
        hard_brake_at_s: float | None = None,
        dtcs_at_s: dict[float, list[str]] | None = None,
        parked_at_s: float | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__(clock_ns=clock_ns)
        self._rng = np.random.default_rng(seed)
        self._start_ns: int | None = None
        self._hard_brake_at_s = hard_brake_at_s
        self._parked_at_s = parked_at_s
        self._dtcs_at_s = sorted((dtcs_at_s or {}).items())

    @property
    def available_paths(self) -> frozenset[str]:
        return frozenset(RESOLUTION_AND_NOISE).intersection(BY_PATH)

    def _read_values(self, paths: list[str], timeout_s: float) -> RawReading:
        now = self._clock_ns()
        if self._start_ns is None:
            self._start_ns = now
        t_s = (now - self._start_ns) / 1e9
        values = drive_values(
            t_s, self._rng.standard_normal(len(RESOLUTION_AND_NOISE)), self._hard_brake_at_s
        )
        if self._parked_at_s is not None and t_s >= self._parked_at_s:
            values.update(PARKED)
        dtcs = None
        while self._dtcs_at_s and self._dtcs_at_s[0][0] <= t_s:
            dtcs = frozenset(self._dtcs_at_s.pop(0)[1])
        return RawReading({p: values[p] for p in paths if p in values}, dtcs)
