"""`fleet demo`: the whole pipeline on one machine, end to end, with a summary at the end.

Owns: the demo's scenario and what it adds to the shared run (`fleet.pipeline_run`): an admin
token, the HTTP API served from this process, and reading the fleet back through it. The run
starts (or uses) PostgreSQL and the broker, runs ingest here, drives a simulated fleet through
the real agent publishing code (telemetry and DTC messages), and waits until everything the
broker acknowledged is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import uvicorn
from rich.console import Console

from api import create_app
from api.auth import create_token
from contract import accounts
from fleet.embedded import Servers
from fleet.pipeline_run import run_through_ingest, started_servers
from fleet.settings import FleetSettings
from localservers.embedded import free_port
from simulators import FleetSimulation, city_grid
from simulators.fleet_registry import SimulatedRegistry, build_registry
from simulators.scenario import FaultSpec, HazardSpec, NetworkSpec, OtaSpec, Scenario

DEMO_BACKEND_EVERY_S = 10.0  # the backend's rounds, in simulated (here: real) seconds


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
    dtc_messages: int  # DTC messages the broker acknowledged (a vehicle's whole set, on each change)
    dtc_reports_stored: int
    vehicles_registered: int  # in the registry, with model, fleet, service centre and owner
    vehicles_with_software: int  # whose check-in's software inventory was stored
    service_centres: int
    api_centres_see_own_vehicles: bool  # each centre's token lists exactly the vehicles assigned to it
    analysis: dict = dataclasses.field(default_factory=dict)  # fault analysis after ingest: alarms by fault
    # The closed loop (fleet.sim_backend): remedies, campaigns, installs, visits, notifications.
    # None when FLEET_DATABASE_URL is set: its backend would act on every vehicle of that database.
    closed_loop: dict | None = None

    @property
    def ok(self) -> bool:
        """Everything published was stored, nothing was dead-lettered, every vehicle is registered
        and reported its software, and each service centre sees exactly its own vehicles."""
        return (
            self.samples_stored == self.samples_published > 0
            and self.dtc_reports_stored == self.dtc_messages
            and self.dead_letters == 0
            and self.vehicles_registered == self.vehicles_with_software == self.vehicles
            and self.api_centres_see_own_vehicles
            and (self.closed_loop is None or self.closed_loop["backend_errors"] == 0)
        )


def run_demo(
    settings: FleetSettings, *, vehicles: int, duration_s: float, seed: int, console: Console
) -> DemoSummary:
    """Run the demo. Raises RuntimeError when a part fails to start."""
    with contextlib.ExitStack() as stack:
        fresh = None
        if not settings.database_url:
            fresh = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-demo-"))) / "pg"
        srv, report = stack.enter_context(started_servers(settings, console, fresh_data_dir=fresh))
        with psycopg.connect(srv.database_url) as conn:
            token = create_token(conn, f"demo-{time.time_ns()}", "admin")
            conn.commit()
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
    api_port = free_port()
    api = uvicorn.Server(
        uvicorn.Config(
            create_app(srv.database_url), host="127.0.0.1", port=api_port, log_level="warning", lifespan="on"
        )
    )
    api_task = asyncio.create_task(api.serve())
    try:
        while not api.started:
            if api_task.done():
                api_task.result()  # raises what stopped it
                raise RuntimeError("the API stopped before it started")
            await asyncio.sleep(0.05)
        console.log(f"API on http://127.0.0.1:{api_port}")
        fleet = FleetSimulation(
            demo_scenario(vehicles, duration_s, seed), city_grid(), float(int(time.time()))
        )
        done, stored = await run_through_ingest(
            srv,
            settings,
            fleet,
            ingest_client_id=accounts.INGEST_DEMO,
            speedup=1.0,
            console=console,
            loop_every_s=None if settings.database_url else DEMO_BACKEND_EVERY_S,
        )
        visible, latest = await _check_api(api_port, token, fleet.vehicle_ids[0])
        registry = build_registry(fleet)
        scoped = await _check_centre_scoping(api_port, srv.database_url, registry)
    finally:
        api.should_exit = True
        await api_task
    return DemoSummary(
        vehicles=vehicles,
        duration_s=duration_s,
        samples_published=done.samples_acked,
        samples_stored=stored.samples,
        batches_published=done.batches_sent,
        wire_bytes=done.wire_bytes,
        dead_letters=stored.dead_letters,
        storage_mode=mode,
        api_vehicles_visible=visible,
        api_latest_signals=latest,
        wall_time_s=round(time.monotonic() - started, 2),
        dtc_messages=done.stats.dtc_messages,
        dtc_reports_stored=stored.dtc_reports,
        vehicles_registered=stored.vehicles_registered,
        vehicles_with_software=stored.vehicles_with_software,
        service_centres=len(registry.service_centres),
        api_centres_see_own_vehicles=scoped,
        analysis=stored.analysis,
        closed_loop=stored.closed_loop,
    )


def demo_scenario(vehicles: int, duration_s: float, seed: int) -> Scenario:
    """The simulator's city with a few faults and hazards, and a perfect network: the demo checks
    that every published sample is stored, so no outages, duplicates or clock skew here. Every
    vehicle starts on the road, and parked ones are sampled every second too, so that every
    vehicle shows up within seconds and the faults raise their codes at once: a misfiring engine
    keeps its code, worn brake pads are replaced half-way (their code clears), a firmware bug on
    a tenth of the fleet keeps its code until the closed loop's campaign patches it. Installs are
    quick (seconds), so that a few minutes show them committing."""
    faults = (
        (
            FaultSpec("misfire", 1, onset_s=0.0, params={"rate_per_h": 3600.0}),
            # Enough buggy vehicles for the fleet firmware test to single the version out, so that
            # the closed loop offers its cure.
            FaultSpec("firmware_bug", max(2, vehicles // 10), onset_s=0.0, params={"rate_per_h": 1800.0}),
            FaultSpec(
                "brake_pad_wear", 1, onset_s=0.0, repaired_at_s=duration_s / 2, params={"start_mm": 1.9}
            ),
            FaultSpec("tyre_slow_leak", 1, onset_s=0.0),
        )
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
        initially_driving_share=1.0,
        faults=faults,
        hazards=(HazardSpec("pothole", 3), HazardSpec("slippery", 1), HazardSpec("junction", 1)),
        # Quick installs, so that a longer demo (--duration 300) shows patches committing.
        ota=OtaSpec(
            download_s=(5.0, 20.0),
            install_s=(10.0, 30.0),
            health_check_s=10.0,
            consent_delay_s=(5.0, 30.0),
            min_parked_s=10.0,
        ),
        backend_every_s=DEMO_BACKEND_EVERY_S,
        network=NetworkSpec(
            outage_vehicle_share=0.0,
            duplicate_batch_probability=0.0,
            clock_skew_sd_s=0.0,
            large_clock_skew_share=0.0,
        ),
    )


async def _check_api(port: int, token: str, vehicle_id: str) -> tuple[int, int]:
    """Read the fleet back through the HTTP API, as a client would: every page of the vehicle list,
    and one vehicle's latest state."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
        listed = len(await _all_vehicles(client, headers))
        latest = (await client.get(f"/v1/vehicles/{vehicle_id}/latest")).raise_for_status().json()
    return listed, len(latest["signals"])


