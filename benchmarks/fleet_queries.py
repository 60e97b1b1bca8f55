"""`fleet bench queries`: the six fleet queries over a synthetic fleet, against the same questions
asked of the raw rows, and the cost of aggregating a late backlog (docs/benchmarks.md).

Owns: loading the synthetic fleet (server-side `generate_series`, with one ledger row per vehicle
and hour so that the pending ranges come about as with ingest), the timings, and a check that the
aggregate's answers equal the raw rows' after the backlog. Leaves the queries to
`api.fleet_queries`.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from api.fleet_queries import FleetQuery, refresh_pending, run_query

FLEET = "benchq-0"


@dataclass(frozen=True)
class QueryBenchConfig:
    database_url: str
    vehicles: int = 300
    fleets: int = 3
    hours: int = 24
    step_s: int = 10
    repeats: int = 20
    backlog_share: float = 0.1  # vehicles that send an hour of backlog late


_LOAD = """
INSERT INTO telemetry (ts, vehicle_id, speed_kmh, latitude_deg, longitude_deg, fuel_level_pct)
SELECT ts, v.vehicle_id,
       CASE WHEN ((extract(epoch FROM ts)::bigint / 1800 + v.n) %% (3 + v.n %% 10)) = 0 THEN 0
            ELSE 20 + (v.n %% 60) + (extract(epoch FROM ts)::bigint / 10 %% 7) END,
       48 + v.n / 1000.0 + extract(epoch FROM ts - %(start)s) / 1e6,
       11 + v.n / 1000.0,
       greatest(0, 80 - (v.n %% 90) - extract(epoch FROM ts - %(start)s) / 3600.0)
FROM (SELECT vehicle_id, row_number() OVER (ORDER BY vehicle_id) AS n FROM vehicles
      WHERE vehicle_id LIKE 'BENCHQ-%%' AND vehicle_id = ANY(%(ids)s)) v
CROSS JOIN generate_series(%(start)s::timestamptz, %(end)s::timestamptz, make_interval(secs => %(step)s)) ts
WHERE random() >= 0.11
"""
_LEDGER = """
INSERT INTO ingest_batches (vehicle_id, seq, first_ts, last_ts, n_rows, n_samples)
SELECT vehicle_id, %(seq0)s + h, %(start)s::timestamptz + make_interval(hours => h),
       least(%(end)s::timestamptz, %(start)s::timestamptz + make_interval(hours => h + 1)), 1, 1
FROM unnest(%(ids)s::text[]) AS vehicle_id CROSS JOIN generate_series(0, %(hours)s - 1) h
"""
# What ingest keeps in the last-state table, for the loaded vehicles (every row has every signal).
_LATEST = """
INSERT INTO vehicle_latest (vehicle_id, ts, signals)
SELECT vehicle_id, ts, jsonb_build_object(
    'Vehicle.Speed', jsonb_build_object('value', speed_kmh, 'ts', ts),
    'Vehicle.CurrentLocation.Latitude', jsonb_build_object('value', latitude_deg, 'ts', ts),
    'Vehicle.CurrentLocation.Longitude', jsonb_build_object('value', longitude_deg, 'ts', ts),
    'Vehicle.Powertrain.FuelSystem.RelativeLevel', jsonb_build_object('value', fuel_level_pct, 'ts', ts))
FROM unnest(%(ids)s::text[]) AS v(id)
CROSS JOIN LATERAL (SELECT * FROM telemetry t WHERE t.vehicle_id = v.id ORDER BY ts DESC LIMIT 1) t
ON CONFLICT (vehicle_id) DO UPDATE SET ts = excluded.ts, signals = excluded.signals
WHERE excluded.ts > vehicle_latest.ts
"""
# The window queries asked of the raw rows directly, for comparison (and for the exactness check).
_RAW_LONG = """
SELECT vehicle_id, count(*) FROM (
  SELECT t.vehicle_id, date_bin(INTERVAL '10 minutes', t.ts, TIMESTAMPTZ 'epoch') AS b
  FROM telemetry t JOIN vehicles v USING (vehicle_id)
  WHERE v.fleet_id = %(fleet)s AND t.ts >= %(start)s AND t.ts < %(edge)s AND t.speed_kmh IS NOT NULL
  GROUP BY 1, 2 HAVING avg(t.speed_kmh::float8) > 1) d
GROUP BY vehicle_id HAVING count(*) > %(least)s ORDER BY vehicle_id
"""

# The same per-vehicle counts from the aggregate (the exactness check compares every vehicle).
_AGG_LONG = """
SELECT a.vehicle_id, count(*) FROM telemetry_10m a JOIN vehicles v USING (vehicle_id)
WHERE v.fleet_id = %(fleet)s AND a.bucket >= %(start)s AND a.bucket < %(edge)s
  AND a.speed_n > 0 AND a.speed_sum_kmh / a.speed_n > 1
