"""The detectors end to end: the shipped `ci` scenario (every fault and hazard kind) through the
agent publishing code, a real broker, ingest and PostgreSQL, then the analysis job, scored against
the ground truth the simulator wrote."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from simulators.scenario import FAULT_KINDS, HAZARD_KINDS
from tests.conftest import migrated_fresh_database


@pytest.mark.broker
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_every_fault_and_hazard_kind_through_the_real_pipeline(
    tmp_path,  # noqa: ANN001
    monkeypatch,  # noqa: ANN001
    pg_server_url: str,
) -> None:
    # A broker of its own (the command's embedded amqtt): 300 vehicles' sessions would otherwise
    # stay on the session-wide test broker and slow every later broker test.
    url = migrated_fresh_database(pg_server_url, "fleet_end_to_end")
    for name in ("FLEET_MQTT_URL", "FLEET_SIMULATOR_MQTT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEET_DATABASE_URL", url)
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["simulate", "--scenario", "ci", "--report-dir", str(report), "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["samples_stored"] == summary["samples_published_unique"] and summary["dead_letters"] == 0
    faults = summary["scores"]
    assert set(FAULT_KINDS) <= set(faults), faults
    for kind in FAULT_KINDS:
        s = faults[kind]
        assert s["precision"] == 1.0, (kind, s)
        assert s["recall"] is not None and s["recall"] >= 0.5, (kind, s)
    hazards = summary["hazard_scores"]
    assert set(hazards["kinds"]) == set(HAZARD_KINDS)
    for kind, s in hazards["kinds"].items():
        assert s["precision"] == 1.0 and s["recall"] == 1.0, (kind, s)
        assert s["median_error_m"] <= 10.0, (kind, s)
    assert hazards["kinds"]["pothole"]["repaired_checked"] == 1
    assert hazards["repaired_still_on_map"] == []
    # The remedy engine ran after the analysis: every active alarm got one remedy, and visits were
    # booked at the simulated fleet's service centres.
    analysis = summary["analysis"]
    remedies = analysis["remedies"]
    active = sum(a["active"] for a in analysis["alarms"].values())
    assert sum(remedies["by_kind_and_status"].values()) == active
    assert remedies["visits_booked"] > 0 and remedies["visits_unbookable"] == 0
    for picture in ("hazards.png", "routes.png", "signals.png"):
        assert (report / picture).stat().st_size > 10_000
