"""Trips of a trailing window, as the incremental job stores them, and what storing them does.

Owns: which trips of a window are whole (`window_trips`: only a trip whose start lies at least
`park_s` after its vehicle's window start, so that the window shows the parking gap before it; a
trip cut by the window's start is left as stored), the row a trip is stored as (`TripRow`), and the
merge rule the store applies (`merge_trips`: within each vehicle's region, the window's trips
replace whatever was stored, so a trip that late data joined to another disappears; before the
region nothing changes). The SQL is `analytics.driving_job`'s; this module lets tests check that
two incremental runs store what one run stores, without a database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.columns import TelemetryColumns
from analytics.driving.config import DrivingThresholds
from analytics.driving.score import COMPONENTS, score_trips
from analytics.driving.trips import NS_PER_S


@dataclass(frozen=True)
class TripRow:
    vehicle_id: str
    start_ns: int
    end_ns: int
    distance_km: float
    duration_s: float
    harsh_brakes: int
    harsh_accelerations: int
    harsh_corners: int
    speeding_share: float | None  # None: no known limit on the trip
    night_share: float
    score: float
    components: dict[str, Any]
    thresholds_version: str

    @property
    def key(self) -> tuple[str, int]:
        return self.vehicle_id, self.start_ns


def window_trips(
    cols: TelemetryColumns,
    window_start_ns: np.ndarray,
    limit_kmh: np.ndarray,
    utc_offset_s: np.ndarray,
    th: DrivingThresholds,
) -> tuple[list[TripRow], np.ndarray]:
    """The whole trips of a window and each vehicle's region start (ns): the trips returned are
    every trip of the vehicle that starts at or after it. `window_start_ns` per vehicle of `cols`."""
    _, table = score_trips(cols, limit_kmh, utc_offset_s, th)
    region = window_start_ns + int(th.trips.park_s * NS_PER_S)
    whole = table.start_ns >= region[table.vehicle]
    t = table.select(whole)
    share = t.speeding_share()
    duration = np.maximum(t.duration_s, 1.0)
    rows = []
    for i in range(t.n):
        components = {
            "limit_known_s": _r(t.limit_known_s[i]),
            "speeding_s": _r(t.speeding_s[i]),
            "night_s": _r(t.night_s[i]),
            "high_risk_s": _r(t.high_risk_s[i]),
            "penalties": {c: _r(getattr(t, f"penalty_{c}")[i]) for c in COMPONENTS},
        }
        rows.append(
            TripRow(
                vehicle_id=cols.vehicle_ids[int(t.vehicle[i])],
                start_ns=int(t.start_ns[i]),
                end_ns=int(t.end_ns[i]),
                distance_km=_r(t.distance_km[i]),
                duration_s=_r(t.duration_s[i]),
                harsh_brakes=int(t.harsh_brakes[i]),
                harsh_accelerations=int(t.harsh_accelerations[i]),
                harsh_corners=int(t.harsh_corners[i]),
                speeding_share=None if math.isnan(share[i]) else _r(share[i]),
                night_share=_r(t.night_s[i] / duration[i]),
                score=_r(t.score[i]),
                components=components,
                thresholds_version=th.version,
            )
        )
    return rows, region


def merge_trips(
    stored: Mapping[tuple[str, int], TripRow], new: Sequence[TripRow], region_start_ns: Mapping[str, int]
) -> dict[tuple[str, int], TripRow]:
    """What the store holds after writing `new`: per vehicle in `region_start_ns`, its stored trips
    that start in the region are replaced by the new ones; everything else stays."""
    out = {
        k: row
        for k, row in stored.items()
        if k[0] not in region_start_ns or row.start_ns < region_start_ns[k[0]]
    }
    out.update((row.key, row) for row in new)
    return out


def _r(x: float) -> float:
    """Rounded to what a stored trip needs (1e-6), so a re-run writes identical rows."""
    return round(float(x), 6)