GROUP BY a.vehicle_id HAVING count(*) > %(least)s ORDER BY a.vehicle_id
"""


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2)}


def register_fleet(conn: psycopg.Connection, cfg: QueryBenchConfig) -> list[str]:
    ids = [f"BENCHQ-{i:05d}" for i in range(cfg.vehicles)]
    with conn.transaction():
        conn.execute(
            "INSERT INTO vehicle_models (model_id, make, model, powertrain) VALUES"
            " ('benchq-ice', 'B', 'ice', 'ice'), ('benchq-bev', 'B', 'bev', 'bev') ON CONFLICT DO NOTHING"
        )
        for f in range(cfg.fleets):
            conn.execute(
                "INSERT INTO fleets (fleet_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (f"benchq-{f}", f"bench {f}"),
            )
        conn.execute(
            "INSERT INTO vehicles (vehicle_id, fleet_id, model_id)"
            " SELECT id, 'benchq-' || (n %% %s), CASE WHEN n %% 4 = 0 THEN 'benchq-bev' ELSE 'benchq-ice' END"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS x(id, n) ON CONFLICT DO NOTHING",
            (cfg.fleets, ids),
        )
    return ids


def load_telemetry(
    conn: psycopg.Connection, ids: list[str], start: dt.datetime, end: dt.datetime, step_s: int, seq0: int
) -> int:
    hours = max(1, round((end - start).total_seconds() / 3600))
    rows = 0
    for k in range(0, len(ids), 50):
        chunk = ids[k : k + 50]
        with conn.transaction():
            cur = conn.execute(_LOAD, {"start": start, "end": end, "step": step_s, "ids": chunk})
            rows += cur.rowcount
            conn.execute(_LEDGER, {"start": start, "end": end, "ids": chunk, "hours": hours, "seq0": seq0})
            conn.execute(_LATEST, {"ids": chunk})
    return rows


def run_query_bench(cfg: QueryBenchConfig) -> dict[str, Any]:
    """Load, aggregate, time each query (`repeats` runs, aggregate current) and its raw-row
    equivalent, then a late backlog: the refreshing query's time and the exactness check."""
    report: dict[str, Any] = {"vehicles": cfg.vehicles, "fleets": cfg.fleets, "hours": cfg.hours}
    with psycopg.connect(cfg.database_url, autocommit=True) as conn:
        mode = conn.execute("SELECT value FROM fleet_meta WHERE key = 'storage_mode'").fetchone()
        report["storage_mode"] = mode[0] if mode else None
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        end = now - dt.timedelta(seconds=now.second % cfg.step_s, microseconds=now.microsecond)
        start = end - dt.timedelta(hours=cfg.hours)
        ids = register_fleet(conn, cfg)
        # As ingest runs: daily partitions for the data (a no-op on TimescaleDB), and statistics
        # (autovacuum's job, done here at once so the plans are the ones a running system gets).
        conn.execute("SELECT fleet_ensure_partitions(%s::date, %s::date + 1)", (start, end))
        t0 = time.perf_counter()
        report["rows"] = load_telemetry(conn, ids, start, end, cfg.step_s, 1)
        report["load_s"] = round(time.perf_counter() - t0, 2)
        conn.execute("ANALYZE telemetry")
        t0 = time.perf_counter()
        report["initial_refresh_ranges"] = refresh_pending(conn)
        report["initial_refresh_s"] = round(time.perf_counter() - t0, 2)

        queries: dict[str, Any] = {}
        for query in FleetQuery:
            samples = []
            for _ in range(cfg.repeats):
                t0 = time.perf_counter()
                answer = run_query(conn, query, FLEET, until=end)
                samples.append(time.perf_counter() - t0)
            queries[query.value] = {**_ms(samples), "rows": len(answer.rows)}
        for query, least in ((FleetQuery.LONG_DRIVING, 22), (FleetQuery.LONG_DAILY, 60)):
            window = run_query(conn, query, FLEET, until=end).window
            params = {"fleet": FLEET, "start": window.start, "edge": window.edge, "least": least}
            samples = []
            for _ in range(max(1, cfg.repeats // 4)):
                t0 = time.perf_counter()
                conn.execute(_RAW_LONG, params).fetchall()
                samples.append(time.perf_counter() - t0)
            queries[query.value]["raw_rows_p50_ms"] = _ms(samples)["p50_ms"]
        report["queries"] = queries

        late = ids[: max(1, int(len(ids) * cfg.backlog_share))]
        b_start = end - dt.timedelta(hours=3, seconds=cfg.step_s // 2)  # between the on-time samples
        b_rows = load_telemetry(conn, late, b_start, b_start + dt.timedelta(hours=1), cfg.step_s, 10_000)
        t0 = time.perf_counter()
        answer = run_query(conn, FleetQuery.LONG_DAILY, FLEET, until=end)
        report["backlog"] = {
            "vehicles": len(late),
            "rows": b_rows,
            "refreshed_ranges": answer.refreshed,
            "query_with_refresh_ms": round((time.perf_counter() - t0) * 1000, 1),
        }
        params = {"fleet": FLEET, "start": answer.window.start, "edge": answer.window.edge, "least": 60}
        raw = [tuple(r) for r in conn.execute(_RAW_LONG, params).fetchall()]
        exact = raw == [(r.vehicle_id, r.driving_buckets) for r in answer.rows]  # type: ignore[union-attr]
        params["least"] = 0  # every vehicle's count, not only the long ones
        raw = [tuple(r) for r in conn.execute(_RAW_LONG, params).fetchall()]
        report["exact_after_backlog"] = exact and raw == conn.execute(_AGG_LONG, params).fetchall()
        report["vehicles_compared"] = len(raw)
    return report