async def _all_vehicles(client: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    """The ids of every vehicle the token may see, page by page (the cursor of each page)."""
    seen: set[str] = set()
    params: dict[str, str | int] = {"limit": 500}
    while True:
        page = (await client.get("/v1/vehicles", params=params, headers=headers)).raise_for_status().json()
        seen |= {v["vehicle_id"] for v in page["items"]}
        if page["next_cursor"] is None:
            return seen
        params["cursor"] = page["next_cursor"]


def summary_dict(summary: DemoSummary) -> dict:
    return dataclasses.asdict(summary)


async def _check_centre_scoping(port: int, database_url: str, registry: SimulatedRegistry) -> bool:
    """Give each service centre a token and list its vehicles through the API: True when every
    centre sees exactly the vehicles of this run that the registry assigns to it (on a database
    that earlier runs used too, it also sees theirs)."""
    tokens = await asyncio.to_thread(_centre_tokens, database_url, registry)
    run = {v.vehicle_id for v in registry.vehicles}
    ok = True
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for centre in registry.service_centres:
            headers = {"Authorization": f"Bearer {tokens[centre.service_centre_id]}"}
            seen = await _all_vehicles(client, headers)
            centre_id = centre.service_centre_id
            mine = {v.vehicle_id for v in registry.vehicles if v.service_centre_id == centre_id}
            ok = ok and seen & run == mine
    return ok


def _centre_tokens(database_url: str, registry: SimulatedRegistry) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        return {
            c.service_centre_id: create_token(
                conn, f"demo-{c.service_centre_id}-{time.time_ns()}", "service_centre", c.service_centre_id
            )
            for c in registry.service_centres
        }
