"""Acceptance: the whole agent (simulated source, real SQLite, a private Mosquitto) on a 1 MiB
filesystem that fills up. It keeps running while the disk is full, publishes what it holds in
memory, drops only within its memory bound and reports the drops (counters and check-in), and
once space returns sends everything it kept: every sample the collector produced is acknowledged,
counted as dropped, or still queued, and every acknowledged batch reached the subscriber exactly
once by (vehicle, seq)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics, wire_v1
from edge_agent.agent import Agent
from edge_agent.sources.simulated import SimulatedSource
from tests.conftest import INGEST_OBSERVER
from tests.edge_agent.conftest import PrivateBroker, fill_up
from tests.edge_agent.test_agent_e2e import AgentThread, agent_config, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.mosquitto]

MIB = 1024 * 1024


class Subscriber:
    """Records the vehicle's telemetry (decoded) and check-ins, as ingest would receive them."""

    def __init__(self, broker: PrivateBroker, vehicle_id: str) -> None:
        self.batches: list[tuple[int, int]] = []  # (seq, samples) in arrival order
        self.checkins: list[dict] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        login = broker.login(INGEST_OBSERVER)  # a login is its client id
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=login.username, protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(login.username, login.password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(
            [
                (topics.topic_for(vehicle_id, topics.TELEMETRY), 1),
                (topics.topic_for(vehicle_id, topics.STATUS), 1),
            ]
        )
        self.client.loop_start()
        assert ready.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            if message.topic.endswith("/telemetry"):
                batch = wire_v1.decode(bytes(message.payload))
                self.batches.append((batch.seq, batch.n_samples))
            elif message.payload.startswith(b"{"):
                self.checkins.append(json.loads(message.payload))

    def any_checkin(self, predicate: Callable[[dict], bool]) -> bool:
        with self._lock:
            return any(predicate(c) for c in self.checkins)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _held_on_disk(state: Path) -> tuple[int, int]:
    """(queued samples, staged samples) left in the queue file after the agent stopped."""
    with sqlite3.connect(state / "queue.sqlite") as conn:
        (queued,) = conn.execute("SELECT coalesce(sum(samples), 0) FROM queue").fetchone()
        (staged,) = conn.execute("SELECT coalesce(sum(samples), 0) FROM staged").fetchone()
    return int(queued), int(staged)


@pytest.mark.timeout(180)
def test_agent_rides_out_a_full_disk_and_sends_everything_it_kept(
    private_broker: PrivateBroker, small_fs: Callable[[int], Path]
) -> None:
    vid = "AGT-DISKFULL"
    fs = small_fs(MIB)  # the agent keeps its default max_bytes (64 MiB): the disk fills first
    state = fs / "state"
    sub = Subscriber(private_broker, vid)
    config = agent_config(
        private_broker, vid, state, checkin_interval_s=1.0, queue_memory_max_bytes=4096, keepalive_s=60
    )
    agent = Agent(config, SimulatedSource(seed=4))
    broker_pid = private_broker.mosquitto.pid
    assert broker_pid is not None
    filler: Path | None = None
    runner = AgentThread(agent)
    try:
        with runner:
            assert wait_until(lambda: agent.sender.stats.batches_acked >= 2, 15)
            assert agent.queue.state == "ok"
            # The broker stops answering (no acknowledgements) and the disk fills up.
            os.kill(broker_pid, signal.SIGSTOP)
            filler = fill_up(fs)
            assert wait_until(lambda: agent.queue.state != "ok", 30), "the spool never noticed"
            assert wait_until(lambda: agent.queue.counters["dropped_samples"] > 0, 30), "memory bound"
            collected = agent.stats.samples_collected
            assert wait_until(lambda: agent.stats.samples_collected > collected, 5)  # still sampling
            assert runner.thread.is_alive() and not list(fs.rglob("*.corrupt-*"))
            # The broker answers again: batches held in memory go out directly, drops are reported.
            os.kill(broker_pid, signal.SIGCONT)
            sent = agent.sender.stats
            assert wait_until(lambda: sent.batches_acked_from_memory > 0, 30)
            from_memory = sent.batches_acked_from_memory  # and it goes on while the disk is full
            assert wait_until(lambda: sent.batches_acked_from_memory >= from_memory + 2, 15)
            assert wait_until(
                lambda: sub.any_checkin(
                    lambda c: (
                        c.get("spool_state") in ("disk_full", "memory_only")
                        and c.get("dropped_samples", 0) > 0
                        and "memory_rows" in c
                    )
                ),
                20,
            ), "no check-in reported the full disk and the drops"
            assert agent.queue.state != "ok"  # the filler is still there
            # Space returns: the memory backlog is spilled and everything kept is sent.
            filler.unlink()
            filler = None
            assert wait_until(lambda: agent.queue.state == "ok", 30)
            assert wait_until(lambda: agent.queue.rows == 0, 30)
            assert wait_until(lambda: sub.any_checkin(lambda c: c.get("spool_state") == "ok"), 10)
        assert not runner.thread.is_alive()
    finally:
        os.kill(broker_pid, signal.SIGCONT)
        if filler is not None:
            filler.unlink()
    stats, sent, counters = agent.stats, agent.sender.stats, agent.queue.counters
    assert wait_until(lambda: len(sub.batches) >= sent.batches_acked, 10)
    sub.close()
    queued, staged = _held_on_disk(state)
    print(
        f"collected {stats.samples_collected} samples: acked {sent.samples_acked} "
        f"({sent.batches_acked} batches, {sent.batches_acked_from_memory} from memory), dropped "
        f"{counters['dropped_samples']} ({counters['dropped_batches']} batches, "
        f"{counters['dropped_chunks']} chunks), left {queued} queued + {staged} staged; "
        f"disk-full events {agent.queue.disk_full_events}"
    )
    assert stats.loop_errors == 0 and agent.queue.corrupt_files == []
    assert not list(fs.rglob("*.corrupt-*"))
    assert counters["dropped_batches"] + counters["dropped_chunks"] > 0
    # kept + dropped == produced, in samples (periodic chunks are merged into batches):
    assert stats.samples_collected == sent.samples_acked + counters["dropped_samples"] + queued + staged
    # every acknowledged batch reached the subscriber, and exactly once by (vehicle, seq):
    seqs = [seq for seq, _ in sub.batches]
    assert len(seqs) == len(set(seqs)) == sent.batches_acked
    assert sum(samples for _, samples in sub.batches) == sent.samples_acked
