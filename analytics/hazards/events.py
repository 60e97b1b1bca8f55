"""Candidate hazard events in each vehicle's drive: a pothole's vertical peak, a slippery road's
ABS or traction-control intervention, a harsh brake.

An event is placed at the middle of the interval it happened in (between the previous sample and
this one): the agent reports the peak or the flag over the interval, and placing it at the end
would put every event half an interval (7 m at 50 km/h) past the spot, on the side the vehicle
left towards. Every event is an onset (a jolt, an intervention or a brake that begins at this
sample): decided from this sample and the one before it only, so an incremental run that reads
the previous sample as context finds exactly the events one run over all the data finds.
Pure: numpy only, no per-sample loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.columns import TelemetryColumns
from analytics.hazards.config import DEFAULT, JUNCTION, KINDS, POTHOLE, SLIPPERY, HazardThresholds
from analytics.hazards.geo import ecef_m, latlon_of

SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
ACCEL_LONG = "Vehicle.Acceleration.Longitudinal"
ACCEL_VERT = "Vehicle.Acceleration.Vertical"
ABS = "Vehicle.ADAS.ABS.IsEngaged"
TCS = "Vehicle.ADAS.TCS.IsEngaged"
SIGNALS = (SPEED, LAT, LON, HEADING, ACCEL_LONG, ACCEL_VERT, ABS, TCS)
KIND_CODE = {k: i for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class HazardEvents:
    """Events sorted by (vehicle, ts). `kind` indexes `config.KINDS`; `magnitude` is the vertical
    peak (pothole), the deceleration (junction) or 1 (slippery), in m/s²."""

    vehicle: np.ndarray  # int32, index into the columns' vehicle_ids
    ts_ns: np.ndarray
    kind: np.ndarray  # int8
    lat: np.ndarray
    lon: np.ndarray
    heading_deg: np.ndarray
    speed_ms: np.ndarray
    magnitude: np.ndarray

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def take(self, rows: np.ndarray) -> HazardEvents:
        return HazardEvents(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def extract_events(cols: TelemetryColumns, th: HazardThresholds = DEFAULT) -> HazardEvents:
    """Every candidate event in the columns (rows sorted by vehicle and time)."""
    n = cols.n_rows
    lat, lon = cols.column(LAT), cols.column(LON)
    speed = cols.column(SPEED) / 3.6
    ax, z = cols.column(ACCEL_LONG), cols.column(ACCEL_VERT)
    abs_on, tcs_on = cols.column(ABS) > 0.5, cols.column(TCS) > 0.5
    prev = np.r_[False, (cols.vehicle[1:] == cols.vehicle[:-1])]
    dt_s = np.r_[np.inf, np.diff(cols.ts_ns) / 1e9]
    prev &= dt_s <= th.max_interval_s
    prev_speed = np.where(prev, np.r_[np.nan, speed[:-1]], np.nan)
    top_speed = np.fmax(speed, prev_speed)  # fastest the vehicle went in the interval
    placed = np.isfinite(lat) & np.isfinite(lon)
    with np.errstate(invalid="ignore"):
        # Pothole Patrol's high-pass, at its simplest: the change from the previous sample, so a
        # constant offset (a tilted mounting, gravity left in) is no peak.
        jolt = np.abs(z - np.where(prev, np.r_[np.nan, z[:-1]], np.nan))
        z_thr = np.maximum(th.pothole_z_min_ms2, th.pothole_z0_ms2 + th.pothole_z_per_speed_s * speed)
        not_a_lurch = ~(np.abs(ax) >= th.pothole_xz_ratio * jolt)  # x–z ratio
        pothole = _onsets((speed >= th.pothole_min_speed_ms) & (jolt >= z_thr) & not_a_lurch, prev)
        low_mu_abs = abs_on & (ax > -th.abs_low_mu_decel_ms2)
        slippery = (top_speed >= th.slip_min_speed_ms) & (_onsets(low_mu_abs, prev) | _onsets(tcs_on, prev))
        junction = _onsets(ax <= -th.harsh_brake_ms2, prev) & (top_speed >= th.harsh_min_speed_ms)
    kinds = np.full(n, -1, dtype=np.int8)
    kinds[junction & placed] = KIND_CODE[JUNCTION]
    kinds[slippery & placed] = KIND_CODE[SLIPPERY]
    kinds[pothole & placed] = KIND_CODE[POTHOLE]  # one kind per sample: the rarest evidence wins
    rows = np.flatnonzero(kinds >= 0)
    mid_lat, mid_lon = _interval_middles(lat, lon, prev, rows)
    magnitude = np.select(
        [kinds[rows] == KIND_CODE[POTHOLE], kinds[rows] == KIND_CODE[JUNCTION]],
        [jolt[rows], -ax[rows]],
        1.0,
    )
    return HazardEvents(
        cols.vehicle[rows].astype(np.int32),
        cols.ts_ns[rows],
        kinds[rows],
        mid_lat,
        mid_lon,
        cols.column(HEADING)[rows],
        top_speed[rows],
        magnitude,
    )


def _onsets(condition: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Rows where the condition starts: it holds here and did not at the previous sample (which
    must exist: the first sample of a drive cannot tell an onset from a condition that was already
    there, so a signal that never changes raises nothing, and a later run that re-reads this row as
    context decides the same)."""
    before = np.r_[False, condition[:-1]]
    return condition & prev & ~before


def _interval_middles(
    lat: np.ndarray, lon: np.ndarray, prev: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Middle of each row's interval (the row itself when it has no usable previous sample)."""
    here = ecef_m(lat[rows], lon[rows])
    back = rows - 1
    ok = prev[rows] & np.isfinite(lat[np.maximum(back, 0)]) & np.isfinite(lon[np.maximum(back, 0)])
    there = ecef_m(lat[np.maximum(back, 0)], lon[np.maximum(back, 0)])
    mid = np.where(ok[:, None], (here + there) / 2.0, here)
    return latlon_of(mid)
