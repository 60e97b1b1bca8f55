"""The analysis job against a real PostgreSQL: only what arrived since its watermark is analysed,
each vehicle with the trailing window before its new rows; a second pass over the same data raises
nothing new; data split over two arrivals gives the alarms one arrival gives; codes and the
fleet firmware test end in alarms too."""

from __future__ import annotations

import json
import time

import numpy as np
import psycopg
import pytest

from analytics.columns import TelemetryColumns, VehicleParams, code_signal
from analytics.findings import Finding, FindingState, Severity
from analytics.job import TelemetryDetector, run_analysis
from contract import topics, wire_v1
from contract.batch import TelemetryBatch
from contract.dtc import dtc_message
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from tests.conftest import migrated_fresh_database

pytestmark = pytest.mark.postgres
SPEED = "Vehicle.Speed"
S = 1_000_000_000


@pytest.fixture
def job_url(pg_server_url: str) -> str:
    return migrated_fresh_database(pg_server_url, "fleet_job")


def detect_speeding(cols: TelemetryColumns, params: VehicleParams) -> list[Finding]:
    """A stand-in detector: RAISE at the first row above 130 km/h, CLEAR at the first row back
    under 100 after it; the state at the last row when nothing changes (vectorised per vehicle)."""
    speed = cols.column(SPEED)
    out = []
    bounds = cols.bounds()
    for k, vid in enumerate(cols.vehicle_ids):
        s, ts = speed[bounds[k] : bounds[k + 1]], cols.ts_ns[bounds[k] : bounds[k + 1]]
        if s.size == 0:
            continue
        state = np.where(s > 130, 1, np.where(s < 100, 0, -1))
        held = np.maximum.accumulate(np.where(state >= 0, np.arange(s.size), -1))
        level = np.where(held >= 0, state[np.maximum(held, 0)], 0)
        changes = np.flatnonzero(np.diff(np.r_[0, level]) != 0)
        for i in changes:
            st = FindingState.RAISE if level[i] else FindingState.CLEAR
            out.append(Finding(vid, "speeding", st, int(ts[i]), Severity.MINOR))
        if changes.size == 0:
            st = FindingState.RAISE if level[-1] else FindingState.CLEAR
            out.append(Finding(vid, "speeding", st, int(ts[-1]), Severity.MINOR))
    return out


SPEEDING = TelemetryDetector("speeding", (SPEED,), 600.0, detect_speeding, "test-1")


def _store(url: str, vehicle: str, seq: int, start_s: int, speeds: list[float]) -> None:
    ts = (start_s + np.arange(len(speeds), dtype=np.int64)) * S
    batch = TelemetryBatch(vehicle, seq, ts, {SPEED: np.asarray(speeds, float)})
    envelope = Envelope(topics.topic_for(vehicle, topics.TELEMETRY), wire_v1.encode(batch), time.time_ns())
    store = TelemetryStore(url)
    try:
        assert store.write(triage([envelope])).batches == 1
    finally:
        store.close()


def _alarms(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT vehicle_id, fault, extract(epoch FROM raised_at)::bigint,"
            " extract(epoch FROM cleared_at)::bigint FROM alarms ORDER BY 1, 2, 3"
        ).fetchall()


def _run(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return run_analysis(conn, [SPEEDING], settle_s=0.0).as_dict()


def test_two_arrivals_give_the_alarms_of_one_and_a_rerun_adds_nothing(
    job_url: str, pg_server_url: str
) -> None:
    t0 = int(time.time()) - 3600
    speeds = [50.0] * 10 + [140.0] * 5 + [120.0] * 5 + [80.0] * 10 + [135.0] * 5
    _store(job_url, "V1", 1, t0, speeds[:12])
    first = _run(job_url)
    _store(job_url, "V1", 2, t0 + 12, speeds[12:])
    second = _run(job_url)
    again = _run(job_url)
    assert first["vehicles"] == 1 and second["vehicles"] == 1 and again["vehicles"] == 0
    split = _alarms(job_url)

    whole = migrated_fresh_database(pg_server_url, "fleet_job_whole")
    _store(whole, "V1", 1, t0, speeds)
    _run(whole)
    assert (
        split == _alarms(whole) == [("V1", "speeding", t0 + 10, t0 + 20), ("V1", "speeding", t0 + 30, None)]
    )


def test_codes_and_the_firmware_test_end_in_alarms(job_url: str) -> None:
    now_us = (int(time.time()) - 600) * 1_000_000
    envelopes = []
    for i in range(40):
        vid, version = f"F{i:02d}", "4.2.0" if i < 3 else "4.1.2"
        check_in = {"state": "online", "vehicle_id": vid, "software": [{"ecu": "ECM", "version": version}]}
        envelopes.append(
            Envelope(topics.topic_for(vid, topics.STATUS), json.dumps(check_in).encode(), time.time_ns())
        )
        if i < 3:
            payload = dtc_message(vid, now_us + i, ["P0606", "P0301"], software={"ECM": version})
            envelopes.append(Envelope(topics.topic_for(vid, topics.DTC), payload, time.time_ns()))
    store = TelemetryStore(job_url)
    try:
        store.write(triage(envelopes))
    finally:
        store.close()
    report = _run(job_url)
    assert [(i["version"], i["code"]) for i in report["software_issues"]] == [
        ("4.2.0", "P0301"),
        ("4.2.0", "P0606"),
    ]
    faults = {(v, f) for v, f, _, _ in _alarms(job_url)}
    for i in range(3):
        assert {(f"F{i:02d}", "misfire"), (f"F{i:02d}", "dtc:P0606"), (f"F{i:02d}", "firmware_bug")} <= faults
    assert not any(v >= "F03" for v, _ in faults)


def detect_code_seen(cols: TelemetryColumns, params: VehicleParams) -> list[Finding]:
    """A stand-in detector that takes a trouble code as evidence: RAISE at each vehicle's first
    row with P0217 stored."""
    stored = np.flatnonzero(cols.column(code_signal("P0217")) == 1.0)
    first = stored[np.unique(cols.vehicle[stored], return_index=True)[1]]
    return [
        Finding(cols.vehicle_ids[cols.vehicle[i]], "overheated", FindingState.RAISE, int(cols.ts_ns[i]))
        for i in first
    ]


def test_detectors_get_the_codes_stored_at_each_row_from_the_reports(job_url: str) -> None:
    t0 = int(time.time()) - 3600
    _store(job_url, "V1", 1, t0, [50.0] * 30)
    _store(job_url, "V2", 1, t0, [50.0] * 30)
    reports = [("V1", t0 - 100, ["P0217"]), ("V1", t0 + 9, []), ("V2", t0 + 20, ["P0420", "P0217"])]
    envelopes = [
        Envelope(topics.topic_for(v, topics.DTC), dtc_message(v, ts * 1_000_000, codes), time.time_ns())
        for v, ts, codes in reports
    ]
    store = TelemetryStore(job_url)
    try:
        store.write(triage(envelopes))
    finally:
        store.close()
    detector = TelemetryDetector("overheated", (SPEED, code_signal("P0217")), 600.0, detect_code_seen, "t-1")
    with psycopg.connect(job_url) as conn:
        run_analysis(conn, [detector], settle_s=0.0)
    raised = {(v, at) for v, f, at, _ in _alarms(job_url) if f == "overheated"}
    assert raised == {("V1", t0), ("V2", t0 + 20)}
