"""The SQL of the map's role-scoped layers: vehicle positions and active alarm counts per centre.

Owns: the scope a caller's role gives these layers, applied in SQL (`Scope`): a service centre
sees the vehicles whose home centre it is, a fleet operator the vehicles of its fleets, an admin
every vehicle. Positions are each vehicle's newest latitude and longitude in the last-state table
(`vehicle_latest`). Leaves which roles may call the routes to `api.auth` and the response shapes to
`api.schemas_map`. All functions raise psycopg.Error on failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.hazard_queries import Rows
from contract.signals import BY_PATH

LAT = BY_PATH["Vehicle.CurrentLocation.Latitude"].vss_path
LON = BY_PATH["Vehicle.CurrentLocation.Longitude"].vss_path
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE")  # migration 0011


@dataclass(frozen=True, slots=True)
class Scope:
    """The vehicles a caller may see: of one centre, of some fleets, or (both None) all."""

    centre_id: str | None = None
    fleet_ids: tuple[str, ...] | None = None

    def params(self) -> dict[str, Any]:
        return {
            "scope_centre": self.centre_id,
            "scope_fleets": None if self.fleet_ids is None else list(self.fleet_ids),
        }


_IN_SCOPE = (
    "(%(scope_centre)s::text IS NULL OR v.service_centre_id = %(scope_centre)s)"
    " AND (%(scope_fleets)s::text[] IS NULL OR v.fleet_id = ANY(%(scope_fleets)s::text[]))"
)


@dataclass(frozen=True, slots=True)
class VehicleFilter:
    """What the caller asked to narrow the visible vehicles to (None: no narrowing)."""

    fleet_id: str | None = None
    service_centre_id: str | None = None
    fault: str | None = None  # has an active alarm of this fault
    severity: str | None = None  # has an active alarm of this severity

    def params(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet_id,
            "centre": self.service_centre_id,
            "fault": self.fault,
            "severity": self.severity,
        }


_FILTERED = (
    " AND (%(fleet)s::text IS NULL OR v.fleet_id = %(fleet)s)"
    " AND (%(centre)s::text IS NULL OR v.service_centre_id = %(centre)s)"
    " AND (%(fault)s::text IS NULL AND %(severity)s::text IS NULL OR EXISTS (SELECT 1 FROM alarms f"
    "  WHERE f.vehicle_id = v.vehicle_id AND f.cleared_at IS NULL"
    "  AND (%(fault)s::text IS NULL OR f.fault = %(fault)s)"
    "  AND (%(severity)s::text IS NULL OR f.severity = %(severity)s)))"
)


def vehicle_positions(conn: psycopg.Connection, scope: Scope, narrow: VehicleFilter, *, limit: int) -> Rows:
    """The visible vehicles that pass the filter, by id, each with its registry ids, its newest
    position (lat, lon and its time; None when it never reported one) and its active alarms
    (a list of {fault, severity, raised_at}, by fault)."""
    query = (
        "SELECT v.vehicle_id, v.fleet_id, v.service_centre_id, v.model_id,"
        " (l.signals -> %(lat)s ->> 'value')::float8 AS lat,"
        " (l.signals -> %(lon)s ->> 'value')::float8 AS lon,"
        " (l.signals -> %(lat)s ->> 'ts')::timestamptz AS position_ts,"
        " coalesce((SELECT jsonb_agg(jsonb_build_object('fault', a.fault, 'severity', a.severity,"
        "   'raised_at', a.raised_at) ORDER BY a.fault)"
        "  FROM alarms a WHERE a.vehicle_id = v.vehicle_id AND a.cleared_at IS NULL), '[]'::jsonb) AS alarms"
        " FROM vehicles v LEFT JOIN vehicle_latest l USING (vehicle_id)"
        f" WHERE {_IN_SCOPE}{_FILTERED}"
        " ORDER BY v.vehicle_id LIMIT %(limit)s"
    )
    params = {**scope.params(), **narrow.params(), "lat": LAT, "lon": LON, "limit": limit + 1}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
    return Rows(tuple(rows[:limit]), len(rows) > limit)


def alarm_counts(conn: psycopg.Connection, scope: Scope, *, fleet_id: str | None) -> list[dict[str, Any]]:
    """Per service centre, its active alarms by severity and the vehicles that have any, over the
    visible vehicles (of `fleet_id`, if given). An admin gets every centre; a service centre its
    own; a fleet operator the centres that are home to one of its fleets' vehicles. By centre id."""
    counts = ", ".join(f"count(a.alarm_id) FILTER (WHERE a.severity = '{s}') AS \"{s}\"" for s in SEVERITIES)
    query = (
        f"SELECT c.service_centre_id, c.name, c.lat, c.lon, {counts},"
        " count(DISTINCT a.vehicle_id) AS vehicles_with_alarms"
        " FROM service_centres c"
        " LEFT JOIN vehicles v ON v.service_centre_id = c.service_centre_id"
        f"  AND {_IN_SCOPE} AND (%(fleet)s::text IS NULL OR v.fleet_id = %(fleet)s)"
        " LEFT JOIN alarms a ON a.vehicle_id = v.vehicle_id AND a.cleared_at IS NULL"
        " WHERE (%(scope_centre)s::text IS NULL OR c.service_centre_id = %(scope_centre)s)"
        " GROUP BY c.service_centre_id"
        " HAVING %(scope_fleets)s::text[] IS NULL OR count(v.vehicle_id) > 0"
        " ORDER BY c.service_centre_id"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {**scope.params(), "fleet": fleet_id}).fetchall()
