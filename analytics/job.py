"""The analysis jobs: what arrived since the last run, through the detectors, into alarms, and
the road-hazard map.

Two jobs, so that the work can be split over workers (`analytics.tasks`):
- `run_vehicle_analysis`, per partition of the vehicles (a stable hash of the id):
  1. the arrival window: from the partition's watermark (`analytics_watermarks`) to the
     database's now minus `settle_s` (a flush commits rows stamped at its start, so a long
     flush's rows could otherwise land behind a watermark already moved past them);
  2. the partition's vehicles with anything new in it: telemetry batches, DTC reports or software
     reports; late and backlogged data is analysed when it arrives, whatever its vehicle time;
  3. per detector, each such vehicle's trailing window of the signals it needs, then the kernels;
     then their trouble codes, and their trips' driving scores (`analytics.driving_job`). The
     telemetry is read once, with binary COPY (`analytics.telemetry_stream`), over the widest
     window and every signal any of these steps needs, each cut in memory to its own;
  4. the alarm lifecycle and its store, then the new watermark, in that order: a crash between the
     two re-runs the window, which changes nothing (findings already applied are known).
- `run_fleet_analysis`, once for the fleet: the firmware test over every report, and the hazard
  map's step (`analytics.hazard_job`) over the telemetry that arrived since its own watermark.
`run_analysis` runs both, for one process. The kernels and the lifecycle are pure; this module is
the shell that feeds them.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, LiteralString

import numpy as np
import psycopg

from analytics import telemetry_reader as reader
from analytics.alarm_store import store_findings
from analytics.code_state import with_code_columns
from analytics.columns import TelemetryColumns, VehicleParams, is_code_signal
from analytics.detectors.dtcs import DtcReportRow, detect_dtc_alarms
from analytics.detectors.software import Inventory, SoftwareIssue, detect_firmware_bug, find_software_issues
from analytics.driving_job import TripWindow, update_trips
from analytics.findings import Finding
from analytics.hazard_job import update_hazard_map
from analytics.telemetry_stream import stream_columns
from contract.timestamps import UNIX_EPOCH
from contract.timestamps import ns_of as _ns

JOB = "faults"
HAZARD_JOB = "hazards"
# The arrival horizon: `settle_s` before now, and never past the start of another transaction that
# is still writing (its rows carry its start time as `received_at` and are not visible yet).
_HORIZON_SQL = (
    "SELECT least(clock_timestamp() - make_interval(secs => %s), (SELECT min(xact_start)"
    " FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()"
    " AND backend_xid IS NOT NULL))"
)


@dataclass(frozen=True)
class TelemetryDetector:
    """A fault detector over telemetry columns (the detector contract in `analytics.findings`)."""

    fault: str
    signals: tuple[str, ...]
    window_s: float
    detect: Callable[[TelemetryColumns, VehicleParams], list[Finding]]
    thresholds_version: str = ""


@dataclass
class AnalysisReport:
    window_from: str | None
    window_until: str
    vehicles: int = 0
    rows_read: int = 0
    findings: int = 0
    raised: int = 0
    escalated: int = 0
    cleared: int = 0
    software_issues: list[dict[str, Any]] = field(default_factory=list)
    hazards: dict[str, float] = field(default_factory=dict)
    driving: dict[str, int] = field(default_factory=dict)  # trips scored (analytics.driving_job)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def partition_of(vehicle_id: str, partitions: int) -> int:
    """The partition a vehicle's analysis belongs to: a stable hash (CRC-32 of its id), the same on
    every machine and in every Python."""
    return zlib.crc32(vehicle_id.encode()) % partitions


def job_name(partition: int, partitions: int) -> str:
    """The watermark key of one partition's vehicle analysis (`faults` when there is one)."""
    return JOB if partitions == 1 else f"{JOB}:{partition}/{partitions}"


def run_analysis(
    conn: psycopg.Connection,
    detectors: Sequence[TelemetryDetector],
    *,
    settle_s: float = 10.0,
    hazards: bool = True,
) -> AnalysisReport:
    """One run over everything that arrived since the last one: every vehicle's analysis, then the
    fleet's (the firmware test, and unless `hazards` is False the road-hazard map). Raises
    psycopg.Error."""
    report = run_vehicle_analysis(conn, detectors, settle_s=settle_s)
    fleet = run_fleet_analysis(conn, settle_s=settle_s, hazards=hazards)
    report.findings += fleet.findings
    report.raised += fleet.raised
    report.escalated += fleet.escalated
    report.cleared += fleet.cleared
    report.software_issues, report.hazards = fleet.software_issues, fleet.hazards
    return report


