"""The SQL of the six fleet queries, built from a window: statements and parameters, no I/O.

Owns: reading the last-state table (`vehicle_latest`) and the 10-minute aggregate (`telemetry_10m`,
migration 0018) and the fleet scope, applied in every statement (`%(allowed)s`: the fleets the
caller may query, NULL for all), so no caller can forget it. Leaves the windows to
`api.fleet_queries.definitions` and running the statements to `api.fleet_queries.runner`.

Newest values "as of until" (last-location, low-fuel): a signal's value in `vehicle_latest` when its
time is at or before `until`; otherwise (it is newer than a past `until`) the newest non-NULL raw
value in [edge, until] of that vehicle (at most one bucket, read by index), else the newest value
the aggregate holds before `edge`. Values of `real` columns are rounded to `real` on every path, so
all three give the value as stored.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from api.fleet_queries.definitions import (
    DRIVING_SPEED_KMH,
    LOW_ENERGY_PCT,
    STATIONARY_SPEED_KMH,
    FleetQuery,
    Window,
    min_buckets,
)
from contract.signals import SIGNALS

_PATH = {s.column: s.vss_path for s in SIGNALS}
# Storage column -> (aggregate time column, stored as real?)
_NEWEST = {
    "latitude_deg": ("latitude_ts", False),
    "longitude_deg": ("longitude_ts", False),
    "fuel_level_pct": ("fuel_level_ts", True),
    "traction_soc_pct": ("traction_soc_ts", True),
}

_FLEET = sql.SQL(
    "fleet AS (SELECT v.vehicle_id, v.model_id, m.powertrain FROM vehicles v"
    " LEFT JOIN vehicle_models m USING (model_id)"
    " WHERE v.fleet_id = %(fleet)s"
    " AND (%(allowed)s::text[] IS NULL OR v.fleet_id = ANY(%(allowed)s::text[])))"
)
_DRIVING = sql.SQL("a.speed_n > 0 AND a.speed_sum_kmh / a.speed_n > %(driving_kmh)s")

Statement = tuple[sql.Composed, dict[str, Any]]


def _newest(column: str, alias: str) -> sql.Composed:
    """A LEFT JOIN LATERAL giving `alias`.value (of the column's type) and `alias`.ts: the vehicle's newest
    non-NULL value of `column` at or before %(until)s (see the module docstring)."""
    ts_column, is_real = _NEWEST[column]
    path = sql.Literal(_PATH[column])
    latest_ts = sql.SQL("(l.signals -> {} ->> 'ts')::timestamptz").format(path)
    kind = sql.SQL("real" if is_real else "float8")
    latest_value = sql.SQL("(l.signals -> {} ->> 'value')::float8::{}").format(path, kind)
    return sql.SQL(
        "LEFT JOIN LATERAL (SELECT x.value, x.ts FROM ("
        " SELECT {lv} AS value, {lt} AS ts WHERE {lt} <= %(until)s"
        " UNION ALL (SELECT t.{col}::{kind}, t.ts FROM telemetry t"
        "  WHERE {lt} > %(until)s AND t.vehicle_id = f.vehicle_id AND t.ts >= %(edge)s"
        "  AND t.ts <= %(until)s AND t.{col} IS NOT NULL ORDER BY t.ts DESC LIMIT 1)"
        " UNION ALL (SELECT a.{col}::{kind}, a.{tcol} FROM telemetry_10m a"
        "  WHERE {lt} > %(until)s AND a.vehicle_id = f.vehicle_id AND a.bucket < %(edge)s"
        "  AND a.{tcol} IS NOT NULL ORDER BY a.bucket DESC LIMIT 1)"
        ") x ORDER BY x.ts DESC LIMIT 1) {alias} ON TRUE"
    ).format(
        lv=latest_value,
        kind=kind,
        lt=latest_ts,
        col=sql.Identifier(column),
        tcol=sql.Identifier(ts_column),
        alias=sql.Identifier(alias),
    )


def build(query: FleetQuery, fleet_id: str, window: Window, allowed: list[str] | None) -> Statement:
    """The statement answering `query` for `fleet_id` over `window`, scoped to `allowed` fleets
    (None: all). Its rows are in the shape of the query's record in `api.fleet_queries.records`."""
    params: dict[str, Any] = {
        "fleet": fleet_id,
        "allowed": allowed,
        "until": window.until,
        "edge": window.edge,
        "start": window.start,
        "driving_kmh": DRIVING_SPEED_KMH,
    }
    match query:
        case FleetQuery.LAST_LOCATION:
            body = sql.SQL(
                "SELECT f.vehicle_id, lat.value AS latitude_deg, lat.ts AS latitude_ts,"
                " lon.value AS longitude_deg, lon.ts AS longitude_ts"
                " FROM fleet f LEFT JOIN vehicle_latest l USING (vehicle_id) {} {}"
                " WHERE lat.value IS NOT NULL OR lon.value IS NOT NULL ORDER BY f.vehicle_id"
            ).format(_newest("latitude_deg", "lat"), _newest("longitude_deg", "lon"))
        case FleetQuery.LOW_FUEL:
            params["low_pct"] = LOW_ENERGY_PCT
            body = sql.SQL(
                "SELECT vehicle_id, model_id, powertrain, signal,"
                " CASE signal WHEN 'fuel_level' THEN fuel_pct ELSE soc_pct END AS level_pct,"
                " CASE signal WHEN 'fuel_level' THEN fuel_ts ELSE soc_ts END AS ts"
                " FROM (SELECT f.vehicle_id, f.model_id, f.powertrain,"
                "  CASE WHEN f.powertrain = 'bev' THEN 'state_of_charge'"
                "   WHEN f.powertrain IN ('ice', 'hev', 'phev') OR fuel.value IS NOT NULL THEN 'fuel_level'"
                "   ELSE 'state_of_charge' END AS signal,"
                "  fuel.value AS fuel_pct, fuel.ts AS fuel_ts, soc.value AS soc_pct, soc.ts AS soc_ts"
                "  FROM fleet f LEFT JOIN vehicle_latest l USING (vehicle_id) {} {}) e"
                " WHERE CASE signal WHEN 'fuel_level' THEN fuel_pct ELSE soc_pct END < %(low_pct)s"
                " ORDER BY vehicle_id"
            ).format(_newest("fuel_level_pct", "fuel"), _newest("traction_soc_pct", "soc"))
        case FleetQuery.STATIONARY:
            params["stationary_kmh"] = STATIONARY_SPEED_KMH
            body = sql.SQL(
                "SELECT a.vehicle_id, a.speed_sum_kmh / a.speed_n AS speed_avg_kmh,"
                " a.speed_n AS speed_samples"
                " FROM fleet f JOIN telemetry_10m a ON a.vehicle_id = f.vehicle_id AND a.bucket = %(start)s"
                " WHERE a.speed_n > 0 AND a.speed_sum_kmh / a.speed_n < %(stationary_kmh)s"
                " ORDER BY a.vehicle_id"
            ).format()
        case FleetQuery.LONG_DRIVING | FleetQuery.LONG_DAILY:
            params["min_buckets"] = min_buckets(query)
            body = sql.SQL(
                "SELECT a.vehicle_id, count(*) AS driving_buckets"
                " FROM fleet f JOIN telemetry_10m a ON a.vehicle_id = f.vehicle_id"
                " AND a.bucket >= %(start)s AND a.bucket < %(edge)s"
                " WHERE {} GROUP BY a.vehicle_id HAVING count(*) > %(min_buckets)s ORDER BY a.vehicle_id"
            ).format(_DRIVING)
        case FleetQuery.DAILY_ACTIVITY:
            params["days"] = list(window.days)
            body = sql.SQL(
                "SELECT d.day, m.model_id, count(dr.vehicle_id) AS vehicles_driving,"
                " coalesce(sum(dr.n), 0)::bigint AS driving_buckets"
                " FROM unnest(%(days)s::timestamptz[]) AS d(day)"
                " CROSS JOIN (SELECT DISTINCT model_id FROM fleet) m"
                " LEFT JOIN (SELECT date_bin(INTERVAL '1 day', a.bucket, TIMESTAMPTZ 'epoch') AS day,"
                "  f.model_id, a.vehicle_id, count(*) AS n"
                "  FROM fleet f JOIN telemetry_10m a ON a.vehicle_id = f.vehicle_id"
                "  AND a.bucket >= %(start)s AND a.bucket < %(edge)s WHERE {} GROUP BY 1, 2, 3) dr"
                " ON dr.day = d.day AND dr.model_id IS NOT DISTINCT FROM m.model_id"
                " GROUP BY d.day, m.model_id ORDER BY d.day, m.model_id NULLS LAST"
            ).format(_DRIVING)
    return sql.SQL("WITH {} {}").format(_FLEET, body), params


def fleet_exists(fleet_id: str, allowed: list[str] | None) -> Statement:
    """One row if the fleet is in the registry and in scope."""
    return (
        sql.SQL(
            "SELECT 1 FROM fleets WHERE fleet_id = %(fleet)s"
            " AND (%(allowed)s::text[] IS NULL OR fleet_id = ANY(%(allowed)s::text[]))"
        ).format(),
        {"fleet": fleet_id, "allowed": allowed},
    )


def pending_overlaps(fleet_id: str, window: Window) -> Statement:
    """One row if a pending (not yet aggregated) range of a vehicle of the fleet lies before `edge`
    and, for the window queries, after `start`: then the aggregate must be refreshed first."""
    return (
        sql.SQL(
            "SELECT 1 FROM telemetry_10m_pending p JOIN vehicles v USING (vehicle_id)"
            " WHERE v.fleet_id = %(fleet)s AND p.first_ts < %(edge)s"
            " AND (%(start)s::timestamptz IS NULL OR p.last_ts >= %(start)s) LIMIT 1"
        ).format(),
        {"fleet": fleet_id, "edge": window.edge, "start": window.start},
    )
