"""`fleet bench simulator` at toy size: the figures it reports are the ones it measured."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fleet.cli import app


@pytest.mark.broker
def test_bench_simulator_reports_an_honest_measurement() -> None:
    result = CliRunner().invoke(
        app, ["bench", "simulator", "--vehicles", "300", "--seconds", "5", "--no-pin", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["vehicles"] == 300 and data["simulated_s"] == 5.0 and data["all_acked"]
    assert data["samples_acked"] == data["samples_published"] > 0
    assert data["vehicles_realtime_per_cpu_core"] == pytest.approx(300 * 5.0 / data["cpu_s"], rel=0.01)
    assert data["target_met"] == (data["vehicles_realtime_per_cpu_core"] >= data["target"])
    assert "process CPU seconds" in data["method"] and data["broker"]
