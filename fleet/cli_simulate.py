"""`fleet simulate` and `fleet bench simulator`: the fleet simulator's commands.

Owns: the commands' options, the scenario and the report. The run itself is `fleet.pipeline_run`,
shared with `fleet demo`: with no FLEET_* server URLs, `simulate` starts the embedded PostgreSQL
(persistent, in FLEET_DATA_DIR, so the data can be explored afterwards with `fleet api`) and the
embedded broker, runs ingest in this process, drives the simulated fleet through the real agent
publishing path, and waits until every published batch and DTC message is stored. With
`--no-ingest` it only publishes (to FLEET_MQTT_URL's broker, else a private Mosquitto, else
amqtt). The simulation, ground truth and pictures live in `simulators`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any
from xml.etree import ElementTree

import typer
from rich.console import Console
from rich.table import Table

from fleet.cli_options import JsonOpt, print_report


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the root app and its benchmarks to `fleet bench`."""
    app.command("simulate")(simulate)
    bench_app.command("simulator")(bench_simulator)


def simulate(
    scenario_file: Annotated[
        Path | None, typer.Argument(help="Scenario TOML file (default: the shipped 'city' scenario).")
    ] = None,
    scenario: Annotated[str | None, typer.Option(help="Shipped scenario: city, smoke, standard.")] = None,
    vehicles: Annotated[int | None, typer.Option(min=1, max=200_000, help="Override: vehicles.")] = None,
    duration: Annotated[float | None, typer.Option(min=1, help="Override: simulated seconds.")] = None,
    speedup: Annotated[
        float | None,
        typer.Option(min=0.01, help="Override: times faster than real time (0 < x; inf = flat out)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override: random seed (same seed, same data).")] = None,
    start: Annotated[
        float | None,
        typer.Option(
            help="Simulated start, Unix seconds (default: no sample is stamped ahead of the wall clock)."
        ),
    ] = None,
    osm: Annotated[Path | None, typer.Option(help="Drive on this OpenStreetMap .osm XML file.")] = None,
    report_dir: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("fleet-report"),
    no_ingest: Annotated[
        bool, typer.Option("--no-ingest", help="Only publish; start no database/ingest.")
    ] = False,
    backend_every: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Override: simulated seconds between the backend's rounds (analysis, remedies, OTA"
            " campaigns, reports, notifications) on the run's clock; 0 = no closed loop.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a fleet with faults and hazards through the real pipeline; write ground truth and a report."""
    from fleet.cli import _settings
    from simulators.scenario import builtin_scenario_path, load_scenario

    settings = _settings()
    console = Console(stderr=True)
    path = scenario_file or builtin_scenario_path(scenario or "city")
    try:
        sc = load_scenario(path)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read scenario {path}: {exc}") from None
    sc = sc.with_overrides(
        vehicles=vehicles,
        duration_s=duration,
        speedup=speedup,
        seed=seed,
        start_unix_s=start,
        backend_every_s=backend_every,
    )
    try:
        sim = build_simulation(sc, osm)
    except (OSError, ValueError, ElementTree.ParseError) as exc:
        raise typer.BadParameter(str(exc)) from None
    loop_every_s = None if no_ingest else (sc.backend_every_s or None)
    if loop_every_s and settings.database_url and backend_every is None:
        console.log(
            "[yellow]FLEET_DATABASE_URL is set: the closed loop is off (its backend would act on every"
            " vehicle and campaign of that database; pass --backend-every to run it anyway)"
        )
        loop_every_s = None
    summary = run_simulation(
        settings, sim, report_dir=report_dir, ingest=not no_ingest, console=console, loop_every_s=loop_every_s
    )
    if as_json:
        print(json.dumps(summary))
    else:
        table = Table(title=f"fleetpulse simulate: {sc.name}", show_header=False)
        for key, value in summary.items():
            table.add_row(key, str(value))
        Console().print(table)
    ok = summary["samples_published"] > 0 and summary["dead_letters"] == 0
    if not no_ingest:
        ok = ok and summary["samples_stored"] == summary["samples_published_unique"]
        ok = ok and summary["dtc_reports_stored"] == summary["dtc_messages"]
        ok = ok and summary["vehicles_registered"] == summary["vehicles_with_software"] == summary["vehicles"]
        ok = ok and summary.get("closed_loop", {}).get("backend_errors", 0) == 0
    raise typer.Exit(0 if ok else 1)


def build_simulation(sc: Any, osm: Path | None) -> Any:
    """The fleet on the scenario's generated city or on an OSM file. Raises OSError, ValueError
    (e.g. more hazards or faulty vehicles than the map or fleet can hold) or an XML ParseError."""
    from simulators.engine import FleetSimulation
    from simulators.osm import load_osm
    from simulators.roads import city_grid

    city = sc.city
    network = (
        load_osm(osm)
        if osm
        else city_grid(city.origin_lat_deg, city.origin_lon_deg, blocks=city.blocks, block_m=city.block_m)
    )
    start_unix_s = sc.start_unix_s if sc.start_unix_s is not None else default_start_unix_s(sc, time.time())
    return FleetSimulation(sc, network, start_unix_s)


def default_start_unix_s(sc: Any, now_unix_s: float) -> float:
    """Start so that no sample is ever stamped ahead of the wall clock (ingest refuses batches from
    the future): at speedup s the sample of simulated second t goes out at about now + t/s, so
    starting at now - duration * (1 - 1/s) keeps every stamp at or before its sending time. An
    accelerated run then moves back (less than a day) to the scenario's `start_local_hour`; a
    real-time run (speedup 1) starts now."""
    lead = 1.0 - 1.0 / sc.speedup if sc.speedup > 1 else 0.0
    latest = float(int(now_unix_s - sc.duration_s * lead))
    hour = getattr(sc, "start_local_hour", None)
    if sc.speedup <= 1 or hour is None:
        return latest
    # Back to the latest instant at `hour` local time (the scenario's UTC offset): a replay's
    # traffic then does not depend on the time of day it was launched.
    local_s = latest + sc.utc_offset_h * 3600.0
    return latest - float(int((local_s - hour * 3600.0) % 86_400.0))


def run_simulation(
    settings: Any,
    sim: Any,
    *,
    report_dir: Path,
    ingest: bool,
    console: Console,
    loop_every_s: float | None = None,
) -> dict[str, Any]:
    """Publish the fleet (through ingest into PostgreSQL unless `ingest` is False), then write the
    ground truth and the report. With `loop_every_s` (and `ingest`), the loop is closed: the
    backend runs every `loop_every_s` simulated seconds (`fleet.pipeline_run.run_through_ingest`).
    Raises RuntimeError when a server fails to start."""
    from contract import accounts
    from fleet.cli_analyze import export_alarms
    from fleet.cli_hazards import export_hazards
    from fleet.pipeline_run import run_through_ingest, started_servers
    from simulators.trace import TraceRecorder

    console.log(
        f"{sim.n_vehicles} vehicles, {len(sim.faults.records)} faults, {len(sim.hazards.records)} hazards"
    )
    recorder = TraceRecorder.for_simulation(sim)
    speedup = sim.scenario.speedup
    with contextlib.ExitStack() as stack:
        if ingest:
            # Embedded: a database of this run only, so its analysis and scores are this run's (a
            # hazard map is fleet-wide; a rerun with the same seed reuses the same vehicle ids).
            fresh = None
            if not settings.database_url:
                scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-simulate-"))
                fresh = Path(scratch) / "pg"
            srv, _ = stack.enter_context(started_servers(settings, console, fresh_data_dir=fresh))
            done, stored = asyncio.run(
                run_through_ingest(
                    srv,
                    settings,
                    sim,
                    ingest_client_id=accounts.INGEST_SIMULATE,
                    speedup=speedup,
                    console=console,
                    on_step=recorder.record,
                    loop_every_s=loop_every_s,
                )
            )
            result = {**done.summary(), **stored.summary()}
            ota_truth = stored.ota_truth
            report_dir.mkdir(parents=True, exist_ok=True)
            export_alarms(srv.database_url, sim.vehicle_ids, report_dir / "alarms.json")
            export_hazards(srv.database_url, report_dir / "hazards.json")
        else:
            result = _run_publish_only(settings, sim, stack, console, recorder)
            ota_truth = None
            for stale in ("alarms.json", "hazards.json"):  # not this run's: nothing was analysed
                (report_dir / stale).unlink(missing_ok=True)
    return _finish(sim, result, recorder, report_dir, console, ota_truth)


def _run_publish_only(
    settings: Any, sim: Any, stack: contextlib.ExitStack, console: Console, recorder: Any
) -> dict[str, Any]:
    from contract.endpoint import MqttEndpoint
    from fleet.pipeline_run import PublishTargets, drive

    if settings.mqtt_url:
        gateway = MqttEndpoint.from_url(settings.simulator_mqtt_url) if settings.simulator_mqtt_url else None
        secret = settings.vehicle_secret.get_secret_value() if settings.vehicle_secret else None
        targets = PublishTargets(gateway, MqttEndpoint.from_url(settings.mqtt_url), secret)
        broker = "external (FLEET_MQTT_URL)"
    else:
        gateway, broker = _private_broker(stack)
        targets = PublishTargets(gateway)
    done = drive(sim, targets, speedup=sim.scenario.speedup, console=console, on_step=recorder.record)
    return {
        **done.summary(),
        "broker": broker,
        "samples_stored": None,
        "dtc_reports_stored": None,
        "dead_letters": 0,
    }


def _private_broker(stack: contextlib.ExitStack) -> tuple[Any, str]:
    """A private Mosquitto when installed, else the embedded amqtt broker."""
    from localservers.embedded import SIMULATOR_USER, BrokerAccounts, EmbeddedBroker
    from localservers.mosquitto import find_mosquitto, private_mosquitto

    binary = find_mosquitto()
    if binary:
        gateway, _, pid = stack.enter_context(private_mosquitto(binary))
        return gateway, f"mosquitto (private, pid {pid})"
    accounts = BrokerAccounts()
    broker = EmbeddedBroker(accounts)
    broker.start()
    stack.callback(broker.stop)
    return broker.endpoint(
        SIMULATOR_USER, accounts.simulator_password
    ), "amqtt (embedded; mosquitto not installed)"


def _finish(
    sim: Any,
    result: dict[str, Any],
    recorder: Any,
    report_dir: Path,
    console: Console,
    ota_truth: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the ground truth (after the run: it holds each vehicle's DTC sets over time, and with
    `ota_truth`, the closed loop's offers, installs and visits) and the report; return the summary."""
    from simulators.ground_truth import ground_truth, write_ground_truth
    from simulators.network_export import write_network_geojson
    from simulators.report import write_report

    truth_path = write_ground_truth(sim, report_dir / "ground_truth.json", ota_truth)
    network_path = write_network_geojson(sim.network, report_dir / "network.geojson")
    sc = sim.scenario
    summary = {
        "scenario": sc.name,
        "seed": sc.seed,
        "vehicles": sim.n_vehicles,
        "duration_s": sc.duration_s,
        "speedup": sc.speedup if math.isfinite(sc.speedup) else "inf",
        **result,
        "faults": len(sim.faults.records),
        "hazards": len(sim.hazards.records),
        "ground_truth": str(truth_path),
        "road_network": str(network_path),
        "report_dir": str(report_dir),
    }
    sites = None
    if (report_dir / "alarms.json").exists():
        from fleet.cli_analyze import score_report
        from fleet.cli_hazards import load_hazards

        scores = score_report(report_dir)
        summary["scores"] = scores["faults"]
        if "hazards" in scores:
            summary["hazard_scores"] = scores["hazards"]
            sites = load_hazards(report_dir / "hazards.json")
    traced = [sim.vehicle_ids[i] for i in recorder.vehicles]
    files = write_report(
        report_dir,
        sim.network,
        ground_truth(sim, ota_truth),
        recorder.arrays(),
        traced,
        summary,
        hazard_sites=sites,
    )
    console.log("report: " + ", ".join(str(f) for f in files))
    return summary


def bench_simulator(
    vehicles: Annotated[int, typer.Option(min=1, help="Simulated vehicles.")] = 10_000,
    seconds: Annotated[float, typer.Option(min=5, help="Simulated seconds (at 1 Hz).")] = 60.0,
    batch_interval: Annotated[float, typer.Option(min=1, help="Seconds of samples per batch.")] = 10.0,
    pin: Annotated[bool, typer.Option(help="Pin the process to one CPU.")] = True,
    profile: Annotated[bool, typer.Option(help="Add a cProfile top-25 to the result.")] = False,
    realtime_check: Annotated[
        float,
        typer.Option(help="Then run this many seconds paced at real time and report any lag (0 = skip)."),
    ] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Vehicles simulated at 1 Hz in real time on one core, generation + encoding + publishing."""
    from benchmarks.simulator import BenchConfig, run_bench
    from localservers.mosquitto import find_mosquitto, private_mosquitto

    config = BenchConfig(
        vehicles=vehicles,
        sim_seconds=seconds,
        batch_interval_s=batch_interval,
        pin_cpu=pin,
        realtime_check_s=realtime_check,
    )
    with contextlib.ExitStack() as stack:
        binary = find_mosquitto()
        if binary:
            gateway, _, pid = stack.enter_context(private_mosquitto(binary))
            broker, broker_pid = "mosquitto (private, loopback)", pid
        else:
            gateway, broker = _private_broker(stack)
            broker_pid = None
        result = run_bench(gateway, config, broker_pid=broker_pid, profile=profile)
    result["broker"] = broker
    print_report(result, as_json)
