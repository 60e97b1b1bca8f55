"""The detector suite: every telemetry fault detector the job runs, with its signals, window and
thresholds version, in one list. Adding a detector is adding it here.

Trouble codes and the fleet firmware test are not telemetry detectors; the job runs them itself
(`analytics.job`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors import battery, brakes, charging, coolant, sensors, tyres
from analytics.findings import Finding
from analytics.job import TelemetryDetector

Detect = Callable[[TelemetryColumns, VehicleParams], list[Finding]]
# Rows per piece a detector runs on (whole vehicles): large enough that the numpy calls' fixed cost
# is small, small enough that their temporaries stay in the CPU's caches and their blocks are not
# mapped fresh from the OS (and page-faulted in) on every call. The wear detectors hold the four
# wheels in each array, so their pieces are smaller (`WHEEL_PIECE_SHARE`).
CHUNK_ROWS = 50_000
WHEEL_PIECE_SHARE = 0.5


def _spec(fault: str, module: ModuleType, detect: Detect, share: float = 1.0) -> TelemetryDetector:
    """A detector module's function with the module's signals, window and thresholds version, run
    on pieces of `share` x CHUNK_ROWS rows."""
    signals, window_s = tuple(module.SIGNALS), float(module.WINDOW_S)
    return TelemetryDetector(fault, signals, window_s, _in_chunks(detect, share), module.THRESHOLDS_VERSION)


def _in_chunks(detect: Detect, share: float) -> Detect:
    """`detect` run over the columns piece by piece (`TelemetryColumns.vehicle_chunks`)."""

    def run(cols: TelemetryColumns, params: VehicleParams) -> list[Finding]:
        out: list[Finding] = []
        for piece in cols.vehicle_chunks(max(int(CHUNK_ROWS * share), 1)):
            out += detect(piece, params)
        return out

    return run


def default_detectors() -> tuple[TelemetryDetector, ...]:
    return (
        _spec("battery_12v_failing", battery, battery.detect_battery_12v_failing),
        _spec("charging_fault", charging, charging.detect_charging_fault),
        _spec("thermostat_stuck", coolant, coolant.detect_thermostat_stuck),
        _spec("sensor_stuck", sensors, sensors.detect_sensor_stuck),
        _spec("sensor_dropout", sensors, sensors.detect_sensor_dropout),
        _spec(tyres.FAULT, tyres, tyres.detect_tyre_slow_leak, WHEEL_PIECE_SHARE),
        _spec(brakes.FAULT, brakes, brakes.detect_brake_pad_wear, WHEEL_PIECE_SHARE),
    )