def run_vehicle_analysis(
    conn: psycopg.Connection,
    detectors: Sequence[TelemetryDetector],
    *,
    settle_s: float = 10.0,
    partition: int = 0,
    partitions: int = 1,
) -> AnalysisReport:
    """The telemetry detectors and trouble codes of the vehicles in one partition (by
    `partition_of`) that have news since the partition's watermark. Partitions are independent:
    each has its own watermark, so workers can run them in parallel. Raises psycopg.Error."""
    if not 0 <= partition < partitions:
        raise ValueError(f"partition {partition} is not in 0..{partitions - 1}")
    job = job_name(partition, partitions)
    after, until = _window(conn, job, settle_s)
    report = AnalysisReport(None if after is None else after.isoformat(), until.isoformat())
    vehicles = [
        v for v in _vehicles_with_news(conn, after, until) if partition_of(v, partitions) == partition
    ]
    report.vehicles = len(vehicles)
    findings: list[Finding] = []
    if vehicles:
        mine = set(vehicles)
        new_telemetry = {v: ns for v, ns in _new_telemetry(conn, after, until).items() if v in mine}
        reports = _dtc_reports(conn, vehicles)
        trips = TripWindow(new_telemetry)  # the driving step's rows, cut from the detectors' read
        findings += _telemetry_findings(conn, new_telemetry, detectors, reports, report, trips)
        findings += detect_dtc_alarms(reports)
        report.driving = update_trips(conn, new_telemetry, window=trips if trips.complete else None).as_dict()
    _store(conn, findings, "+".join(sorted({d.thresholds_version for d in detectors} - {""})), report)
    _advance(conn, job, until)
    return report


def run_fleet_analysis(
    conn: psycopg.Connection, *, settle_s: float = 10.0, hazards: bool = True
) -> AnalysisReport:
    """What needs the whole fleet at once: the firmware test over every report, and the
    road-hazard map's step over all telemetry that arrived since its own watermark. One runs at a
    time (the task queue holds one lock for it). Raises psycopg.Error."""
    after, until = _window(conn, HAZARD_JOB, settle_s)
    report = AnalysisReport(None if after is None else after.isoformat(), until.isoformat())
    issues, findings = _firmware(conn)
    report.software_issues = [vars(i) for i in issues]
    _store(conn, findings, "", report)
    if hazards:
        news = _new_telemetry(conn, after, until)
        report.vehicles = len(news)
        report.hazards = vars(update_hazard_map(conn, news))
        _advance(conn, HAZARD_JOB, until)
    return report


def _window(conn: psycopg.Connection, job: str, settle_s: float) -> tuple[dt.datetime | None, dt.datetime]:
    row = conn.execute("SELECT received_at FROM analytics_watermarks WHERE job = %s", (job,)).fetchone()
    (until,) = conn.execute(_HORIZON_SQL, (settle_s,)).fetchone()  # type: ignore[misc]
    return (None if row is None else row[0]), until


def _store(conn: psycopg.Connection, findings: list[Finding], version: str, report: AnalysisReport) -> None:
    counts = store_findings(conn, findings, version)
    report.findings, report.raised, report.escalated, report.cleared = (
        len(findings), counts.raised, counts.escalated, counts.cleared
    )  # fmt: skip


def _advance(conn: psycopg.Connection, job: str, until: dt.datetime) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO analytics_watermarks (job, received_at) VALUES (%s, %s) ON CONFLICT (job)"
            " DO UPDATE SET received_at = greatest(analytics_watermarks.received_at, excluded.received_at),"
            " updated_at = now()",
            (job, until),
        )


def _vehicles_with_news(conn: psycopg.Connection, after: dt.datetime | None, until: dt.datetime) -> list[str]:
    since = after or UNIX_EPOCH
    rows = conn.execute(
        "SELECT vehicle_id FROM ingest_batches WHERE received_at > %(a)s AND received_at <= %(u)s"
        " UNION SELECT vehicle_id FROM dtc_reports WHERE received_at > %(a)s AND received_at <= %(u)s"
        " UNION SELECT vehicle_id FROM vehicle_software WHERE reported_at > %(a)s AND reported_at <= %(u)s",
        {"a": since, "u": until},
    ).fetchall()
    return sorted(r[0] for r in rows)


def _new_telemetry(conn: psycopg.Connection, after: dt.datetime | None, until: dt.datetime) -> dict[str, int]:
    """Per vehicle with telemetry that arrived in the window: the oldest sample time it brought (ns)."""
    rows = conn.execute(
        "SELECT vehicle_id, min(first_ts) FROM ingest_batches WHERE received_at > %s AND received_at <= %s"
        " GROUP BY vehicle_id",
        (after or UNIX_EPOCH, until),
    ).fetchall()
    return {v: _ns(first) for v, first in rows}


