"""`fleet demo`: the whole pipeline on one machine, end to end, with a summary at the end.

Owns: orchestration only. It starts (or uses) PostgreSQL and the broker, runs ingest and the API in
this process, drives a simulated fleet through the real agent publishing code, waits until every
acknowledged sample is stored, and reads the result back through SQL and through the HTTP API.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from api import create_app
from api.auth import create_token
from contract import accounts
from contract.signals import SIGNALS
from fleet.embedded import Servers, servers
from fleet.runtime import count_dead_letters, poll_counts
from fleet.settings import FleetSettings
from ingest import IngestConfig, IngestService, TelemetryStore, migrate
from localservers.embedded import free_port
from simulators import FleetSimulation, VehiclePublishers, city_grid
from simulators.feeder import FeedConfig, feed
from simulators.scenario import FaultSpec, HazardSpec, NetworkSpec, Scenario

STORED_SAMPLES_SQL = (
    "SELECT coalesce(sum(num_nonnulls({cols})), 0) FROM telemetry "
    "WHERE vehicle_id = ANY(%s) AND ts BETWEEN %s AND %s"
).format(cols=", ".join(s.column for s in SIGNALS))


@dataclass
class DemoSummary:
    vehicles: int
    duration_s: float
    samples_published: int
    samples_stored: int
    batches_published: int
    wire_bytes: int
    dead_letters: int
    storage_mode: str
    api_vehicles_visible: int
    api_latest_signals: int
    wall_time_s: float


def run_demo(
    settings: FleetSettings, *, vehicles: int, duration_s: float, seed: int, console: Console
) -> DemoSummary:
    """Run the demo. Raises RuntimeError when a part fails to start."""
    with contextlib.ExitStack() as stack:
        fresh = None
        if not settings.database_url:
            fresh = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-demo-"))) / "pg"
        console.log("starting servers" + (" (embedded PostgreSQL and amqtt)" if fresh else ""))
        srv = stack.enter_context(servers(settings, fresh_data_dir=fresh))
        with psycopg.connect(srv.database_url) as conn:
            report = migrate(conn)
            token = create_token(conn, f"demo-{time.time_ns()}", "admin")
            conn.commit()
        console.log(f"schema at version {report.current_version} ({report.mode.value} storage)")
        return asyncio.run(_run(srv, settings, token, report.mode.value, vehicles, duration_s, seed, console))
    raise AssertionError("unreachable")


async def _run(
    srv: Servers,
    settings: FleetSettings,
    token: str,
    mode: str,
    vehicles: int,
    duration_s: float,
    seed: int,
    console: Console,
) -> DemoSummary:
    started = time.monotonic()
    run_start = time.time()
    store = TelemetryStore(srv.database_url, unknown_vehicles=settings.ingest_unknown_vehicles)
    await asyncio.to_thread(store.ensure_partitions)
    ingest = IngestService(
        srv.ingest_endpoint,
        store,
        IngestConfig(settings.ingest_flush_interval_s, client_id=accounts.INGEST_DEMO),
    )
    ingest_task = asyncio.create_task(ingest.run())
    api_port = free_port()
    api = uvicorn.Server(
        uvicorn.Config(
            create_app(srv.database_url), host="127.0.0.1", port=api_port, log_level="warning", lifespan="on"
        )
    )
    api_task = asyncio.create_task(api.serve())
    try:
        await asyncio.wait_for(ingest.subscribed.wait(), 30)
        while not api.started:
            await asyncio.sleep(0.05)
        console.log(f"ingest subscribed; API on http://127.0.0.1:{api_port}")
        fleet = FleetSimulation(
            demo_scenario(vehicles, duration_s, seed), city_grid(), float(int(time.time()))
        )
        pubs = await asyncio.to_thread(
            VehiclePublishers.connect,
            fleet.vehicle_ids,
            gateway=srv.simulator_endpoint,
            broker=srv.ingest_endpoint,
            fleet_secret=srv.fleet_secret,
        )
        try:
            first_ts, last_ts = await asyncio.to_thread(
                _drive_with_progress, fleet, pubs, duration_s, console
            )
            if not await asyncio.to_thread(pubs.wait_acked, 30):
                console.log("[yellow]some batches were not acknowledged by the broker within 30 s")
            published = pubs.samples_acked()
            batches, wire_bytes = pubs.batches_sent(), pubs.bytes_sent()
        finally:
            pubs.close()
        params = (fleet.vehicle_ids, *_stored_window(first_ts, last_ts))
        (stored,) = await poll_counts(srv.database_url, STORED_SAMPLES_SQL, params, published, timeout_s=60)
        dead = await asyncio.to_thread(count_dead_letters, srv.database_url, run_start)
        visible, latest = await _check_api(api_port, token, fleet.vehicle_ids[0])
    finally:
        ingest_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ingest_task
        api.should_exit = True
        await api_task
        store.close()
    return DemoSummary(
        vehicles=vehicles,
        duration_s=duration_s,
        samples_published=published,
        samples_stored=stored,
        batches_published=batches,
        wire_bytes=wire_bytes,
        dead_letters=dead,
        storage_mode=mode,
        api_vehicles_visible=visible,
        api_latest_signals=latest,
        wall_time_s=round(time.monotonic() - started, 2),
    )


def demo_scenario(vehicles: int, duration_s: float, seed: int) -> Scenario:
    """The simulator's city with a few faults and hazards, and a perfect network: the demo checks
    that every published sample is stored, so no outages, duplicates or clock skew here. Parked
    vehicles are sampled every second too, so that every vehicle shows up within seconds."""
    faults = (
        (FaultSpec("misfire", 1, onset_s=0.0), FaultSpec("tyre_slow_leak", 1, onset_s=0.0))
        if vehicles >= 10
        else ()
    )
    return Scenario(
        name="demo",
        seed=seed,
        vehicles=vehicles,
        duration_s=duration_s,
        batch_interval_s=5.0,
        parked_sample_interval_s=1.0,
        faults=faults,
        hazards=(HazardSpec("pothole", 3), HazardSpec("slippery", 1), HazardSpec("junction", 1)),
        network=NetworkSpec(
            outage_vehicle_share=0.0,
            duplicate_batch_probability=0.0,
            clock_skew_sd_s=0.0,
            large_clock_skew_share=0.0,
        ),
    )


def _drive_with_progress(
    fleet: FleetSimulation, pubs: VehiclePublishers, duration_s: float, console: Console
) -> tuple[int, int]:
    with Progress(
        TextColumn("driving {task.fields[n]} vehicles"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("drive", total=duration_s, n=len(fleet.vehicle_ids))
        stats = feed(
            fleet,
            pubs,
            FeedConfig(duration_s, fleet.scenario.batch_interval_s, speedup=1.0),
            on_step=lambda sim, out: progress.update(task, completed=out.t_s),
        )
        return stats.first_ts_ns, stats.last_ts_ns


def _stored_window(first_ts: int, last_ts: int) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.fromtimestamp(first_ts / 1e9 - 1, dt.UTC),
        dt.datetime.fromtimestamp(last_ts / 1e9 + 1, dt.UTC),
    )


async def _check_api(port: int, token: str, vehicle_id: str) -> tuple[int, int]:
    """Read the fleet back through the HTTP API, as a client would."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
        listing = (await client.get("/vehicles", params={"limit": 1})).raise_for_status().json()
        latest = (await client.get(f"/vehicles/{vehicle_id}/latest")).raise_for_status().json()
    return int(listing["total"]), len(latest["signals"])


def summary_dict(summary: DemoSummary) -> dict:
    return dataclasses.asdict(summary)
