"""The `trips` table: storing a window's trips (the merge rule of `analytics.driving.window`, in
SQL) and reading trips and per-vehicle scores back for the CLI and the API.

Owns the table's SQL. A vehicle's score is the distance-weighted mean of its trips' scores, and
its rates and shares are totals over its trips, as `analytics.driving.score.vehicle_scores`
computes them in memory.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from analytics.driving.window import TripRow
from contract.timestamps import datetime_of_ns, ns_of

TRIP_COLUMNS = (
    "vehicle_id",
    "started_at",
    "ended_at",
    "distance_km",
    "duration_s",
    "harsh_brakes",
    "harsh_accelerations",
    "harsh_corners",
    "speeding_share",
    "night_share",
    "score",
    "components",
    "thresholds_version",
)


def store_trips(conn: psycopg.Connection, rows: list[TripRow], region_ns: dict[str, int]) -> tuple[int, int]:
    """In one transaction, delete the stored trips of each vehicle's region that `rows` do not have
    and upsert `rows` by (vehicle, start): (removed, written). Raises psycopg.Error."""
    keep_v = [r.vehicle_id for r in rows]
    keep_t = [datetime_of_ns(r.start_ns) for r in rows]
    with conn.transaction():
        removed = conn.execute(
            "DELETE FROM trips t USING unnest(%s::text[], %s::timestamptz[]) AS g(vehicle_id, region)"
            " WHERE t.vehicle_id = g.vehicle_id AND t.started_at >= g.region AND NOT EXISTS"
            " (SELECT 1 FROM unnest(%s::text[], %s::timestamptz[]) AS k(vehicle_id, started_at)"
            " WHERE k.vehicle_id = t.vehicle_id AND k.started_at = t.started_at)",
            (list(region_ns), [datetime_of_ns(ns) for ns in region_ns.values()], keep_v, keep_t),
        ).rowcount
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO trips (vehicle_id, started_at, ended_at, distance_km, duration_s, harsh_brakes,"
                " harsh_accelerations, harsh_corners, speeding_share, night_share, score, components,"
                " thresholds_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (vehicle_id, started_at) DO UPDATE SET ended_at = excluded.ended_at,"
                " distance_km = excluded.distance_km, duration_s = excluded.duration_s,"
                " harsh_brakes = excluded.harsh_brakes, harsh_accelerations = excluded.harsh_accelerations,"
                " harsh_corners = excluded.harsh_corners, speeding_share = excluded.speeding_share,"
                " night_share = excluded.night_share, score = excluded.score,"
                " components = excluded.components, thresholds_version = excluded.thresholds_version,"
                " recorded_at = now()",
                [
                    (
                        r.vehicle_id,
                        datetime_of_ns(r.start_ns),
                        datetime_of_ns(r.end_ns),
                        r.distance_km,
                        r.duration_s,
                        r.harsh_brakes,
                        r.harsh_accelerations,
                        r.harsh_corners,
                        r.speeding_share,
                        r.night_share,
                        r.score,
                        json.dumps(r.components),
                        r.thresholds_version,
                    )
                    for r in rows
                ],
            )
    return max(removed, 0), len(rows)


def read_trips(
    conn: psycopg.Connection, vehicle_id: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """The newest `limit` trips (of one vehicle, or all), newest first. Raises psycopg.Error."""
    where = "WHERE vehicle_id = %(v)s" if vehicle_id else ""
    rows = conn.execute(
        "SELECT " + ", ".join(TRIP_COLUMNS) + " FROM trips " + where + " ORDER BY started_at DESC, vehicle_id"
        " LIMIT %(n)s",
        {"v": vehicle_id, "n": limit},
    ).fetchall()
    out = []
    for row in rows:
        trip = dict(zip(TRIP_COLUMNS, row, strict=True))
        trip["started_at"], trip["ended_at"] = trip["started_at"].isoformat(), trip["ended_at"].isoformat()
        out.append(trip)
    return out


def read_vehicle_scores(conn: psycopg.Connection, vehicle_id: str | None = None) -> list[dict[str, Any]]:
    """Per vehicle with trips: trips, distance, the distance-weighted score, events per 100 km, the
    speeding share (NULL when no limit was ever known) and the night share. Raises psycopg.Error."""
    where = "WHERE vehicle_id = %(v)s" if vehicle_id else ""
    rows = conn.execute(
        "SELECT vehicle_id, count(*), sum(distance_km), sum(duration_s),"
        " sum(score * distance_km) / nullif(sum(distance_km), 0),"
        " 100 * sum(harsh_brakes) / nullif(sum(distance_km), 0),"
        " 100 * sum(harsh_accelerations) / nullif(sum(distance_km), 0),"
        " 100 * sum(harsh_corners) / nullif(sum(distance_km), 0),"
        " sum((components->>'speeding_s')::float8) / nullif(sum((components->>'limit_known_s')::float8), 0),"
        " sum((components->>'night_s')::float8) / nullif(sum(duration_s), 0)"
        " FROM trips " + where + " GROUP BY vehicle_id ORDER BY vehicle_id",
        {"v": vehicle_id},
    ).fetchall()
    keys = (
        "vehicle_id", "trips", "distance_km", "duration_s", "score", "harsh_brakes_per_100km",
        "harsh_accelerations_per_100km", "harsh_corners_per_100km", "speeding_share", "night_share",
    )  # fmt: skip
    return [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in zip(keys, row, strict=True)}
        for row in rows
    ]


def stored_trip_keys(conn: psycopg.Connection) -> list[tuple[str, int]]:
    """Every stored trip's (vehicle, start ns), for tests and checks."""
    return [(v, ns_of(t)) for v, t in conn.execute("SELECT vehicle_id, started_at FROM trips ORDER BY 1, 2")]
