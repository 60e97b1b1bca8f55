"""The driving-score shell: for vehicles with new telemetry, re-read a trailing window, score its
trips and store them in `trips`.

Owns the order of one pass (`update_trips`, called by the analysis job for the vehicles and the
oldest new sample time it found):
1. each vehicle's window, from `trailing_s` before its oldest new sample: it must hold a whole trip
   and the parking gap before it (docs/driving-score.md);
2. the rows (binary COPY, `analytics.telemetry_reader`; or, when the caller already reads a wider
   window of the same vehicles, cut from its pieces by `TripWindow`, so the telemetry is read
   once), the roads near them (`road_segments`) and each vehicle's local time offset (its home
   service centre's time zone, else its owner's, else UTC);
3. the kernels (`analytics.driving`): limits by snapping, trips, events, scores;
4. one transaction: within each vehicle's region (see `analytics.driving.window`), the stored trips
   the window no longer has are deleted and the window's trips upserted by (vehicle, start), so a
   re-run writes the same rows and two runs over split data store what one run stores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import psycopg

from analytics import telemetry_reader as reader
from analytics.columns import TelemetryColumns
from analytics.driving.config import DrivingThresholds
from analytics.driving.roads import snap_speed_limit_kmh
from analytics.driving.score import HEADING, LAT, LON, SIGNALS, SPEED
from analytics.driving.window import window_trips
from analytics.road_store import load_road_index
from analytics.trip_store import store_trips
from contract.timestamps import datetime_of_ns


@dataclass(frozen=True)
class DrivingJobConfig:
    trailing_s: float = 6 * 3600.0
    snap_tolerance_m: float = 20.0
    thresholds: DrivingThresholds = field(default_factory=DrivingThresholds)


@dataclass
class DrivingReport:
    vehicles: int = 0
    rows_read: int = 0
    road_pieces: int = 0
    trips_written: int = 0
    trips_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class TripWindow:
    """The rows `update_trips` reads, taken from the pieces of a read that covers them (the same
    vehicles, in pieces of whole vehicles in order, from at least each one's window start on, with
    at least `SIGNALS`): each piece cut to the vehicles' windows and the driving signals, appended
    to buffers that grow by doubling (so the copying happens while the caller still reads, not
    after it). Pure; the caller hands it every piece, then `columns()` are the rows the window's
    own read returns."""

    def __init__(self, oldest_new_ns: Mapping[str, int], config: DrivingJobConfig | None = None) -> None:
        cfg = config or DrivingJobConfig()
        self.vehicles = tuple(sorted(oldest_new_ns))
        trailing_ns = int(cfg.trailing_s * 1e9)
        self.since_ns = {v: oldest_new_ns[v] - trailing_ns for v in self.vehicles}
        self._since = np.array([self.since_ns[v] for v in self.vehicles], dtype=np.int64)
        self.signals = SIGNALS
        self.complete = False  # set by the caller once every piece of its read is added
        self._rows = 0
        self._vehicle = np.empty(0, dtype=np.int32)
        self._ts_ns = np.empty(0, dtype=np.int64)
        self._values = np.empty((len(SIGNALS), 0))

    def add(self, piece: TelemetryColumns) -> None:
        """Append the piece's rows of the windows (a copy: the piece's other columns are let go)."""
        if piece.vehicle_ids != self.vehicles or not set(SIGNALS) <= set(piece.values):
            raise ValueError("a piece of other vehicles than the window's, or without its signals")
        keep = piece.ts_ns >= self._since[piece.vehicle]
        n = int(np.count_nonzero(keep))
        if self._rows + n > self._ts_ns.shape[0]:
            self._grow(max(2 * self._ts_ns.shape[0], self._rows + n))
        at = slice(self._rows, self._rows + n)
        whole = n == keep.shape[0]  # the window cuts nothing: plain copies
        pairs: list[tuple[np.ndarray, np.ndarray]] = [
            (self._vehicle[at], piece.vehicle),
            (self._ts_ns[at], piece.ts_ns),
            *((self._values[i, at], piece.values[s]) for i, s in enumerate(SIGNALS)),
        ]
        for out, column in pairs:
            if whole:
                out[:] = column
            else:
                np.compress(keep, column, out=out)
        self._rows += n

    def columns(self) -> TelemetryColumns:
        """The rows of every piece added, in order (views of the buffers)."""
        n = self._rows
        values = {s: self._values[i, :n] for i, s in enumerate(SIGNALS)}
        return TelemetryColumns(self.vehicles, self._vehicle[:n], self._ts_ns[:n], values)

    def _grow(self, capacity: int) -> None:
        n = self._rows
        vehicle, ts_ns = np.empty(capacity, dtype=np.int32), np.empty(capacity, dtype=np.int64)
        values = np.empty((len(SIGNALS), capacity))
        vehicle[:n], ts_ns[:n], values[:, :n] = self._vehicle[:n], self._ts_ns[:n], self._values[:, :n]
        self._vehicle, self._ts_ns, self._values = vehicle, ts_ns, values


def update_trips(
    conn: psycopg.Connection,
    oldest_new_ns: Mapping[str, int],
    config: DrivingJobConfig | None = None,
    *,
    window: TripWindow | None = None,
) -> DrivingReport:
    """Score and store the trips around the new data of these vehicles: from the rows the caller
    already read into `window` (made with the same vehicles and config), else from a read of its
    own. Raises psycopg.Error and, for a window of other vehicles or bounds, ValueError."""
    cfg = config or DrivingJobConfig()
    report = DrivingReport()
    if not oldest_new_ns:
        return report
    vehicles = sorted(oldest_new_ns)
    trailing_ns = int(cfg.trailing_s * 1e9)
    since = {v: oldest_new_ns[v] - trailing_ns for v in vehicles}
    if window is not None and (window.vehicles != tuple(vehicles) or window.since_ns != since):
        raise ValueError("the rows read are not this window's")
    cols = (
        window.columns()
        if window is not None
        else reader.read_columns(conn, vehicles, SIGNALS, since_ns_per_vehicle=since)
    )
    report.vehicles, report.rows_read = len(vehicles), cols.n_rows
    limit = np.full(cols.n_rows, np.nan)
    moving = cols.column(SPEED) > cfg.thresholds.trips.moving_kmh
    lat, lon = cols.column(LAT)[moving], cols.column(LON)[moving]
    index = load_road_index(conn, lat, lon)
    if index is not None:
        report.road_pieces = index.n_pieces
        limit[moving] = snap_speed_limit_kmh(
            index, lat, lon, cols.column(HEADING)[moving], tolerance_m=cfg.snap_tolerance_m
        )
    offsets = _utc_offsets_s(conn, vehicles, cols.ts_ns.max() if cols.n_rows else 0)
    window_start = np.array([since[v] for v in vehicles], dtype=np.int64)
    rows, region = window_trips(cols, window_start, limit, offsets, cfg.thresholds)
    report.trips_removed, report.trips_written = store_trips(
        conn, rows, dict(zip(vehicles, region.tolist(), strict=True))
    )
    return report


def _utc_offsets_s(conn: psycopg.Connection, vehicles: list[str], at_ns: int) -> np.ndarray:
    """Each vehicle's local time offset (seconds) at `at_ns`: the time zone of its home service centre
    (where it is serviced is where it drives; its owner may live elsewhere), else its owner's; 0
    when the registry knows neither. One offset per pass: a trip across a change of daylight saving
    time is off by an hour on one side of it."""
    out = np.zeros(len(vehicles))
    rows = conn.execute(
        "SELECT r.k - 1, coalesce(c.time_zone, o.time_zone) FROM unnest(%s::text[]) WITH ORDINALITY"
        " AS r(vehicle_id, k) JOIN vehicles v ON v.vehicle_id = r.vehicle_id"
        " LEFT JOIN service_centres c ON c.service_centre_id = v.service_centre_id"
        " LEFT JOIN owners o ON o.owner_id = v.owner_id WHERE coalesce(c.time_zone, o.time_zone) IS NOT NULL",
        (vehicles,),
    ).fetchall()
    at = datetime_of_ns(int(at_ns))
    zones: dict[str, float] = {}
    for k, name in rows:
        if name not in zones:
            try:
                offset = ZoneInfo(name).utcoffset(at)
            except (ZoneInfoNotFoundError, ValueError):
                offset = None
            zones[name] = (offset or dt.timedelta(0)).total_seconds()
        out[int(k)] = zones[name]
    return out
