"""No loss, no duplicates across three faults, against real servers: ingest killed
with SIGKILL under load, the broker restarted, PostgreSQL restarted. Each time ingest recovers by
itself, and the stored rows are exactly the published ones: every row once, none missing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from benchmarks.ingest.fleetdata import (
    BENCH_SIGNALS,
    FramePublisher,
    frames_of,
    make_batches,
    open_persistent_session,
)
from contract.endpoint import MqttEndpoint
from localservers.mosquitto import MosquittoProcess
from tests.conftest import RunningIngest
from tests.ingest.conftest import IngestProcess, RestartablePostgres, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.mosquitto]

ROWS_PER_BATCH = 20


def _fleet(prefix: str, n_batches: int) -> list[tuple[str, bytes]]:
    end = time.time_ns() - 60 * 10**9
    return frames_of(make_batches(prefix, n_batches, ROWS_PER_BATCH, 25, end_ts_ns=end))


def _stored(database_url: str, prefix: str) -> tuple[int, int, int, int]:
    """(rows, distinct (vehicle, ts), samples, ledger batches) stored for vehicles `prefix-*`."""
    cols = ", ".join(s.column for s in BENCH_SIGNALS)
    with psycopg.connect(database_url) as conn:
        rows, distinct, samples = conn.execute(
            f"SELECT count(*), count(DISTINCT (vehicle_id, ts)), coalesce(sum(num_nonnulls({cols})), 0) "
            "FROM telemetry WHERE vehicle_id LIKE %s",
            (f"{prefix}-%",),
        ).fetchone()
        (batches,) = conn.execute(
            "SELECT count(*) FROM ingest_batches WHERE vehicle_id LIKE %s", (f"{prefix}-%",)
        ).fetchone()
    return int(rows), int(distinct), int(samples), int(batches)


def _expect_exactly(database_url: str, prefix: str, n_batches: int, timeout_s: float = 60) -> None:
    rows = n_batches * ROWS_PER_BATCH
    wait_until(lambda: _stored(database_url, prefix)[0] >= rows, timeout_s, poll_s=0.25)
    time.sleep(0.5)  # a duplicate, if any, would land now
    assert _stored(database_url, prefix) == (rows, rows, rows * len(BENCH_SIGNALS), n_batches)


def _publish_in_background(publisher: FramePublisher, frames: list, rate_per_s: float) -> threading.Thread:
    thread = threading.Thread(
        target=publisher.publish_paced, args=(frames, time.time(), rate_per_s), daemon=True
    )
    thread.start()
    return thread


def test_sigkill_under_load_loses_and_duplicates_nothing(
    pg_url: str, persistent_mosquitto, tmp_path: Path
) -> None:
    prefix, n = f"KILL{time.time_ns() % 10**6}", 400
    client_id = f"kill-test-{prefix}"
    open_persistent_session(persistent_mosquitto.url, client_id)
    ingest = IngestProcess(pg_url, persistent_mosquitto.url, client_id, tmp_path / "ingest.log")
    publisher = FramePublisher(persistent_mosquitto.url, f"pub-{prefix}")
    try:
        ingest.start()
        sender = _publish_in_background(publisher, _fleet(prefix, n), rate_per_s=200)
        assert wait_until(lambda: _stored(pg_url, prefix)[3] >= 40, 30), ingest.log_tail()
        ingest.kill()  # mid-load: the publisher goes on, the broker queues for the dead session
        killed_at = _stored(pg_url, prefix)[3]
        time.sleep(0.5)
        ingest.start()
        sender.join(30)
        assert publisher.wait_acked(30)
        _expect_exactly(pg_url, prefix, n)
        assert killed_at < n, "the kill must happen while batches are still coming"
    finally:
        publisher.close()
        ingest.stop()


def test_broker_restart_loses_and_duplicates_nothing(
    pg_url: str, persistent_mosquitto: MosquittoProcess
) -> None:
    prefix, n = f"BRK{time.time_ns() % 10**6}", 300
    frames = _fleet(prefix, n)
    endpoint = MqttEndpoint("127.0.0.1", persistent_mosquitto.port)
    publisher = FramePublisher(persistent_mosquitto.url, f"pub-{prefix}")
    try:
        with RunningIngest(endpoint, pg_url, f"broker-test-{prefix}") as ingest:
            publisher.publish_all(frames[: n // 2])
            assert wait_until(lambda: _stored(pg_url, prefix)[3] >= 20, 20)
            persistent_mosquitto.stop()  # saves queued and in-flight messages
            publisher.publish_all(frames[n // 2 :])  # queued by paho until the broker is back
            time.sleep(1.0)
            persistent_mosquitto.start()
            assert publisher.wait_acked(30)
            _expect_exactly(pg_url, prefix, n)
            assert ingest.service.totals.messages >= n
    finally:
        publisher.close()


def test_postgres_restart_loses_and_duplicates_nothing(
    restartable_postgres: RestartablePostgres, tmp_path: Path
) -> None:
    prefix, n = f"PGR{time.time_ns() % 10**6}", 300
    broker = MosquittoProcess(tmp_path / "mosquitto")
    broker.start()
    publisher = FramePublisher(broker.url, f"pub-{prefix}")
    url = restartable_postgres.url
    try:
        endpoint = MqttEndpoint("127.0.0.1", broker.port)
        with RunningIngest(endpoint, url, f"pg-test-{prefix}") as ingest:
            sender = _publish_in_background(publisher, _fleet(prefix, n), rate_per_s=150)
            assert wait_until(lambda: _stored(url, prefix)[3] >= 20, 20)
            restartable_postgres.stop()
            time.sleep(1.5)  # flushes fail meanwhile; nothing is acknowledged, nothing dropped
            restartable_postgres.start()
            sender.join(30)
            assert publisher.wait_acked(30)
            _expect_exactly(url, prefix, n)
            assert ingest.service.totals.storage_failures > 0
    finally:
        publisher.close()
        broker.stop()
