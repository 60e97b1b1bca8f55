"""What the vehicle is doing at each row, as the detectors need it: is the engine turning, is the
vehicle moving. Each answer is corroborated so that one stuck or missing sensor cannot fake it.

Owns: `engine_turning` and `moving_rows`. Pure functions of columns.
"""

from __future__ import annotations

import numpy as np

from analytics.columns import TelemetryColumns
from analytics.detectors.persistence import NS_PER_S, previous_index

SPEED = "Vehicle.Speed"
ODOMETER = "Vehicle.TraveledDistance"
LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
M_PER_DEG = 111_320.0


def engine_turning(vehicle: np.ndarray, rpm: np.ndarray) -> np.ndarray:
    """Rows where a combustion engine turns: engine speed above 0 and different from its previous
    reading. A running engine's speed always wanders by more than the signal's resolution (0.25 rpm
    on OBD-II), so a reading repeated bit for bit is a sensor stuck on a value, not an engine; such
    rows are left unjudged rather than called running or stopped."""
    has = ~np.isnan(rpm)
    prev = previous_index(vehicle, has)
    return has & (rpm > 0) & ((prev < 0) | (rpm != rpm[np.maximum(prev, 0)]))


def moving_rows(cols: TelemetryColumns, moving_kmh: float) -> np.ndarray:
    """Rows where at least two of three witnesses say the vehicle moves: speed above `moving_kmh`,
    the odometer advancing since its previous reading, the GPS fix moving faster than `moving_kmh`
    since the previous fix."""
    vehicle, ts = cols.vehicle, cols.ts_ns
    by_speed = cols.column(SPEED) > moving_kmh
    odo = cols.column(ODOMETER)
    has_odo = ~np.isnan(odo)
    prev = previous_index(vehicle, has_odo)
    by_odo = has_odo & (prev >= 0) & (odo > odo.take(np.maximum(prev, 0)))
    # The GPS witness decides only where the other two disagree (a few percent of the rows).
    split = np.flatnonzero(by_speed != by_odo)
    lat, lon = cols.column(LAT), cols.column(LON)
    prev = previous_index(vehicle, ~np.isnan(lat) & ~np.isnan(lon)).take(split)
    p = np.maximum(prev, 0)
    lat_s, lon_s = lat.take(split), lon.take(split)
    dy_m = (lat_s - lat.take(p)) * M_PER_DEG
    dx_m = (lon_s - lon.take(p)) * M_PER_DEG * np.cos(np.radians(lat_s))
    dt_s = np.maximum((ts.take(split) - ts.take(p)) / NS_PER_S, 1e-3)
    has_fix = ~np.isnan(lat_s) & ~np.isnan(lon_s)
    moving = by_speed & by_odo
    moving[split] = has_fix & (prev >= 0) & (np.hypot(dx_m, dy_m) / dt_s * 3.6 > moving_kmh)
    return moving
