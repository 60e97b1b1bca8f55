"""Per-trip and per-vehicle driving scores: what each trip did (distance, time, harsh events,
speeding, night driving) and a 0-100 score from documented weights (docs/driving-score.md).

Owns: `score_trips`, which runs trips, events and the summary over columns, and `vehicle_scores`,
the distance-weighted roll-up. Speed limits come in as an array per row (from
`roads.snap_speed_limit_kmh`, NaN where unknown) and local time as a UTC offset per vehicle, so the
kernel does no I/O. Every time share weighs a row by the time to the next row of its trip, at most
`ROW_MAX_S`, so a gap in the data inside a trip counts for little.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from analytics.columns import TelemetryColumns
from analytics.driving.config import G_MS2, DrivingThresholds
from analytics.driving.events import harsh_events
from analytics.driving.trips import NS_PER_S, Trips, find_trips

SPEED = "Vehicle.Speed"
ENGINE_RPM = "Vehicle.Powertrain.CombustionEngine.Speed"
ODOMETER = "Vehicle.TraveledDistance"
ACCEL_LONG = "Vehicle.Acceleration.Longitudinal"
ACCEL_LAT = "Vehicle.Acceleration.Lateral"
LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
SIGNALS: tuple[str, ...] = (SPEED, ENGINE_RPM, ODOMETER, ACCEL_LONG, ACCEL_LAT, LAT, LON, HEADING)
ROW_MAX_S = 5.0
DEFAULT_THRESHOLDS = DrivingThresholds()
COMPONENTS = ("braking", "acceleration", "cornering", "speeding", "high_risk_time", "night")


@dataclass(frozen=True)
class TripTable:
    """One entry per trip, in (vehicle, start) order. `speeding_share` is NaN when no limit was
    known on the trip; `penalty_*` are the points each behaviour cost (score = 100 - their sum)."""

    vehicle: np.ndarray  # int32: index into the columns' vehicle_ids
    start_ns: np.ndarray
    end_ns: np.ndarray
    distance_km: np.ndarray
    duration_s: np.ndarray
    harsh_brakes: np.ndarray
    harsh_accelerations: np.ndarray
    harsh_corners: np.ndarray
    limit_known_s: np.ndarray
    speeding_s: np.ndarray
    night_s: np.ndarray
    high_risk_s: np.ndarray
    penalty_braking: np.ndarray
    penalty_acceleration: np.ndarray
    penalty_cornering: np.ndarray
    penalty_speeding: np.ndarray
    penalty_high_risk_time: np.ndarray
    penalty_night: np.ndarray
    score: np.ndarray

    @property
    def n(self) -> int:
        return int(self.start_ns.shape[0])

    def select(self, keep: np.ndarray) -> TripTable:
        return TripTable(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def speeding_share(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.limit_known_s > 0, self.speeding_s / self.limit_known_s, np.nan)


def score_trips(
    cols: TelemetryColumns,
    limit_kmh: np.ndarray,
    utc_offset_s: np.ndarray,
    th: DrivingThresholds = DEFAULT_THRESHOLDS,
) -> tuple[Trips, TripTable]:
    """The trips of `cols` (shorter than `min_distance_km` dropped) and their table. `limit_kmh`:
    the road's limit at each row (NaN unknown); `utc_offset_s`: each vehicle's offset of local time."""
    vehicle, ts = cols.vehicle, cols.ts_ns
    speed = cols.column(SPEED)
    trips = find_trips(vehicle, ts, speed, cols.column(ENGINE_RPM), th.trips)
    along, across = cols.column(ACCEL_LONG) / G_MS2, np.abs(cols.column(ACCEL_LAT)) / G_MS2
    counts = [
        _count_per_trip(trips, harsh_events(vehicle, ts, value, rule))
        for value, rule in ((-along, th.braking), (along, th.acceleration), (across, th.cornering))
    ]
    rt = trips.row_trip
    inside = rt >= 0
    step = np.zeros(ts.shape[0])
    if ts.shape[0] > 1:
        nxt = np.minimum(np.diff(ts) / NS_PER_S, ROW_MAX_S)
        step[:-1] = np.where(rt[1:] == rt[:-1], nxt, 0.0)
    step = np.where(inside, step, 0.0)
    moving = speed > th.trips.moving_kmh
    tolerance = np.maximum(th.speeding_tolerance_kmh, th.speeding_tolerance_share * limit_kmh)
    known = moving & np.isfinite(limit_kmh)
    speeding = known & (speed > limit_kmh + tolerance)
    offset = utc_offset_s[vehicle] if vehicle.size else np.zeros(0)
    hour = ((ts / NS_PER_S + offset) / 3600.0) % 24.0
    high_risk = _in_hours(hour, th.high_risk_hours)
    night = _in_hours(hour, th.night_hours)

    def per_trip(weights: np.ndarray) -> np.ndarray:
        return np.bincount(rt[inside], weights=weights[inside], minlength=trips.n)

    distance = _distance_km(cols, trips, speed, step)
    table_raw = dict(
        vehicle=trips.vehicle,
        start_ns=trips.start_ns,
        end_ns=trips.end_ns,
        distance_km=distance,
        duration_s=(trips.end_ns - trips.start_ns) / NS_PER_S,
        harsh_brakes=counts[0],
        harsh_accelerations=counts[1],
        harsh_corners=counts[2],
        limit_known_s=per_trip(np.where(known, step, 0.0)),
        speeding_s=per_trip(np.where(speeding, step, 0.0)),
        night_s=per_trip(np.where(night, step, 0.0)),
        high_risk_s=per_trip(np.where(high_risk, step, 0.0)),
    )
    keep = distance >= th.trips.min_distance_km
    trips = trips.select(keep)
    table = _with_score({k: v[keep] for k, v in table_raw.items()}, th)
    return trips, table


def _count_per_trip(trips: Trips, event_rows: np.ndarray) -> np.ndarray:
    t = trips.row_trip[event_rows]
    return np.bincount(t[t >= 0], minlength=trips.n).astype(np.int64)


def _in_hours(hour: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    lo, hi = band
    return (hour >= lo) & (hour < hi) if lo <= hi else (hour >= lo) | (hour < hi)


def _distance_km(
    cols: TelemetryColumns, trips: Trips, speed_kmh: np.ndarray, step_s: np.ndarray
) -> np.ndarray:
    """The odometer's advance over each trip where it reported at both ends of it; else the speed
    integrated over the trip's rows."""
    odo = cols.column(ODOMETER)
    integrated = np.bincount(
        trips.row_trip[trips.row_trip >= 0],
        weights=(np.nan_to_num(speed_kmh) * step_s / 3600.0)[trips.row_trip >= 0],
        minlength=trips.n,
    )
    if trips.n == 0:
        return integrated
    lo, hi = _reduce_rows(np.fmin, odo, trips), _reduce_rows(np.fmax, odo, trips)
    by_odo = hi - lo
    return np.where(np.isfinite(by_odo) & (by_odo >= 0), by_odo, integrated)


