"""The agent shell without a broker: rows become staged chunks, batches with durable seqs, and a
queue file that goes bad during use is replaced without stopping the agent."""

from __future__ import annotations

import errno
import itertools
import threading
import time
from pathlib import Path

import pytest

from contract import wire_v1
from contract.endpoint import MqttEndpoint
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.sources import MemorySource
from tests.edge_agent.test_spool import corrupt_error


def _agent(tmp_path: Path) -> tuple[Agent, MemorySource]:
    ticks = itertools.count(1_800_000_000_000_000_000, 100_000_000)  # 10 Hz
    source = MemorySource(clock_ns=lambda: next(ticks))
    config = AgentConfig(
        vehicle_id="CORE-1",
        endpoint=MqttEndpoint("127.0.0.1", 1),  # never started in these tests
        state_dir=tmp_path,
        default_period_ms=100,
        flush_interval_s=0.5,
        batch_interval_s=1.0,
    )
    return Agent(config, source), source


def test_rows_are_staged_then_cut_into_one_batch_with_a_durable_seq(tmp_path: Path) -> None:
    agent, source = _agent(tmp_path)
    for i in range(5):
        source.set({"Vehicle.Speed": 50.0 + i, "Vehicle.ADAS.ABS.IsEngaged": 7.0})  # 7 -> true
        agent.sample_once()
    agent._flush()
    assert agent.queue.rows == 0 and len(agent.queue.staged()) == 1  # durable, not yet a batch
    for _ in range(3):
        agent.sample_once()
    agent._flush(cut=True)
    [entry] = agent.queue.read(0, None, 10)
    batch = wire_v1.decode(entry.payload)
    assert batch.seq == entry.seq and batch.n_rows == 8
    assert set(batch.columns["Vehicle.ADAS.ABS.IsEngaged"]) == {1.0}
    assert agent.stats.samples_queued == 16 == batch.n_samples
    agent.queue.close()
    reopened, _ = _agent(tmp_path)
    assert reopened.queue.next_seq() > entry.seq


def test_queue_failing_during_use_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent, source = _agent(tmp_path)
    source.set({"Vehicle.Speed": 10.0})
    agent.sample_once()
    agent._flush(cut=True)
    assert agent.queue.rows == 1 and agent.queue.disk is not None
    generation = agent.queue.generation

    def broken_once(*args: object, **kwargs: object) -> None:
        monkeypatch.undo()
        raise corrupt_error()

    monkeypatch.setattr(agent.queue.disk, "read", broken_once)
    assert agent.queue.read(0, None, 10) == []  # the spool handles it: no exception reaches the agent
    assert agent.queue.corrupt_files and agent.queue.rows == 0
    assert agent.queue.generation != generation  # the sender starts over on the new file
    agent.sample_once()
    agent._flush(cut=True)  # keeps working on the fresh file
    assert agent.queue.rows == 1 and agent.queue.state == "ok"


def test_a_campaign_that_cannot_be_saved_still_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent, _ = _agent(tmp_path)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("edge_agent.agent._write_atomically", disk_full)
    campaign = b'{"campaign_id": "c", "version": 5, "signals": [{"path": "Vehicle.Speed"}]}'
    assert agent.offer_campaign(campaign)
    assert agent.campaign.version == 5


def test_a_failing_loop_step_is_counted_and_the_loop_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, source = _agent(tmp_path)
    source.set({"Vehicle.Speed": 10.0})
    real = agent.sample_once
    calls = []

    def fails_once(timeout_s: float = 0.05) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in one step")
        real(timeout_s)

    monkeypatch.setattr(agent, "sample_once", fails_once)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,))
    runner.start()
    time.sleep(1.5)
    stop.set()
    runner.join(20)
    assert not runner.is_alive()
    assert agent.stats.loop_errors == 1 and agent.stats.rows_read > 0


def test_readings_the_wire_cannot_carry_are_dropped_and_counted_not_fatal(tmp_path: Path) -> None:
    """A reading of 1e39 for a float32 signal is finite, so the source keeps it (it drops only
    non-finite ones), but the wire cannot carry it: that reading alone is dropped and counted,
    instead of the whole batch failing to encode."""
    agent, source = _agent(tmp_path)
    readings = {"Vehicle.Speed": float("inf"), "Vehicle.Acceleration.Longitudinal": 1e39}
    source.set({**readings, "Vehicle.TraveledDistance": 12.5})
    for _ in range(3):
        agent.sample_once()
    source.current.clear()
    source.set({"Vehicle.Speed": float("-inf")})  # a row with nothing sendable: no batch, no error
    agent.sample_once()
    agent._flush(cut=True)
    [entry] = agent.queue.read(0, None, 10)
    batch = wire_v1.decode(entry.payload)
    assert batch.n_rows == 3 and batch.columns["Vehicle.TraveledDistance"].tolist() == [12.5] * 3
    assert set(batch.columns) == {"Vehicle.TraveledDistance"}
    assert agent.stats.values_unsendable == 3 and agent.stats.loop_errors == 0


def test_the_checkin_reports_the_running_slots_software(tmp_path: Path) -> None:
    """The check-in's and the DTC message's software come from the A/B slots where an ECU has them
    (edge_agent.ota), so after an install, or a rollback, the vehicle reports what really runs."""
    import dataclasses
    import json

    from contract.software import EcuSoftware
    from edge_agent.ota.install import Installer
    from tests.edge_agent.ota.conftest import PARKED, make_artifact

    configured = (EcuSoftware("ECM", "4.2.1", "ecm-b12"), EcuSoftware("BCM", "1.7.0", "bcm-a3"))
    agent, _ = _agent(tmp_path)
    agent.queue.close()
    config = dataclasses.replace(agent.config, software=configured)
    before = Agent(config, MemorySource())
    assert json.loads(before._checkin_payload())["software"] == [e.as_json() for e in sorted(configured)]
    before.queue.close()

    installed = Installer(tmp_path, configured=configured).offer(
        make_artifact(tmp_path / "dl", "4.3.0"), PARKED
    )
    assert installed.result == "installed"
    after = Agent(config, MemorySource())
    assert json.loads(after._checkin_payload())["software"] == [
        {"ecu": "BCM", "version": "1.7.0", "hardware_id": "bcm-a3"},
        {"ecu": "ECM", "version": "4.3.0", "hardware_id": "ecm-b12"},
    ]
    dtc = json.loads(after._dtc_message(1, frozenset({"P0301"})))
    assert dtc["software"] == {"BCM": "1.7.0", "ECM": "4.3.0"}

    rolled_back = Installer(tmp_path, configured=configured, ecu_checks={"ECM": lambda ctx: "no"}).offer(
        make_artifact(tmp_path / "dl", "4.4.0"), PARKED
    )
    assert rolled_back.result == "rolled_back"
    after.refresh_software()
    assert {e.ecu: e.version for e in after.software} == {"BCM": "1.7.0", "ECM": "4.3.0"}
    after.queue.close()
