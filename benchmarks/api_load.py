"""`fleet bench api`: the API's latency under concurrent clients over a large database, with the
database's own time for the same requests beside it (docs/api-serving.md, docs/benchmarks.md).

Owns, in one run:
1. a database (FLEET_DATABASE_URL, or a fresh embedded one) loaded with a synthetic fleet: the
   fleet queries bench's telemetry (server-side `generate_series`, about 11 % of points missing,
   four signals a row), the last-state table, the 10-minute aggregate, service centres with their
   vehicles, active alarms with history, and hazard sites; and one token per caller kind;
2. `fleet api --workers W` as its own processes;
3. per route, `clients` concurrent clients (one asyncio loop, one keep-alive connection each) for
   `seconds_per_route`, after a warm-up: p50 / p95 / p99 latency, requests per second, status
   codes, and from each response's `Server-Timing` header (`api.serving`) the time it spent in the
   database and waiting for admission; then the same route with one client (no queueing);
4. the CPU seconds the API workers, PostgreSQL and the load generator used in each phase, so the
   limit is named rather than guessed.
Routes are found in the app's OpenAPI document; a route this build does not have is reported as
absent. Reported, not asserted: the target is p95 <= 50 ms at 50 clients (issue 13).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from api.auth import create_token
from api.fleet_queries import refresh_pending
from benchmarks.fleet_queries import QueryBenchConfig, load_telemetry, register_fleet
from benchmarks.http_load import Connection, ProtocolError
from ingest.schema import migrate
from localservers.embedded import embedded_postgres, free_port

CENTRE = "benchapi-sc-0"
FLEET = "benchq-0"
ALARM_FAULTS = ("battery_12v_failing", "tyre_slow_leak", "brake_pad_wear", "thermostat_stuck", "sensor_stuck")


@dataclass(frozen=True)
class ApiBenchConfig:
    database_url: str | None = None
    vehicles: int = 1_500
    hours: int = 24
    step_s: int = 10
    fleets: int = 3
    centres: int = 12
    hazard_sites: int = 2_000
    clients: int = 50
    seconds_per_route: float = 8.0
    workers: int = 2
    pool_size: int = 10
    max_waiting: int = 256
    keep_data: bool = False


@dataclass(frozen=True)
class Route:
    """One request kind: candidate paths (the first in the OpenAPI document is used), who asks,
    and how a client fills in its parameters."""

    name: str
    paths: tuple[str, ...]
    token: str  # which token: admin, centre, operator
    fill: Callable[[random.Random, dict[str, Any]], tuple[dict[str, str], dict[str, str]]]


def _own_vehicle(rng: random.Random, seeded: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    return {"vehicle_id": rng.choice(seeded["centre_vehicles"])}, {}


def _fleet(rng: random.Random, seeded: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    return {"fleet_id": FLEET}, {}


def _none(rng: random.Random, seeded: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    return {}, {}


def _bbox(rng: random.Random, seeded: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    lat, lon = 48.0 + rng.random() * 1.2, 11.0 + rng.random() * 0.3
    # The box as /v1/hazards takes it (docs/map.md): four edges, a 0.1-degree square.
    return {}, {
        "min_lon": f"{lon:.4f}",
        "min_lat": f"{lat:.4f}",
        "max_lon": f"{lon + 0.1:.4f}",
        "max_lat": f"{lat + 0.1:.4f}",
    }


ROUTES = (
    Route("vehicle_latest", ("/v1/vehicles/{vehicle_id}/latest", "/vehicles/{vehicle_id}/latest"), "centre",
          _own_vehicle),
    Route("vehicle_list", ("/v1/vehicles", "/vehicles"), "centre", _none),
    Route("alarms_of_centre", ("/v1/alarms", "/alarms"), "centre", _none),
    Route("fleet_last_location", ("/v1/fleets/{fleet_id}/last-location",), "operator", _fleet),
    Route("fleet_long_daily", ("/v1/fleets/{fleet_id}/long-daily",), "operator", _fleet),
    Route("hazards_bbox", ("/v1/hazards", "/hazards"), "centre", _bbox),
)  # fmt: skip


def run_api_bench(cfg: ApiBenchConfig, progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Load, serve, measure each route; the report. Raises RuntimeError when the API does not start."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-bench-api-")))
        db_url = cfg.database_url or stack.enter_context(embedded_postgres(tmp / "pg", delete=True))
        with psycopg.connect(db_url, autocommit=True) as conn:
            migrate(conn)
            progress("loading the synthetic fleet")
            t0 = time.perf_counter()
            seeded = _seed(conn, cfg)
            seeded["load_s"] = round(time.perf_counter() - t0, 1)
            if not cfg.keep_data:
                stack.callback(_delete, db_url)
        port = free_port()
        api = _start_api(db_url, port, cfg, tmp / "api.log")
        stack.callback(_stop, api)
        base = f"http://127.0.0.1:{port}"
        paths = _wait_for_paths(base, api)
        postgres = _postgres_processes(db_url)
        routes: dict[str, Any] = {}
        for route in ROUTES:
            path = next((p for p in route.paths if p in paths), None)
            if path is None:
                routes[route.name] = {"absent": True, "candidates": list(route.paths)}
                continue
            progress(f"{route.name}: {cfg.clients} clients for {cfg.seconds_per_route:g} s")
            token = seeded["tokens"][route.token]
            asyncio.run(_load_phase(base, path, route, token, seeded, 1, 1.0))  # warm-up
            meter = _CpuMeter(api, postgres)
            loaded = asyncio.run(
                _load_phase(base, path, route, token, seeded, cfg.clients, cfg.seconds_per_route)
            )
            loaded["cpu_s"] = meter.read()
            alone = asyncio.run(
                _load_phase(base, path, route, token, seeded, 1, min(3.0, cfg.seconds_per_route))
            )
            routes[route.name] = {"path": path, "loaded": loaded, "one_client": _brief(alone)}
        return {
            "config": asdict(cfg) | {"database_url": "(given)" if cfg.database_url else "(embedded)"},
            "cores": os.cpu_count(),
            "data": {k: v for k, v in seeded.items() if k not in ("tokens", "centre_vehicles")},
            "routes": routes,
            "target_p95_ms": 50.0,
        }
    raise AssertionError("unreachable")


def _seed(conn: psycopg.Connection, cfg: ApiBenchConfig) -> dict[str, Any]:
    qcfg = QueryBenchConfig(
        conn.info.dsn, vehicles=cfg.vehicles, fleets=cfg.fleets, hours=cfg.hours, step_s=cfg.step_s
    )
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    end = now - dt.timedelta(seconds=now.second % cfg.step_s, microseconds=now.microsecond)
    start = end - dt.timedelta(hours=cfg.hours)
    ids = register_fleet(conn, qcfg)
    conn.execute("SELECT fleet_ensure_partitions(%s::date, %s::date + 1)", (start, end))
    rows = load_telemetry(conn, ids, start, end, cfg.step_s, 1)
    conn.execute("ANALYZE telemetry")
    refresh_pending(conn)
    (samples,) = conn.execute(  # type: ignore[misc]
        "SELECT count(speed_kmh) + count(latitude_deg) + count(longitude_deg) + count(fuel_level_pct)"
        " FROM telemetry WHERE vehicle_id LIKE 'BENCHQ-%'"
    ).fetchone()
    with conn.transaction():
        for c in range(cfg.centres):
            conn.execute(
                "INSERT INTO service_centres (service_centre_id, name, lat, lon) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (f"benchapi-sc-{c}", f"bench centre {c}", 48.1 + c / 100, 11.5),
            )
        conn.execute(
            "UPDATE vehicles v SET service_centre_id = 'benchapi-sc-' || (x.n %% %s)"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS x(id, n) WHERE v.vehicle_id = x.id",
            (cfg.centres, ids),
        )
        alarms = conn.execute(
            "INSERT INTO alarms (vehicle_id, fault, severity, raised_at, since_at, updated_at, explanation,"
            " evidence, thresholds_version)"
            " SELECT x.id, f.fault, (ARRAY['CRITICAL','MAJOR','MINOR','WARNING'])[1 + (x.n + f.k) %% 4],"
            " %(end)s - make_interval(mins => ((x.n * 7 + f.k) %% 1440)::int), NULL, %(end)s, 'bench alarm',"
            " jsonb_build_object('values', jsonb_build_array(x.n, f.k)), 'bench/1'"
            " FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS x(id, n)"
            " CROSS JOIN unnest(%(faults)s::text[]) WITH ORDINALITY AS f(fault, k)"
            " WHERE (x.n + f.k) %% 7 = 0",
            {"end": end, "ids": ids, "faults": list(ALARM_FAULTS)},
        ).rowcount
        conn.execute(
            "INSERT INTO alarm_history (alarm_id, change, at, severity, cause)"
            " SELECT alarm_id, 'raised', raised_at, severity, 'bench' FROM alarms a"
            " WHERE a.vehicle_id LIKE 'BENCHQ-%' ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO hazard_sites (kind, lat, lon, state, events, vehicles, passes, confidence,"
            " first_event_at, last_event_at, thresholds_version)"
            " SELECT (ARRAY['pothole','slippery','junction'])[1 + i %% 3], 48 + random() * 1.3,"
            " 11 + random() * 0.4, 'confirmed', 5 + i %% 20, 3 + i %% 10, 20 + i %% 50,"
            " 0.5 + (i %% 50) / 100.0, %s, %s, 'benchapi'"
            " FROM generate_series(1, %s) i",
            (start, end, cfg.hazard_sites),
        )
    tokens = {
        "admin": create_token(conn, f"benchapi-admin-{time.time_ns()}", "admin"),
        "centre": create_token(conn, f"benchapi-centre-{time.time_ns()}", "service_centre", CENTRE),
        "operator": create_token(
            conn, f"benchapi-operator-{time.time_ns()}", "fleet_operator", fleet_ids=[FLEET]
        ),
    }
    centre_vehicles = [
        r[0]
        for r in conn.execute(
            "SELECT vehicle_id FROM vehicles WHERE service_centre_id = %s AND vehicle_id LIKE 'BENCHQ-%%'",
            (CENTRE,),
        ).fetchall()
    ]
    return {
        "vehicles": len(ids),
        "telemetry_rows": rows,
        "samples": int(samples),
        "alarms": alarms,
        "hazard_sites": cfg.hazard_sites,
        "centre_vehicles": centre_vehicles,
        "tokens": tokens,
    }


def _delete(db_url: str) -> None:
    statements = (
        *(f"DELETE FROM {t} WHERE vehicle_id LIKE 'BENCHQ-%'" for t in _VEHICLE_TABLES),
        "DELETE FROM api_tokens WHERE name LIKE 'benchapi-%'",
        "DELETE FROM service_centres WHERE service_centre_id LIKE 'benchapi-%'",
        "DELETE FROM hazard_sites WHERE thresholds_version = 'benchapi'",
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        for statement in statements:
            with contextlib.suppress(psycopg.Error):
                conn.execute(statement)


_VEHICLE_TABLES = ("telemetry", "telemetry_10m", "ingest_batches", "vehicle_latest", "vehicles")


def _start_api(db_url: str, port: int, cfg: ApiBenchConfig, log: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        FLEET_DATABASE_URL=db_url,
        FLEET_API_POOL_SIZE=str(cfg.pool_size),
        FLEET_API_MAX_WAITING=str(cfg.max_waiting),
    )
    command = [sys.executable, "-m", "fleet.cli", "api", "--port", str(port), "--workers", str(cfg.workers)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_for_paths(base: str, proc: subprocess.Popen[bytes]) -> set[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fleet api exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return set(httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"])
        time.sleep(0.2)
    raise RuntimeError("fleet api did not answer /health within 60 s")


async def _load_phase(
    base: str, path: str, route: Route, token: str, seeded: dict[str, Any], clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    db_ms: list[float] = []
    queue_ms: list[float] = []
    statuses: Counter[int] = Counter()
    host, port = base.removeprefix("http://").rsplit(":", 1)
    stop_at = time.perf_counter() + seconds

    async def client(k: int) -> None:
        rng = random.Random(k)
        connection = Connection(host, int(port), token)
        try:
            while time.perf_counter() < stop_at:
                path_params, query = route.fill(rng, seeded)
                t0 = time.perf_counter()
                try:
                    response = await connection.get(path.format(**path_params), query)
                except (OSError, ProtocolError):
                    statuses[0] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[response.status] += 1
                timing = _server_timing(response.headers.get("server-timing", ""))
                if "db" in timing:
                    db_ms.append(timing["db"])
                    queue_ms.append(timing.get("queue", 0.0))
        finally:
            await connection.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 1),
        **_quantiles_ms(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "db_p50_ms": _q(db_ms, 0.5),
        "db_p95_ms": _q(db_ms, 0.95),
        "queue_p50_ms": _q(queue_ms, 0.5),
        "queue_p95_ms": _q(queue_ms, 0.95),
    }


def _server_timing(header: str) -> dict[str, float]:
    timing = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        with contextlib.suppress(ValueError):
            timing[name] = float(rest)
    return timing


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def _quantiles_ms(seconds: list[float]) -> dict[str, float | None]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": _q(ms, 0.5),
        "p95_ms": _q(ms, 0.95),
        "p99_ms": _q(ms, 0.99),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
    }


def _brief(phase: dict[str, Any]) -> dict[str, Any]:
    return {k: phase[k] for k in ("requests_per_s", "p50_ms", "p95_ms", "db_p50_ms", "statuses")}


def _postgres_processes(db_url: str) -> list[psutil.Process]:
    """The PostgreSQL server's processes when it runs on this machine (found by its postmaster's
    data directory); empty for a remote one."""
    with psycopg.connect(db_url) as conn:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(pid).parent()
        if parent is not None:
            return [parent]
    return []


class _CpuMeter:
    """CPU seconds of the API's processes, PostgreSQL's and this one, from now to `read`."""

    def __init__(self, api: subprocess.Popen[bytes], postgres: list[psutil.Process]) -> None:
        self._groups = {
            "api": [psutil.Process(api.pid)],
            "postgres": postgres,
        }
        self._me = psutil.Process()  # the load generator: this process alone (the API is its child)
        self._start = self._sample()

    def _sample(self) -> dict[str, float]:
        totals = {}
        for name, roots in self._groups.items():
            total = 0.0
            for root in roots:
                with contextlib.suppress(psutil.Error):
                    for proc in [root, *root.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            t = proc.cpu_times()
                            total += t.user + t.system
            totals[name] = total
        mine = self._me.cpu_times()
        totals["load_generator"] = mine.user + mine.system
        return totals

    def read(self) -> dict[str, float]:
        end = self._sample()
        return {name: round(end[name] - self._start[name], 2) for name in end}
