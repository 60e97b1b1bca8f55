"""One run of the simulated fleet through the pipeline, shared by `fleet demo` and `fleet simulate`.

Owns: the steps both commands take, in order: start (or use) the servers and migrate the schema
(`started_servers`); run ingest in this process; drive the simulation through the agent's
publishing code, DTC messages included, with a progress bar (`drive`); wait until every
acknowledged sample and DTC message is stored; count what was published, stored and
dead-lettered (`run_through_ingest`). A step every run needs goes here once. What each command
does around it (the demo's API check, the simulator's report) stays with the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from contract import accounts
from contract.endpoint import MqttEndpoint
from edge_agent.fleet_publishing import MqttPublisher
from fleet.embedded import Servers, servers
from fleet.runtime import count_dead_letters, poll_counts
from fleet.settings import FleetSettings
from ingest import IngestConfig, IngestService, MigrationReport, TelemetryStore, migrate
from registry import import_records
from simulators.engine import FleetSimulation, StepOutput
from simulators.feeder import FeedConfig, FeedStats, feed
from simulators.fleet_registry import build_registry
from simulators.runner import VehiclePublishers

LEDGER_SQL = (
    "SELECT coalesce(sum(n_samples), 0), count(*) FROM ingest_batches "
    "WHERE vehicle_id = ANY(%s) AND received_at >= to_timestamp(%s)"
)
DTC_SQL = "SELECT count(*) FROM dtc_reports WHERE vehicle_id = ANY(%s) AND received_at >= to_timestamp(%s)"
SOFTWARE_SQL = (
    "SELECT count(DISTINCT vehicle_id) FROM vehicle_software "
    "WHERE vehicle_id = ANY(%s) AND reported_at >= to_timestamp(%s)"
)
ACK_TIMEOUT_S = 120.0
DTC_ACK_TIMEOUT_S = 30.0
STORE_TIMEOUT_S = 120.0
DTC_STORE_TIMEOUT_S = 30.0
SUBSCRIBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PublishTargets:
    """Where the simulated vehicles publish: through the simulator's gateway account (one connection
    for the fleet, and one for DTC messages), or each vehicle on its own connection to `broker`
    with a password derived from `fleet_secret` (DTC messages then need a gateway and are skipped)."""

    gateway: MqttEndpoint | None
    broker: MqttEndpoint | None = None
    fleet_secret: str | None = None

    @classmethod
    def of(cls, srv: Servers) -> PublishTargets:
        return cls(srv.simulator_endpoint, srv.ingest_endpoint, srv.fleet_secret)


@dataclass(frozen=True)
class Drive:
    """What a drive published, as the broker acknowledged it."""

    stats: FeedStats
    samples_acked: int
    batches_sent: int
    wire_bytes: int
    all_acked: bool
    wall_s: float
    cpu_s: float
    simulated_s: float

    @property
    def unique_samples(self) -> int:
        """Acknowledged samples without the redelivered duplicates: what ingest stores."""
        return self.samples_acked - self.stats.duplicate_samples

    def summary(self) -> dict[str, Any]:
        """The publishing half of a run's summary (field names shared by the commands' --json)."""
        s = self.stats
        return {
            "samples_published": self.samples_acked,
            "duplicate_samples": s.duplicate_samples,
            "samples_published_unique": self.unique_samples,
            "batches_published": self.batches_sent,
            "duplicate_batches": s.duplicates,
            "backlogged_batches": s.backlogged_batches,
            "dtc_messages": s.dtc_messages,
            "checkins": s.checkins,
            "wire_bytes": self.wire_bytes,
            "simulated_s": self.simulated_s,
            "wall_time_s": round(self.wall_s, 2),
            "cpu_time_s": round(self.cpu_s, 2),
            "realtime_factor": round(self.simulated_s / max(self.wall_s, 1e-9), 2),
            "max_behind_schedule_s": round(s.max_lag_s, 2),
        }


@dataclass(frozen=True)
class Stored:
    """What ingest committed for the run's vehicles since the run began."""

    samples: int
    batches: int
    dtc_reports: int
    dead_letters: int
    vehicles_registered: int  # the fleet's registry rows (simulators.fleet_registry), written first
    vehicles_with_software: int  # vehicles whose reported software inventory ingest stored
    analysis: dict[str, Any] = dataclasses.field(default_factory=dict)  # `fleet analyze` after ingest
    closed_loop: dict[str, Any] | None = None  # the backend loop's summary (fleet.sim_backend), if run
    ota_truth: dict[str, Any] | None = None  # the simulator's `ClosedLoop.truth()`, for the ground truth

    def summary(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            **({"closed_loop": self.closed_loop} if self.closed_loop is not None else {}),
            "samples_stored": self.samples,
            "batches_stored": self.batches,
            "dtc_reports_stored": self.dtc_reports,
            "dead_letters": self.dead_letters,
            "vehicles_registered": self.vehicles_registered,
            "vehicles_with_software": self.vehicles_with_software,
        }