def _reduce_rows(ufunc: Callable[..., np.ndarray], values: np.ndarray, trips: Trips) -> np.ndarray:
    """`ufunc` reduced over each trip's rows (they are contiguous)."""
    padded = np.append(values, np.nan)
    idx = np.empty(2 * trips.n, dtype=np.int64)
    idx[0::2], idx[1::2] = trips.start_row, trips.end_row + 1
    return ufunc.reduceat(padded, idx)[0::2]  # type: ignore[attr-defined,no-any-return]


def _with_score(raw: dict[str, np.ndarray], th: DrivingThresholds) -> TripTable:
    w = th.weights
    per_100km = 100.0 / np.maximum(raw["distance_km"], th.trips.min_distance_km)
    duration = np.maximum(raw["duration_s"], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        speeding_share = np.where(raw["limit_known_s"] > 0, raw["speeding_s"] / raw["limit_known_s"], 0.0)

    def cost(weight: float, rate: np.ndarray, full: float) -> np.ndarray:
        return weight * np.minimum(rate / full, 1.0)

    pen = {
        "penalty_braking": cost(w.braking, raw["harsh_brakes"] * per_100km, w.full_braking_per_100km),
        "penalty_acceleration": cost(
            w.acceleration, raw["harsh_accelerations"] * per_100km, w.full_acceleration_per_100km
        ),
        "penalty_cornering": cost(w.cornering, raw["harsh_corners"] * per_100km, w.full_cornering_per_100km),
        "penalty_speeding": cost(w.speeding, speeding_share, w.full_speeding_share),
        "penalty_high_risk_time": cost(
            w.high_risk_time, raw["high_risk_s"] / duration, w.full_high_risk_share
        ),
        "penalty_night": cost(w.night, raw["night_s"] / duration, w.full_night_share),
    }
    score = 100.0 - sum(pen.values(), np.zeros(raw["distance_km"].shape[0]))
    return TripTable(**raw, **pen, score=score)


@dataclass(frozen=True)
class VehicleScores:
    """Per vehicle (index into the columns' vehicle_ids): trips, distance, and the trips' score and
    penalties weighted by distance; NaN for a vehicle without trips."""

    trips: np.ndarray
    distance_km: np.ndarray
    duration_s: np.ndarray
    score: np.ndarray
    harsh_brakes_per_100km: np.ndarray
    harsh_accelerations_per_100km: np.ndarray
    harsh_corners_per_100km: np.ndarray
    speeding_share: np.ndarray
    night_share: np.ndarray


def vehicle_scores(table: TripTable, n_vehicles: int) -> VehicleScores:
    v, d = table.vehicle, table.distance_km

    def total(x: np.ndarray) -> np.ndarray:
        return np.bincount(v, weights=x, minlength=n_vehicles)

    dist, dur = total(d), total(table.duration_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        per100 = np.where(dist > 0, 100.0 / dist, np.nan)
        known = total(table.limit_known_s)
        return VehicleScores(
            trips=np.bincount(v, minlength=n_vehicles),
            distance_km=dist,
            duration_s=dur,
            score=np.where(dist > 0, total(table.score * d) / dist, np.nan),
            harsh_brakes_per_100km=total(table.harsh_brakes.astype(float)) * per100,
            harsh_accelerations_per_100km=total(table.harsh_accelerations.astype(float)) * per100,
            harsh_corners_per_100km=total(table.harsh_corners.astype(float)) * per100,
            speeding_share=np.where(known > 0, total(table.speeding_s) / known, np.nan),
            night_share=np.where(dur > 0, total(table.night_s) / dur, np.nan),
        )
