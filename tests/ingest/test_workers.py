"""Several ingest workers share the telemetry topic through an MQTT shared subscription on
Mosquitto: the load is split between them, a killed worker is restarted by `fleet ingest`, and every
batch is still stored exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from benchmarks.ingest.fleetdata import FramePublisher, frames_of, make_batches, open_persistent_session
from benchmarks.ingest.prom import scrape
from localservers.embedded import free_ports
from localservers.mosquitto import MosquittoProcess
from tests.ingest.conftest import IngestProcess, metrics_answer, wait_until
from tests.ingest.test_faults import ROWS_PER_BATCH, _expect_exactly

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.mosquitto]


def _worker_pids(log_text: str) -> dict[int, int]:
    """Worker index -> pid, from the supervisor's JSON log lines ("worker 0 started (pid 123)")."""
    pids = {}
    for line in log_text.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            msg = entry.get("msg", "") if isinstance(entry, dict) else ""
            if msg.startswith("worker ") and " started (pid " in msg:
                pids[int(msg.split()[1])] = int(msg.rsplit(" ", 1)[1].rstrip(")"))
    return pids


def test_two_workers_split_the_load_and_store_each_batch_once(pg_url: str, tmp_path: Path) -> None:
    prefix, n = f"WRK{time.time_ns() % 10**6}", 200
    broker = MosquittoProcess(tmp_path / "mosquitto")
    broker.start()
    port = free_ports(2)
    ingest = IngestProcess(pg_url, broker.url, f"workers-{prefix}", tmp_path / "ingest.log")
    publisher = FramePublisher(broker.url, f"pub-{prefix}")
    for worker in range(2):  # the workers' sessions exist before anything is published: no race
        open_persistent_session(broker.url, f"workers-{prefix}-{worker}", "fleet-ingest")
    try:
        ingest.start("--workers", "2", "--metrics-port", str(port))
        assert wait_until(lambda: metrics_answer(port, port + 1), 30), ingest.log_tail()
        end = time.time_ns() - 60 * 10**9
        frames = frames_of(make_batches(prefix, n, ROWS_PER_BATCH, 25, end_ts_ns=end))
        publisher.publish_all(frames[: n // 2])
        assert publisher.wait_acked(30)
        _expect_exactly(pg_url, prefix, n // 2)
        received = [scrape(p).get("fleet_ingest_messages_total", 0) for p in (port, port + 1)]
        assert sum(received) >= n // 2 and min(received) > 0, received

        killed = _worker_pids(ingest.log_text())[0]
        os.kill(killed, signal.SIGKILL)  # the supervisor restarts it
        publisher.publish_all(frames[n // 2 :])
        assert publisher.wait_acked(30)
        _expect_exactly(pg_url, prefix, n)
        assert wait_until(lambda: _worker_pids(ingest.log_text())[0] != killed, 10), ingest.log_tail()
    finally:
        publisher.close()
        ingest.stop()
        broker.stop()