@contextlib.contextmanager
def started_servers(
    settings: FleetSettings, console: Console, *, fresh_data_dir: Path | None = None
) -> Iterator[tuple[Servers, MigrationReport]]:
    """The configured servers, or embedded ones started here, with the schema migrated. Raises
    RuntimeError when an embedded server fails to start, psycopg.Error when a migration fails."""
    embedded = "embedded" if not settings.database_url else "external"
    console.log(f"starting servers ({embedded} PostgreSQL)")
    with servers(settings, fresh_data_dir=fresh_data_dir) as srv:
        with psycopg.connect(srv.database_url) as conn:
            report = migrate(conn)
        console.log(f"schema at version {report.current_version} ({report.mode.value} storage)")
        yield srv, report


async def run_through_ingest(
    srv: Servers,
    settings: FleetSettings,
    sim: FleetSimulation,
    *,
    ingest_client_id: str,
    speedup: float,
    console: Console,
    on_step: Callable[[FleetSimulation, StepOutput], None] | None = None,
    loop_every_s: float | None = None,
) -> tuple[Drive, Stored]:
    """Register the fleet (models, fleets, service centres, owners, vehicles), run ingest in this
    process, drive `sim` through it, and wait until it stored everything the broker acknowledged
    (or the timeouts pass: the counts then show the shortfall). With `loop_every_s`, the loop is
    closed (`fleet.sim_backend`): the vehicles answer update offers and keep booked visits, and the
    backend (analysis, remedies, campaigns, reports, notifications) runs every `loop_every_s`
    simulated seconds on the simulation's clock. Raises RepositoryError or SigningKeyError when
    the run's OTA repository cannot be made."""
    since_unix_s = time.time() - 1.0  # a second's margin between this clock and the database's
    registered = await asyncio.to_thread(register_fleet, srv.database_url, sim, console)
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        backend = None
        if loop_every_s is not None:
            backend = await asyncio.to_thread(_closed_loop_backend, srv, sim, loop_every_s, stack, console)
        async with _ingest_running(srv, settings, ingest_client_id):
            try:
                done = await asyncio.to_thread(
                    drive,
                    sim,
                    PublishTargets.of(srv),
                    speedup=speedup,
                    console=console,
                    on_step=on_step,
                    stop=stop,
                    backend=backend,
                )
            except BaseException:  # cancelled (Ctrl-C): the drive's thread stops at its next step
                stop.set()
                raise
            stored = await _wait_stored(srv.database_url, sim, done, since_unix_s, registered)
            if backend is not None:  # a last round over what the run's end stored
                await asyncio.to_thread(backend.step, sim.t_s)
        await asyncio.to_thread(import_network, srv.database_url, sim)
        if backend is not None:
            from simulators.ground_truth import ground_truth

            now = dt.datetime.fromtimestamp(sim.unix_s_at(sim.t_s), dt.UTC)
            analysis = await asyncio.to_thread(
                analyse_run, srv.database_url, sim.vehicle_ids, now=now, catalogue=backend.catalogue
            )
            truth = backend.loop.truth()
            loop_summary = await asyncio.to_thread(backend.summary, ground_truth(sim, truth))
            stored = dataclasses.replace(stored, closed_loop=loop_summary, ota_truth=truth)
        else:
            analysis = await asyncio.to_thread(analyse_run, srv.database_url, sim.vehicle_ids)
    stored = dataclasses.replace(stored, analysis=analysis)
    return done, stored


def _closed_loop_backend(
    srv: Servers, sim: FleetSimulation, every_s: float, stack: contextlib.ExitStack, console: Console
) -> Any:
    """The simulator's closed loop and the backend that drives it, with the run's OTA repository in
    a work directory removed after the run (it holds the run's signing keys), served on a loopback
    port for the run (the offers name it; the simulated vehicles download nothing)."""
    import tempfile

    from fleet.sim_backend import SimBackend, run_catalogue, run_repository
    from ota.server import serving_in_thread
    from simulators.closed_loop import ClosedLoop

    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-ota-")))
    repo_dir = run_repository(work, sim)
    repository_url = stack.enter_context(serving_in_thread(repo_dir))
    loop = ClosedLoop(sim)
    backend = SimBackend(
        srv.database_url,
        sim,
        loop,
        repo_dir=repo_dir,
        repository_url=repository_url,
        ota_endpoint=srv.ingest_endpoint,
        notify_endpoint=srv.ingest_endpoint,
        catalogue=run_catalogue(sim),
        every_s=every_s,
    )
    stack.callback(backend.close)
    keys = backend.register_keys()
    console.log(f"closed loop: {keys} report keys registered, backend every {every_s:.0f} simulated s")
    return backend


