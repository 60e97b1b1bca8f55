"""`fleet analyze` (fault detection into alarms) and `fleet score` (alarms against a simulator
run's ground truth). Registered by `fleet.cli`; the work is the `analytics` package's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleet.cli_options import JsonOpt, print_report

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.command("analyze")(analyze)
    app.command("score")(score)


def analyze(
    follow: Annotated[bool, typer.Option("--follow", help="Keep running, one pass every --every-s.")] = False,
    every_s: Annotated[int, typer.Option(min=1, max=59, help="Seconds between passes with --follow.")] = 30,
    settle_s: Annotated[
        float, typer.Option(min=0.0, help="Leave out data that arrived in the last SETTLE_S seconds.")
    ] = 10.0,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Worker processes on the task queue (procrastinate, in PostgreSQL); 0 runs the analysis"
            " in this process. More machines: run this with --workers against the same database.",
        ),
    ] = 0,
    partitions: Annotated[
        int, typer.Option(min=1, max=4096, help="Vehicle partitions (jobs per round) with --workers.")
    ] = 16,
    as_json: JsonOpt = False,
) -> None:
    """Run the fault detectors and the road-hazard map over the telemetry and trouble codes that
    arrived since the last pass, and update the alarms (one active alarm per vehicle and fault) and
    the map. Idempotent."""
    if workers:
        _analyze_with_workers(follow, every_s, settle_s, workers, partitions, as_json)
        return
    from analytics.job import run_analysis
    from analytics.suite import default_detectors
    from fleet.runtime import migrated_database

    with migrated_database(_settings()) as conn:
        while True:
            report = run_analysis(conn, default_detectors(), settle_s=settle_s)
            data = report.as_dict()
            if as_json:
                print(json.dumps(data, default=str), flush=True)
            else:
                print_report({k: v for k, v in data.items() if k != "software_issues"}, False)
                for issue in report.software_issues:
                    print(f"software issue: {issue}")
            if not follow:
                return
            time.sleep(every_s)


def _analyze_with_workers(
    follow: bool, every_s: int, settle_s: float, workers: int, partitions: int, as_json: bool
) -> None:
    """Start `workers` processes on the analytics queue. Once: defer one round of jobs and stop
    when the queue is empty. --follow: a periodic round every `every_s` seconds, until stopped."""
    import multiprocessing
    import os
    import signal

    import psycopg

    from analytics.tasks import defer_round, ensure_schema, make_app
    from fleet.embedded import servers
    from fleet.runtime import migrate_quietly

    with servers(_settings(), start_broker=False) as srv:
        url = srv.database_url
        migrate_quietly(url)
        ensure_schema(url)
        if not follow:
            app = make_app(url, partitions=partitions, settle_s=settle_s)
            with app.open():
                deferred = defer_round(app, partitions)
        started = time.monotonic()
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(
                target=_worker,
                args=(url, partitions, settle_s, every_s if follow else None, not follow, f"analytics-{i}"),
                daemon=False,
            )
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()

        def stop(signum: int, _frame: object) -> None:  # workers finish their job, then exit
            for proc in procs:
                if proc.pid is not None and proc.is_alive():
                    os.kill(proc.pid, signal.SIGTERM)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for proc in procs:
                proc.join()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        with psycopg.connect(url) as conn:
            done: dict[str, int] = dict(
                conn.execute(
                    "SELECT status, count(*) FROM procrastinate_jobs WHERE queue_name = 'analytics'"
                    " GROUP BY status"
                ).fetchall()
            )
        failed = [p.exitcode for p in procs if p.exitcode not in (0, None, -2, -15)]
    report = {
        "workers": workers,
        "partitions": partitions,
        "jobs_deferred": None if follow else deferred,
        "jobs_by_status": done,
        "wall_s": round(time.monotonic() - started, 2),
        "failed_workers": len(failed),
    }
    print_report(report, as_json)
    if failed or done.get("failed"):
        raise typer.Exit(1)


def _worker(url: str, partitions: int, settle_s: float, every_s: int | None, once: bool, name: str) -> None:
    """One worker process (spawned: nothing is inherited but these arguments)."""
    from analytics.tasks import QUEUE, make_app

    app = make_app(url, partitions=partitions, settle_s=settle_s, every_s=every_s)
    app.run_worker(queues=[QUEUE], wait=not once, name=name, concurrency=1)


def score(
    report_dir: Annotated[
        Path,
        typer.Option(
            help="A finished `fleet simulate` run: its ground_truth.json, alarms.json and hazards.json."
        ),
    ] = Path("fleet-report"),
    as_json: JsonOpt = False,
) -> None:
    """Score the run against its ground truth: per fault kind, precision, recall and the delay from
    onset to alarm; per hazard kind, precision, recall and position error, and whether a repaired
    hazard was still on the map 30 minutes after its repair. Exits 2 when the report directory
    lacks the ground truth or the alarms."""
    try:
        scores = score_report(report_dir)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--report-dir") from None
    if as_json:
        print(json.dumps(scores))
        return
    Console().print(fault_score_table(scores["faults"]))
    for kind, result in (scores.get("hazards") or {}).get("kinds", {}).items():
        print(f"hazard {kind}: {result}")
    if scores.get("hazards"):
        print(f"repaired hazards still on the map 30 min later: {scores['hazards']['repaired_still_on_map']}")


def fault_score_table(faults: dict[str, dict[str, Any]]) -> Table:
    """Per fault kind: counts, precision, recall (also over the faults that showed), delays, and
    each missed vehicle with how long its fault showed."""
    from analytics.scoring import OBSERVABLE_MIN_SYMPTOM_S

    table = Table(title="fault detection against the ground truth")
    showed = f"R, showed ≥ {OBSERVABLE_MIN_SYMPTOM_S / 60:.0f} min"
    for name in ("kind", "faults", "alarms", "P", "R", showed, "delay median / p90 (s)", "missed"):
        table.add_column(name)

    def num(x: float | None, digits: int = 2) -> str:
        return "–" if x is None else f"{x:.{digits}f}"

    for kind, r in faults.items():
        missed = ", ".join(f"{v} (showed {num(s, 0)} s)" for v, s in r.get("missed_symptom_s", {}).items())
        table.add_row(
            kind,
            str(r["faults"]),
            str(r["alarms"]),
            num(r["precision"]),
            num(r["recall"]),
            f"{num(r.get('recall_observable'))} of {r.get('observable_faults', r['faults'])}",
            f"{num(r['delay_s_median'], 0)} / {num(r['delay_s_p90'], 0)}",
            missed,
        )
    return table


def score_report(report_dir: Path) -> dict[str, Any]:
    """The scores of a report directory. Raises OSError or ValueError (not a report)."""
    from analytics.scoring import AlarmRecord, score_faults

    truth = json.loads((report_dir / "ground_truth.json").read_text())
    doc = json.loads((report_dir / "alarms.json").read_text())
    if doc.get("schema") != "fleetpulse.alarms.v1":
        raise ValueError(f"{report_dir / 'alarms.json'} is not a fleetpulse alarms file")
    alarms = [AlarmRecord(a["vehicle_id"], a["fault"], int(a["raised_ts_ns"])) for a in doc["alarms"]]
    scores: dict[str, Any] = {"report_dir": str(report_dir), "faults": score_faults(truth, alarms)}
    if (report_dir / "hazards.json").exists():
        from analytics.hazard_scoring import score_hazards
        from fleet.cli_hazards import load_hazards

        scores["hazards"] = score_hazards(truth, load_hazards(report_dir / "hazards.json"))
    return scores


def export_alarms(database_url: str, vehicle_ids: list[str], path: Path) -> int:
    """Write the alarms of these vehicles (every one, cleared included) as JSON for scoring."""
    import psycopg

    from contract.timestamps import ns_of as _ns

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT vehicle_id, fault, severity, raised_at, cleared_at, explanation, evidence FROM alarms"
            " WHERE vehicle_id = ANY(%s) ORDER BY vehicle_id, fault, raised_at",
            (vehicle_ids,),
        ).fetchall()
    keys = ("vehicle_id", "fault", "severity", "raised_ts_ns", "cleared_ts_ns", "explanation", "evidence")
    alarms = [
        dict(zip(keys, (v, f, s, _ns(r), _ns(c) if c else None, e, ev), strict=True))
        for v, f, s, r, c, e, ev in rows
    ]
    path.write_text(json.dumps({"schema": "fleetpulse.alarms.v1", "alarms": alarms}, indent=1))
    return len(alarms)
