"""Passes over hazard sites: each time a vehicle travels over a site, with or without an event.

A pass without an event is evidence that the hazard is gone (a repaired pothole stops producing
peaks); a pass with one keeps it. Only passes that could have produced an event count: at the
kind's speed, along the road's axis for road-bound kinds. A vehicle is "at" a site when a sample
or the middle of the interval before it lies within the kind's pass radius of the site's shape (at
100 km/h samples are 28 m apart, and the middles halve that). A visit is a run of consecutive
such rows of one vehicle; it is new when its first row is at or after the vehicle's `count_from_ns`
(rows before that are context that an earlier run counted already). Pure: numpy and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.columns import TelemetryColumns
from analytics.hazards.config import HazardThresholds
from analytics.hazards.events import HEADING, LAT, LON, SPEED, HazardEvents
from analytics.hazards.geo import axis_difference_deg, ecef_m
from analytics.hazards.sites import Shapes, near_pairs, unique_sorted


@dataclass(frozen=True)
class Passes:
    """One row per new visit, sorted by (site, vehicle, first_ts_ns)."""

    site: np.ndarray  # index into the shapes
    vehicle: np.ndarray  # index into the columns' vehicle_ids
    first_ts_ns: np.ndarray
    last_ts_ns: np.ndarray
    with_event: np.ndarray  # bool

    def __len__(self) -> int:
        return int(self.site.shape[0])


def find_passes(
    cols: TelemetryColumns,
    shapes: Shapes,
    events: HazardEvents,
    event_site: np.ndarray,
    count_from_ns: np.ndarray,
    th: HazardThresholds,
) -> Passes:
    """New passes over `shapes`. `event_site[i]` is the site index of event i (-1: none);
    `count_from_ns[v]` is where vehicle v's new rows begin."""
    lat, lon = cols.column(LAT), cols.column(LON)
    speed, heading = cols.column(SPEED) / 3.6, cols.column(HEADING)
    prev = np.r_[False, cols.vehicle[1:] == cols.vehicle[:-1]] & (
        np.r_[np.inf, np.diff(cols.ts_ns) / 1e9] <= th.max_interval_s
    )
    placed = np.isfinite(lat) & np.isfinite(lon)
    rows = np.flatnonzero(placed)
    here = ecef_m(lat[rows], lon[rows])
    # The middle of the interval before each row, where the row before it is placed too.
    back = np.zeros(rows.size, dtype=bool)
    back[1:] = prev[rows[1:]] & (rows[1:] - 1 == rows[:-1])
    mid = (here[back] + here[np.flatnonzero(back) - 1]) / 2.0
    reach = _rule(shapes, th, "pass_radius_m")
    site, point = near_pairs(shapes, np.concatenate([here, mid]), reach)
    row = np.r_[rows, rows[back]][point]
    pair = unique_sorted(site * (cols.n_rows + 1) + row)  # a row at a site once, sorted by (site, row)
    site, row = pair // (cols.n_rows + 1), pair % (cols.n_rows + 1)
    if site.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Passes(empty, empty, empty, empty, np.zeros(0, dtype=bool))
    top_speed = np.fmax(speed, np.where(prev, np.r_[np.nan, speed[:-1]], np.nan))
    # Visits: runs of consecutive rows of one vehicle at one site.
    starts = np.r_[True, (site[1:] != site[:-1]) | (row[1:] != row[:-1] + 1) | ~prev[row[1:]]]
    visit = np.cumsum(starts) - 1
    n_visits = int(visit[-1]) + 1 if visit.size else 0
    first_row = row[starts]
    last_row = np.r_[row[np.flatnonzero(starts)[1:] - 1], row[-1:]] if n_visits else row[:0]
    v_site = site[starts]
    fast = np.zeros(n_visits, dtype=bool)
    np.logical_or.at(fast, visit, top_speed[row] >= _rule(shapes, th, "pass_min_speed_ms")[site])
    aligned_max = _rule(shapes, th, "aligned_deg")[site]
    along = ~(axis_difference_deg(heading[row], shapes.axis_deg[site]) > aligned_max)  # NaN: allowed
    aligned = np.zeros(n_visits, dtype=bool)
    np.logical_or.at(aligned, visit, along)
    vehicle = cols.vehicle[first_row].astype(np.int64)
    new = cols.ts_ns[first_row] >= count_from_ns[vehicle]
    keep = fast & aligned & new
    first_ts, last_ts = cols.ts_ns[first_row][keep], cols.ts_ns[last_row][keep]
    v_site, vehicle = v_site[keep], vehicle[keep]
    return Passes(
        v_site,
        vehicle,
        first_ts,
        last_ts,
        _with_event(v_site, vehicle, first_ts, last_ts, events, event_site),
    )


def _rule(shapes: Shapes, th: HazardThresholds, field: str) -> np.ndarray:
    return th.per_kind(field)[shapes.kind] if len(shapes) else np.zeros(0)


def _with_event(
    site: np.ndarray,
    vehicle: np.ndarray,
    first_ts: np.ndarray,
    last_ts: np.ndarray,
    events: HazardEvents,
    event_site: np.ndarray,
) -> np.ndarray:
    """Whether the visiting vehicle had an event of that site during the visit."""
    if site.size == 0 or len(events) == 0:
        return np.zeros(site.shape[0], dtype=bool)
    mine = event_site >= 0
    # Per (site, vehicle) pairs compare times: sort the events by (site, vehicle, ts) and search.
    ev_key = np.stack([event_site[mine], events.vehicle[mine].astype(np.int64), events.ts_ns[mine]])
    order = np.lexsort(ev_key[::-1])
    ev = ev_key[:, order]
    lo = _search(ev, site, vehicle, first_ts, "left")
    hi = _search(ev, site, vehicle, last_ts, "right")
    return hi > lo


def _search(ev: np.ndarray, site: np.ndarray, vehicle: np.ndarray, ts: np.ndarray, side: str) -> np.ndarray:
    """Position of (site, vehicle, ts) in the events sorted by the same triple."""
    dtype = np.dtype([("s", np.int64), ("v", np.int64), ("t", np.int64)])
    sorted_events = np.empty(ev.shape[1], dtype=dtype)
    sorted_events["s"], sorted_events["v"], sorted_events["t"] = ev
    probe = np.empty(site.shape[0], dtype=dtype)
    probe["s"], probe["v"], probe["t"] = site, vehicle, ts
    return np.searchsorted(sorted_events, probe, side=side)  # type: ignore[call-overload]
