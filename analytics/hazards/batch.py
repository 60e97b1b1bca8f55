"""The whole map from one batch of columns, in memory: events, sites, passes and verdicts in one
call, with no database. For tests, benches and offline studies; the incremental job
(`analytics.hazard_job`) does the same steps against stored sites. Vehicles are their own keys
here (nothing is stored). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analytics.columns import TelemetryColumns
from analytics.hazards.config import DEFAULT, KINDS, HazardThresholds
from analytics.hazards.events import extract_events
from analytics.hazards.evidence import replay
from analytics.hazards.passes import find_passes
from analytics.hazards.sites import cluster, shapes_of


def map_of(
    cols: TelemetryColumns, th: HazardThresholds = DEFAULT, *, now_ns: int | None = None
) -> list[dict[str, Any]]:
    """Every site the columns give, as `analytics.hazard_store.site_rows` gives stored ones."""
    events = extract_events(cols, th)
    labels = cluster(events.kind, events.lat, events.lon, th, events.heading_deg)
    shapes = shapes_of(labels, events.kind, events.lat, events.lon, events.heading_deg)
    start = np.full(len(cols.vehicle_ids), np.iinfo(np.int64).min, dtype=np.int64)
    passes = find_passes(cols, shapes, events, labels, start, th)
    min_rate = th.per_kind("min_event_rate")[shapes.kind]
    end = int(cols.ts_ns.max()) if now_ns is None and cols.n_rows else int(now_ns or 0)
    evd = replay(
        len(shapes), min_rate, labels, events.ts_ns, events.vehicle.astype(np.int64),
        passes.site, passes.first_ts_ns, passes.with_event, end, th,
    )  # fmt: skip
    return [
        {
            "site_id": i,
            "kind": KINDS[int(shapes.kind[i])],
            "lat": float(shapes.lat[i]),
            "lon": float(shapes.lon[i]),
            "axis_deg": None if not np.isfinite(shapes.axis_deg[i]) else float(shapes.axis_deg[i]),
            "half_length_m": float(shapes.half_length_m[i]),
            "state": str(evd.state[i]),
            "events": int(evd.events[i]),
            "vehicles": int(evd.vehicles[i]),
            "passes": int(evd.passes[i]),
            "event_passes": int(evd.event_passes[i]),
            "confidence": float(evd.confidence[i]),
            "reported": evd.intervals[i],
        }
        for i in range(len(shapes))
    ]