def import_network(database_url: str, sim: FleetSimulation) -> dict[str, int]:
    """Load the simulated road network into `road_segments`, so the driving scores know each road's
    speed limit (what `fleet roads import network.geojson` does; idempotent)."""
    from analytics.driving.roads import parse_road_geojson
    from analytics.road_store import import_road_lines
    from simulators.network_export import network_geojson

    with psycopg.connect(database_url) as conn:
        return vars(import_road_lines(conn, parse_road_geojson(network_geojson(sim.network))))


def analyse_run(
    database_url: str,
    vehicle_ids: list[str],
    *,
    now: dt.datetime | None = None,
    catalogue: Any = None,
) -> dict[str, Any]:
    """Run the fault analysis over what ingest stored (all of it is committed: no settle time), then
    the remedy engine (at `now`, default the wall clock, with `catalogue`, default the shipped one;
    campaigns auto-approved when `now` is given: a closed-loop run), and summarise the run's alarms
    (by fault, how many were raised and how many are active now), the remedies decided, and the
    hazards on the map by kind."""
    from analytics.job import run_analysis
    from analytics.suite import default_detectors
    from remedies.catalogue import load_catalogue
    from remedies.run import run_remedies

    with psycopg.connect(database_url) as conn:
        report = run_analysis(conn, default_detectors(), settle_s=0.0)
        remedy_report = run_remedies(
            conn, catalogue or load_catalogue(), now=now, auto_approve_campaigns=now is not None
        )
        remedies = conn.execute(
            "SELECT kind, status, count(*) FROM remedies WHERE vehicle_id = ANY(%s) GROUP BY kind, status"
            " ORDER BY kind, status",
            (vehicle_ids,),
        ).fetchall()
        rows = conn.execute(
            "SELECT fault, count(*), count(*) FILTER (WHERE cleared_at IS NULL) FROM alarms"
            " WHERE vehicle_id = ANY(%s) GROUP BY fault ORDER BY fault",
            (vehicle_ids,),
        ).fetchall()
        on_map: dict[str, int] = dict(
            conn.execute(
                "SELECT kind, count(*) FROM hazard_sites WHERE state = 'confirmed' GROUP BY kind"
            ).fetchall()
        )
    return {
        "findings": report.findings,
        "driving": report.driving,
        "alarms": {fault: {"raised": n, "active": active} for fault, n, active in rows},
        "software_issues": [
            {k: issue[k] for k in ("ecu", "version", "code", "cure_version", "p_value")}
            for issue in report.software_issues
        ],
        "hazards_on_map": on_map,
        "remedies": {
            "by_kind_and_status": {f"{kind}:{status}": n for kind, status, n in remedies},
            "visits_booked": remedy_report.visits_booked,
            "visits_late": remedy_report.visits_late,
            "visits_unbookable": remedy_report.visits_unbookable,
            "campaigns_proposed": len(remedy_report.campaigns_created),
            "patches_waiting_for_a_cure": remedy_report.patches_waiting,
        },
    }


def register_fleet(database_url: str, sim: FleetSimulation, console: Console) -> int:
    """Write the simulated fleet into the registry (idempotent); how many vehicles it holds. A row
    the registry refuses (e.g. a VIN an unrelated vehicle already has) is logged, not fatal."""
    fleet = build_registry(sim)
    with psycopg.connect(database_url) as conn:
        report = import_records(conn, fleet.records)
    for problem in report.problems[:5]:
        console.log(f"[yellow]registry refused {problem.describe()}")
    counts = report.counts["vehicles"]
    vehicles = counts.inserted + counts.updated + counts.unchanged
    console.log(f"registered {vehicles} vehicles, {len(fleet.service_centres)} service centres")
    return vehicles