def _telemetry_findings(
    conn: psycopg.Connection,
    oldest_new_ns: dict[str, int],
    detectors: Sequence[TelemetryDetector],
    dtc_reports: Sequence[DtcReportRow],
    report: AnalysisReport,
    trips: TripWindow,
) -> list[Finding]:
    """Each detector over each vehicle's new rows and its own trailing window before them: one read
    of the widest window and every signal, cut in memory to each window; the driving step's rows
    (`trips`) are cut from the same read. The read comes in pieces of whole vehicles
    (`stream_columns`), each analysed while PostgreSQL still sends the rest. The trouble-code
    columns that detectors list among their signals come from `dtc_reports`."""
    if not detectors or not oldest_new_ns:
        return []
    vehicles = sorted(oldest_new_ns)
    params = reader.load_vehicle_params(conn, vehicles)
    oldest = np.array([oldest_new_ns[v] for v in vehicles], dtype=np.int64)
    widest_ns = int(max(d.window_s for d in detectors) * 1e9)
    wanted = {s for d in detectors for s in d.signals}
    codes = sorted(s for s in wanted if is_code_signal(s))
    signals = sorted((wanted - set(codes)) | set(trips.signals))
    since = {v: min(oldest_new_ns[v] - widest_ns, trips.since_ns[v]) for v in vehicles}
    findings: list[Finding] = []
    for piece in stream_columns(conn, vehicles, signals, since_ns_per_vehicle=since):  # one read
        report.rows_read += piece.n_rows
        trips.add(piece)
        everything = with_code_columns(piece, dtc_reports, codes)
        for window_s, group in _by_window(detectors):
            keep = everything.ts_ns >= oldest[everything.vehicle] - int(window_s * 1e9)
            cols = everything  # no copy when the window cuts nothing
            if not keep.all():
                cols = TelemetryColumns(
                    everything.vehicle_ids,
                    everything.vehicle[keep],
                    everything.ts_ns[keep],
                    {s: everything.values[s][keep] for s in {s for d in group for s in d.signals}},
                )
            for detector in group:
                findings += detector.detect(cols, params)
    trips.complete = True
    return findings


def _by_window(detectors: Sequence[TelemetryDetector]) -> list[tuple[float, list[TelemetryDetector]]]:
    """Detectors grouped by window, so that one read serves every detector of a window."""
    groups: dict[float, list[TelemetryDetector]] = {}
    for d in detectors:
        groups.setdefault(d.window_s, []).append(d)
    return sorted(groups.items())


def _dtc_reports(conn: psycopg.Connection, vehicles: list[str]) -> list[DtcReportRow]:
    """Every report of the vehicles (they are few: one per change of a vehicle's code set)."""
    return _report_rows(conn, "vehicle_id = ANY(%s)", (vehicles,))


def _report_rows(
    conn: psycopg.Connection, where: LiteralString, params: tuple[Any, ...]
) -> list[DtcReportRow]:
    """The DTC reports matching `where`, by vehicle and time."""
    rows = conn.execute(
        "SELECT vehicle_id, ts, codes, software FROM dtc_reports WHERE " + where + " ORDER BY vehicle_id, ts",
        params,
    ).fetchall()
    return [DtcReportRow(v, _ns(ts), tuple(codes), dict(software)) for v, ts, codes, software in rows]


def _firmware(conn: psycopg.Connection) -> tuple[list[SoftwareIssue], list[Finding]]:
    """The fleet-wide firmware test over every report that names its software, and its findings."""
    reports = _report_rows(conn, "software <> '{}'::jsonb", ())
    ran: dict[str, set[tuple[str, str]]] = {}
    for vehicle, ecu, version in conn.execute(
        "SELECT vehicle_id, ecu, software_version FROM software_history"
        " UNION SELECT vehicle_id, ecu, software_version FROM vehicle_software"
    ).fetchall():
        ran.setdefault(vehicle, set()).add((ecu, version))
    current: dict[str, dict[str, tuple[str, int]]] = {}
    for vehicle, ecu, version, at in conn.execute(
        "SELECT vehicle_id, ecu, software_version, reported_at FROM vehicle_software"
    ).fetchall():
        current.setdefault(vehicle, {})[ecu] = (version, _ns(at))
    inventory = Inventory({v: frozenset(p) for v, p in ran.items()}, current)
    issues = find_software_issues(reports, inventory)
    with conn.transaction():
        for i in issues:
            conn.execute(
                "INSERT INTO software_issues (ecu, software_version, code, cure_version, vehicles_on,"
                " reporting_on, vehicles_off, reporting_off, p_value)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (ecu, software_version, code)"
                " DO UPDATE SET cure_version = excluded.cure_version,"
                " vehicles_on = excluded.vehicles_on, reporting_on = excluded.reporting_on,"
                " vehicles_off = excluded.vehicles_off, reporting_off = excluded.reporting_off,"
                " p_value = excluded.p_value, found_at = now()",
                (i.ecu, i.version, i.code, i.cure_version, i.vehicles_on, i.reporting_on, i.vehicles_off,
                 i.reporting_off, i.p_value),
            )  # fmt: skip
    return issues, detect_firmware_bug(issues, inventory, reports)
