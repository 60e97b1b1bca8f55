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
)

BY_ID: MappingProxyType[int, Signal] = MappingProxyType({s.signal_id: s for s in SIGNALS})
BY_PATH: MappingProxyType[str, Signal] = MappingProxyType({s.vss_path: s for s in SIGNALS})


def signal_by_path(vss_path: str) -> Signal:
    """Look a signal up by VSS path. Raises KeyError for a path outside the catalogue."""
    return BY_PATH[vss_path]


def _check_catalogue() -> None:
    ids = [s.signal_id for s in SIGNALS]
    columns = [s.column for s in SIGNALS]
    if len(set(ids)) != len(ids) or len(set(columns)) != len(columns) or len(BY_PATH) != len(SIGNALS):
        raise RuntimeError("signal catalogue has duplicate ids, columns or paths")
    if any(not 0 < i < 2**16 for i in ids):
        raise RuntimeError("signal ids must fit in u16 and be non-zero")


_check_catalogue()