def drive(
    sim: FleetSimulation,
    targets: PublishTargets,
    *,
    speedup: float,
    console: Console,
    on_step: Callable[[FleetSimulation, StepOutput], None] | None = None,
    stop: threading.Event | None = None,
    backend: Any = None,
) -> Drive:
    """Connect the fleet's publishers, feed the whole scenario with a progress bar, and wait for
    every PUBACK. Setting `stop` ends the drive early. With `backend` (fleet.sim_backend.SimBackend)
    the loop is closed: the simulator's offer listener subscribes before the drive, the vehicles'
    update reports go out with the DTC messages, and the backend steps after each simulation step.
    Raises PublishError (edge_agent.fleet_publishing) when the broker refuses a publish or a login,
    LinkError (simulators.ota_link) when the offer listener cannot subscribe, ValueError for a
    closed loop without a gateway account."""
    pubs = VehiclePublishers.connect(
        sim.vehicle_ids, gateway=targets.gateway, broker=targets.broker, fleet_secret=targets.fleet_secret
    )
    dtc = None
    if targets.gateway is not None:
        dtc = MqttPublisher(targets.gateway, accounts.SIMULATOR_DTC)
        dtc.connect()
    else:
        console.log("[yellow]no simulator gateway account: DTC messages are not published")
    listener = None
    if backend is not None:
        from simulators.ota_link import OfferListener

        if targets.gateway is None:
            raise ValueError("a closed loop needs the simulator's gateway account")
        listener = OfferListener(targets.gateway, backend.loop)
        listener.connect()
        backend.listener_stats = listener.stats
    stop = stop or threading.Event()
    sc = sim.scenario
    wall0, cpu0 = time.monotonic(), time.process_time()
    try:
        with _progress(console) as progress:
            task = progress.add_task("sim", total=sc.duration_s, n=sim.n_vehicles)

            def step_done(s: FleetSimulation, out: StepOutput) -> None:
                if on_step is not None:
                    on_step(s, out)
                if backend is not None:
                    backend.on_step(s, out)
                progress.update(task, completed=out.t_s)

            stats = feed(
                sim,
                pubs,
                FeedConfig(sc.duration_s, sc.batch_interval_s, speedup=speedup),
                publish_message=dtc.publish_message if dtc else None,
                on_step=step_done,
                should_stop=stop.is_set,
                closed_loop=backend.loop if backend is not None else None,
            )
        acked = pubs.wait_acked(ACK_TIMEOUT_S) and (dtc.wait_acked(DTC_ACK_TIMEOUT_S) if dtc else True)
        if not acked:
            console.log("[yellow]some messages were not acknowledged by the broker within the timeout")
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        pubs.close()
        if dtc:
            dtc.close()
        if listener is not None:
            listener.close()
    return Drive(
        stats=stats,
        samples_acked=pubs.samples_acked(),
        batches_sent=pubs.batches_sent(),
        wire_bytes=pubs.bytes_sent(),
        all_acked=acked,
        wall_s=time.monotonic() - wall0,
        cpu_s=time.process_time() - cpu0,
        simulated_s=stats.steps * sim.dt_s,
    )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("simulating {task.fields[n]} vehicles"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s simulated"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@contextlib.asynccontextmanager
async def _ingest_running(srv: Servers, settings: FleetSettings, client_id: str) -> AsyncIterator[None]:
    """An ingest service on this event loop, subscribed before the body runs, stopped after it."""
    store = TelemetryStore(srv.database_url, unknown_vehicles=settings.ingest_unknown_vehicles)
    await asyncio.to_thread(store.ensure_partitions)
    service = IngestService(
        srv.ingest_endpoint, store, IngestConfig(settings.ingest_flush_interval_s, client_id=client_id)
    )
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.subscribed.wait(), SUBSCRIBE_TIMEOUT_S)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()


async def _wait_stored(
    database_url: str, sim: FleetSimulation, done: Drive, since_unix_s: float, registered: int
) -> Stored:
    """Poll the batch ledger, the DTC reports and the software inventories until they hold what
    the broker acknowledged."""
    params = (sim.vehicle_ids, since_unix_s)
    samples, batches = await poll_counts(
        database_url, LEDGER_SQL, params, done.unique_samples, STORE_TIMEOUT_S
    )
    (dtc_reports,) = await poll_counts(
        database_url, DTC_SQL, params, done.stats.dtc_messages, DTC_STORE_TIMEOUT_S
    )
    reporting = sim.n_vehicles if done.stats.checkins else 0
    (with_software,) = await poll_counts(database_url, SOFTWARE_SQL, params, reporting, DTC_STORE_TIMEOUT_S)
    dead = await asyncio.to_thread(count_dead_letters, database_url, since_unix_s)
    return Stored(samples, batches, dtc_reports, dead, registered, with_software)
