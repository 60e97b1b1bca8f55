"""The signal catalogue: every signal fleetpulse knows, named by its COVESA VSS path.

Owns: VSS path, unit, wire type, valid range, stable numeric id and storage column of each signal.
Leaves to others: how a signal is read in the car (edge_agent) and how it is stored (ingest).

Pinned release: COVESA VSS 5.1 (odometer `Vehicle.TraveledDistance` is a km float there; 6.0
changes it to metres as uint32, so moving to 6.0 is a new catalogue version, not an edit).

Signal ids are part of the wire format: never renumber or reuse one, only append.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

VSS_RELEASE = "5.1"


class WireType(enum.IntEnum):
    """How a signal's values travel on the wire (the code is the wire's dtype byte)."""

    FLOAT32 = 1
    FLOAT64 = 2
    BOOL = 3

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype({1: "<f4", 2: "<f8", 3: "u1"}[int(self)])

    @property
    def pg_type(self) -> str:
        return {1: "real", 2: "double precision", 3: "boolean"}[int(self)]


@dataclass(frozen=True, slots=True)
class Signal:
    """One catalogue entry. `column` is the storage column; `min_value`/`max_value` bound valid data."""

    signal_id: int
    vss_path: str
    unit: str
    wire_type: WireType
    min_value: float
    max_value: float
    column: str
    description: str


_F32, _F64, _BOOL = WireType.FLOAT32, WireType.FLOAT64, WireType.BOOL
_TYRE = "Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Tire.Pressure"
_TYRE_TEMP = "Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Tire.Temperature"
_PAD = "Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Brake.PadWear"
_WHEEL_SPEED = "Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Speed"

SIGNALS: tuple[Signal, ...] = (
    Signal(1, "Vehicle.Speed", "km/h", _F32, 0, 400, "speed_kmh", "Vehicle speed"),
    Signal(2, "Vehicle.CurrentLocation.Latitude", "deg", _F64, -90, 90, "latitude_deg", "WGS84 latitude"),
    Signal(
        3, "Vehicle.CurrentLocation.Longitude", "deg", _F64, -180, 180, "longitude_deg", "WGS84 longitude"
    ),
    Signal(
        4,
        "Vehicle.CurrentLocation.Heading",
        "deg",
        _F32,
        0,
        360,
        "heading_deg",
        "Course over ground, clockwise from true north",
    ),
    Signal(
        5,
        "Vehicle.Powertrain.CombustionEngine.Speed",
        "rpm",
        _F32,
        0,
        20000,
        "engine_speed_rpm",
        "Engine crankshaft speed",
    ),
    Signal(
        6,
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
        "celsius",
        _F32,
        -50,
        200,
        "coolant_temp_c",
        "Engine coolant temperature",
    ),
    Signal(
        7,
        "Vehicle.LowVoltageBattery.CurrentVoltage",
        "V",
        _F32,
        0,
        60,
        "battery_12v_v",
        "12 V (low-voltage) battery voltage",
    ),
    Signal(
        8,
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
        "percent",
        _F32,
        0,
        100,
        "traction_soc_pct",
        "Traction battery state of charge",
    ),
    Signal(9, _TYRE.format(row=1, side="Left"), "kPa", _F32, 0, 1000, "tire_fl_kpa", "Front-left tyre"),
    Signal(10, _TYRE.format(row=1, side="Right"), "kPa", _F32, 0, 1000, "tire_fr_kpa", "Front-right tyre"),
    Signal(11, _TYRE.format(row=2, side="Left"), "kPa", _F32, 0, 1000, "tire_rl_kpa", "Rear-left tyre"),
    Signal(12, _TYRE.format(row=2, side="Right"), "kPa", _F32, 0, 1000, "tire_rr_kpa", "Rear-right tyre"),
    Signal(13, "Vehicle.TraveledDistance", "km", _F64, 0, 10_000_000, "odometer_km", "Odometer"),
    Signal(
        14,
        "Vehicle.Acceleration.Longitudinal",
        "m/s^2",
        _F32,
        -200,
        200,
        "accel_long_ms2",
        "Longitudinal acceleration, positive forward",
    ),
    Signal(
        15,
        "Vehicle.Acceleration.Lateral",
        "m/s^2",
        _F32,
        -200,
        200,
        "accel_lat_ms2",
        "Lateral acceleration, positive left",
    ),
    Signal(
        16,
        "Vehicle.Acceleration.Vertical",
        "m/s^2",
        _F32,
        -200,
        200,
        "accel_vert_ms2",
        "Vertical acceleration, positive up, gravity removed",
    ),
    Signal(17, "Vehicle.ADAS.ABS.IsEngaged", "bool", _BOOL, 0, 1, "abs_engaged", "ABS intervening"),
    Signal(
        18, "Vehicle.ADAS.TCS.IsEngaged", "bool", _BOOL, 0, 1, "tcs_engaged", "Traction control intervening"
    ),
    Signal(
        19,
        "Vehicle.Powertrain.FuelSystem.RelativeLevel",
        "percent",
        _F32,
        0,
        100,
        "fuel_level_pct",
        "Fuel tank level",
    ),
    Signal(20, "Vehicle.CurrentLocation.Altitude", "m", _F32, -500, 10000, "altitude_m", "Altitude (WGS84)"),
    Signal(
        21,
        "Vehicle.CurrentLocation.HorizontalAccuracy",
        "m",
        _F32,
        0,
        10000,
        "gnss_accuracy_m",
        "GNSS horizontal accuracy",
    ),
    Signal(22, "Vehicle.AngularVelocity.Yaw", "degrees/s", _F32, -1000, 1000, "yaw_rate_dps", "Yaw rate"),
    Signal(
        23, "Vehicle.AngularVelocity.Pitch", "degrees/s", _F32, -1000, 1000, "pitch_rate_dps", "Pitch rate"
    ),
    Signal(24, "Vehicle.AngularVelocity.Roll", "degrees/s", _F32, -1000, 1000, "roll_rate_dps", "Roll rate"),
    Signal(
        25, "Vehicle.ADAS.ESC.IsEngaged", "bool", _BOOL, 0, 1, "esc_engaged", "Stability control intervening"
    ),
    Signal(
        26,
        "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
        "V",
        _F32,
        0,
        1500,
        "traction_voltage_v",
        "Traction battery voltage",
    ),
    Signal(
        27,
        "Vehicle.Powertrain.TractionBattery.CurrentCurrent",
        "A",
        _F32,
        -2000,
        2000,
        "traction_current_a",
        "Traction battery current, positive = charging",
    ),
    Signal(
        28,
        _PAD.format(row=1, side="Left"),
        "percent",
        _F32,
        0,
        100,
        "pad_wear_fl_pct",
        "Front-left brake pad wear, 0 = new, 100 = worn",
    ),
    Signal(
        29,
        _PAD.format(row=1, side="Right"),
        "percent",
        _F32,
        0,
        100,
        "pad_wear_fr_pct",
        "Front-right brake pad wear",
    ),
    Signal(
        30,
        _PAD.format(row=2, side="Left"),
        "percent",
        _F32,
        0,
        100,
        "pad_wear_rl_pct",
        "Rear-left brake pad wear",
    ),
    Signal(
        31,
        _PAD.format(row=2, side="Right"),
        "percent",
        _F32,
        0,
        100,
        "pad_wear_rr_pct",
        "Rear-right brake pad wear",
    ),
    Signal(
        32,
        _TYRE_TEMP.format(row=1, side="Left"),
        "celsius",
        _F32,
        -50,
        200,
        "tire_fl_temp_c",
        "Front-left tyre temperature",
    ),
    Signal(
        33,
        _TYRE_TEMP.format(row=1, side="Right"),
        "celsius",
        _F32,
        -50,
        200,
        "tire_fr_temp_c",
        "Front-right tyre temperature",
    ),
    Signal(
        34,
        _TYRE_TEMP.format(row=2, side="Left"),
        "celsius",
        _F32,
        -50,
        200,
        "tire_rl_temp_c",
        "Rear-left tyre temperature",
    ),
    Signal(
        35,
        _TYRE_TEMP.format(row=2, side="Right"),
        "celsius",
        _F32,
        -50,
        200,
        "tire_rr_temp_c",
        "Rear-right tyre temperature",
    ),
    Signal(
        36,
        _WHEEL_SPEED.format(row=1, side="Left"),
        "km/h",
        _F32,
        -100,
        400,
        "wheel_speed_fl_kmh",
        "Front-left wheel speed",
    ),
    Signal(
        37,
        _WHEEL_SPEED.format(row=1, side="Right"),
        "km/h",
        _F32,
        -100,
        400,
        "wheel_speed_fr_kmh",
        "Front-right wheel speed",
    ),
    Signal(
        38,
        _WHEEL_SPEED.format(row=2, side="Left"),
        "km/h",
        _F32,
        -100,
        400,
        "wheel_speed_rl_kmh",
        "Rear-left wheel speed",
    ),
    Signal(
        39,
        _WHEEL_SPEED.format(row=2, side="Right"),
        "km/h",
        _F32,
        -100,
        400,
        "wheel_speed_rr_kmh",
        "Rear-right wheel speed",
    ),
    Signal(
        40,
        "Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature",
        "celsius",
        _F32,
        -50,
        200,
        "oil_temp_c",
        "Engine oil temperature",
    ),
    Signal(41, "Vehicle.Powertrain.CombustionEngine.MAF", "g/s", _F32, 0, 3000, "maf_gs", "Mass air flow"),
    Signal(
        42,
        "Vehicle.Powertrain.CombustionEngine.MAP",
        "kPa",
        _F32,
        0,
        500,
        "map_kpa",
        "Manifold absolute pressure",
    ),
    Signal(
        43,
        "Vehicle.Powertrain.CombustionEngine.Torque",
        "Nm",
        _F32,
        -5000,
        10000,
        "engine_torque_nm",
        "Engine torque",
    ),
    Signal(
        44,
        "Vehicle.Powertrain.FuelSystem.InstantConsumption",
        "l/100km",
        _F32,
        0,
        1000,
        "fuel_consumption_l100km",
        "Instant fuel consumption",
    ),
    Signal(
        45,
        "Vehicle.Exterior.AirTemperature",
        "celsius",
        _F32,
        -60,
        80,
        "outside_air_temp_c",
        "Outside air temperature",
    ),
    Signal(
        46,
        "Vehicle.Chassis.SteeringWheel.Angle",
        "degrees",
        _F32,
        -1000,
        1000,
        "steering_angle_deg",
        "Steering wheel angle",
    ),
    Signal(
        47,
        "Vehicle.Chassis.Accelerator.PedalPosition",
        "percent",
        _F32,
        0,
        100,
        "accel_pedal_pct",
        "Accelerator pedal position",
    ),
    Signal(
        48,
        "Vehicle.Chassis.Brake.PedalPosition",
        "percent",
        _F32,
        0,
        100,
        "brake_pedal_pct",
        "Brake pedal position",
    ),
    Signal(
        49,
        "Vehicle.Powertrain.Transmission.CurrentGear",
        "gear",
        _F32,
        -10,
        20,
        "current_gear",
        "Current gear, negative = reverse (VSS int8, carried as float32)",
    ),
    Signal(
        50,
        "Vehicle.Chassis.ParkingBrake.IsEngaged",
        "bool",
        _BOOL,
        0,
        1,
        "parking_brake_engaged",
        "Parking brake engaged",
    ),
)

BY_ID: MappingProxyType[int, Signal] = MappingProxyType({s.signal_id: s for s in SIGNALS})
BY_PATH: MappingProxyType[str, Signal] = MappingProxyType({s.vss_path: s for s in SIGNALS})

WHEELS = ("FL", "FR", "RL", "RR")  # front-left, front-right, rear-left, rear-right
_WHEEL_NODES = ("Row1.Wheel.Left", "Row1.Wheel.Right", "Row2.Wheel.Left", "Row2.Wheel.Right")


def wheel_paths(leaf: str) -> tuple[str, ...]:
    """The four wheels' VSS paths of one wheel signal, in WHEELS order: `wheel_paths("Tire.Pressure")`.
    Raises KeyError for a leaf the catalogue does not hold."""
    paths = tuple(f"Vehicle.Chassis.Axle.{node}.{leaf}" for node in _WHEEL_NODES)
    for path in paths:
        BY_PATH[path]  # noqa: B018 (refuse a leaf outside the catalogue)
    return paths


def _check_catalogue() -> None:
    ids = [s.signal_id for s in SIGNALS]
    columns = [s.column for s in SIGNALS]
    if len(set(ids)) != len(ids) or len(set(columns)) != len(columns) or len(BY_PATH) != len(SIGNALS):
        raise RuntimeError("signal catalogue has duplicate ids, columns or paths")
    if any(not 0 < i < 2**16 for i in ids):
        raise RuntimeError("signal ids must fit in u16 and be non-zero")


_check_catalogue()
