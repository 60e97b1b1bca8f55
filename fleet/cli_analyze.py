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

from fleet.cli_options import JsonOpt, print_report

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.command("analyze")(analyze)
    app.command("score")(score)


def analyze(
    follow: Annotated[bool, typer.Option("--follow", help="Keep running, one pass every --every-s.")] = False,
    every_s: Annotated[float, typer.Option(min=1.0, help="Seconds between passes with --follow.")] = 60.0,
    settle_s: Annotated[
        float, typer.Option(min=0.0, help="Leave out data that arrived in the last SETTLE_S seconds.")
    ] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Run the fault detectors over the telemetry and trouble codes that arrived since the last pass,
    and update the alarms (one active alarm per vehicle and fault). Idempotent."""
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
    for kind, result in scores["faults"].items():
        print(f"{kind}: {result}")
    for kind, result in (scores.get("hazards") or {}).get("kinds", {}).items():
        print(f"hazard {kind}: {result}")
    if scores.get("hazards"):
        print(f"repaired hazards still on the map 30 min later: {scores['hazards']['repaired_still_on_map']}")


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
