"""The agent against a real Mosquitto and PostgreSQL (through ingest): broker outage, SIGKILL,
campaigns pushed on the retained config topic, and the check-in it publishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.agent import agent_command, write_agent_config
from contract import topics
from contract.accounts import INGEST_CAMPAIGN
from contract.signals import SIGNALS
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.sources.simulated import SimulatedSource
from tests.conftest import INGEST_OBSERVER
from tests.edge_agent.conftest import PrivateBroker

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.mosquitto]

_NONNULL = ", ".join(s.column for s in SIGNALS)


def stored(pg_url: str, vehicle_id: str) -> tuple[int, int, int, list[int]]:
    """(rows, distinct timestamps, non-null samples, row times in µs) of one vehicle."""
    with psycopg.connect(pg_url) as conn:
        rows, distinct, samples = conn.execute(
            f"SELECT count(*), count(DISTINCT ts), coalesce(sum(num_nonnulls({_NONNULL})), 0) "
            "FROM telemetry WHERE vehicle_id = %s",
            (vehicle_id,),
        ).fetchone()
        ts = [
            r[0]
            for r in conn.execute(
                "SELECT (extract(epoch FROM ts) * 1000000)::bigint FROM telemetry WHERE vehicle_id = %s "
                "ORDER BY ts",
                (vehicle_id,),
            )
        ]
    return int(rows), int(distinct), int(samples), ts


def forget(pg_url: str, vehicle_id: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM telemetry WHERE vehicle_id = %s", (vehicle_id,))
        conn.execute("DELETE FROM ingest_batches WHERE vehicle_id = %s", (vehicle_id,))
        conn.commit()


def agent_config(broker: PrivateBroker, vehicle_id: str, state_dir: Path, **overrides) -> AgentConfig:  # noqa: ANN003
    base = dict(
        vehicle_id=vehicle_id,
        endpoint=broker.vehicle(vehicle_id),
        state_dir=state_dir,
        default_period_ms=100,
        base_rate_hz=10.0,
        flush_interval_s=0.5,
        batch_interval_s=1.0,
        max_inflight=10,
        backoff_initial_s=0.1,
        backoff_max_s=1.0,
    )
    base.update(overrides)
    return AgentConfig(**base)  # type: ignore[arg-type]


class AgentThread:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.stop = threading.Event()
        self.thread = threading.Thread(target=agent.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Agent:
        self.thread.start()
        return self.agent

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(20)


def wait_until(predicate, timeout_s: float = 30.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_broker_outage_loses_and_duplicates_nothing(
    private_broker: PrivateBroker, running_ingest, pg_url: str, tmp_path: Path
) -> None:
    vid = "AGT-OUTAGE"
    forget(pg_url, vid)
    agent = Agent(agent_config(private_broker, vid, tmp_path / "state"), SimulatedSource(seed=3))
    with running_ingest(private_broker.ingest) as ingest, AgentThread(agent):
        assert wait_until(lambda: agent.sender.stats.samples_acked > 0, 10)
        time.sleep(1.0)
        private_broker.mosquitto.stop()
        time.sleep(3.0)  # the agent keeps reading and queueing on disk
        assert agent.queue.rows > 0
        private_broker.mosquitto.start()
        queued_during_outage = agent.stats.batches_queued
        assert wait_until(lambda: agent.sender.stats.batches_acked >= queued_during_outage + 2, 30)
        assert agent.link.disconnects >= 1
    queued = agent.stats.samples_queued
    assert agent.sender.stats.samples_acked == queued
    assert ingest.wait_for(lambda t: t.samples >= queued, 30)
    rows, distinct, samples, _ = stored(pg_url, vid)
    assert samples == queued  # nothing lost
    assert rows == distinct  # nothing duplicated
    assert agent.queue.counters["dropped_batches"] == 0


def test_sigkill_loses_at_most_the_fsync_interval(
    private_broker: PrivateBroker, running_ingest, pg_url: str, tmp_path: Path
) -> None:
    vid = "AGT-KILL"
    forget(pg_url, vid)
    password = private_broker.vehicle(vid).password or ""
    config = write_agent_config(
        tmp_path, vehicle_id=vid, port=private_broker.port, password=password, period_ms=100
    )
    fsync_interval_s = 1.0  # flush_interval_s in the file written above
    command = [*agent_command(), "agent", "--config", str(config), "--log-level", "WARNING"]
    env = dict(os.environ)
    with running_ingest(private_broker.ingest) as ingest:
        first = subprocess.Popen(command, env=env)
        time.sleep(4.0)
        kill_us = time.time_ns() // 1000
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = subprocess.Popen(command, env=env)
        time.sleep(3.0)
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
        stats = json.loads((tmp_path / "state" / "stats.json").read_text())
        assert stats["queue_rows"] == 0, "the second run sent the backlog and everything it read"
        assert wait_until(lambda: ingest.service.totals.samples >= stats["samples_acked"], 20)
        time.sleep(0.5)
    rows, distinct, _, ts_us = stored(pg_url, vid)
    assert rows == distinct > 0  # no duplicates, although the second run re-sent unacknowledged batches
    before_kill = [t for t in ts_us if t <= kill_us]
    print(f"SIGKILL: rows read but not yet fsynced, lost: {(kill_us - before_kill[-1]) / 1e6:.3f} s")
    # Loss: only the rows read since the last fsync; one base-rate tick and scheduling slack added.
    assert kill_us - before_kill[-1] <= (fsync_interval_s + 0.1 + 0.15) * 1e6
    gaps_us = [b - a for a, b in zip(before_kill, before_kill[1:], strict=False)]
    assert max(gaps_us) < 150_000, "no hole in the data the first run had committed"


def _publish_retained(broker: PrivateBroker, topic: str, payload: bytes) -> None:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=INGEST_CAMPAIGN, protocol=mqtt.MQTTv311
    )
    client.username_pw_set(INGEST_CAMPAIGN, broker.ingest.password)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_campaign_from_config_topic_is_applied_and_reported(
    private_broker: PrivateBroker, tmp_path: Path
) -> None:
    vid = "AGT-CAMPAIGN"
    checkins: list[dict] = []
    listener = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=INGEST_OBSERVER, protocol=mqtt.MQTTv311
    )
    listener.username_pw_set(INGEST_OBSERVER, private_broker.ingest.password)
    listener.on_message = lambda c, u, m: checkins.append(
        json.loads(m.payload) if m.payload.startswith(b"{") else {"state": m.payload.decode()}
    )
    listener.connect("127.0.0.1", private_broker.port)
    listener.subscribe(topics.topic_for(vid, topics.STATUS), qos=1)
    listener.loop_start()
    campaign = {
        "campaign_id": "brakes",
        "version": 7,
        "signals": [{"path": "Vehicle.Speed", "period_ms": 1000}],
        "triggers": [
            {
                "name": "hard_brake",
                "condition": "Vehicle.Acceleration.Longitudinal < -0.4 * g",
                "pre_s": 1.0,
                "post_s": 0.5,
                "signals": ["Vehicle.Acceleration.Longitudinal", "Vehicle.Speed"],
            }
        ],
    }
    _publish_retained(private_broker, topics.topic_for(vid, topics.CONFIG), json.dumps(campaign).encode())
    agent = Agent(
        agent_config(private_broker, vid, tmp_path / "state"), SimulatedSource(seed=1, hard_brake_at_s=2.0)
    )
    try:
        with AgentThread(agent):
            assert wait_until(lambda: agent.campaign.version == 7, 10)
            assert wait_until(lambda: agent.stats.triggers_fired == 1, 10)
            assert wait_until(lambda: any(c.get("campaign_version") == 7 for c in checkins), 5)
            old = dict(campaign, version=6)
            _publish_retained(private_broker, topics.topic_for(vid, topics.CONFIG), json.dumps(old).encode())
            bad = {"campaign_id": "x", "version": 9, "signals": [{"path": "Vehicle.Nope"}]}
            _publish_retained(private_broker, topics.topic_for(vid, topics.CONFIG), json.dumps(bad).encode())
            assert wait_until(lambda: agent.stats.campaigns_rejected == 1, 5)
            assert agent.campaign.version == 7  # neither the older nor the invalid one replaced it
            assert wait_until(lambda: agent.sender.stats.batches_acked >= 2, 10)
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert checkins[-1]["state"] == "offline"
    assert (tmp_path / "state" / "campaign.json").exists()  # a restart runs version 7 straight away
