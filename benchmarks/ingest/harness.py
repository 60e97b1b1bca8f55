"""What the ingest benchmarks share: a throw-away PostgreSQL, waiting on ingest's Prometheus metrics,
and stopping the `fleet ingest` process they started."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from benchmarks.ingest.prom import scrape_all
from ingest.schema import MigrationReport, migrate
from ingest.store import TelemetryStore
from localservers.embedded import embedded_postgres
from localservers.mosquitto import MosquittoProcess


def start_servers(
    stack: contextlib.ExitStack, tmp: Path, database_url: str | None, mosquitto: str | None
) -> tuple[str, MosquittoProcess, MigrationReport]:
    """A migrated database (`database_url`, or a fresh embedded one) with today's partitions, and a
    private Mosquitto; both are stopped when `stack` closes."""
    db_url = database_url or stack.enter_context(embedded_postgres(tmp / "pg", delete=True))
    with psycopg.connect(db_url) as conn:
        report = migrate(conn)
    store = TelemetryStore(db_url)
    store.ensure_partitions()
    store.close()
    broker = MosquittoProcess(tmp / "mqtt", binary=mosquitto)
    broker.start()
    stack.callback(broker.stop)
    return db_url, broker, report


def wait_for_metrics(
    predicate: Callable[[dict[str, float]], bool], ports: list[int], timeout_s: float, poll_s: float
) -> float:
    """Poll the workers' metrics until `predicate` holds; the Unix time when it was seen to hold.
    Raises RuntimeError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if predicate(scrape_all(ports)):
                return time.time()
        time.sleep(poll_s)
    raise RuntimeError(f"ingest did not get there within {timeout_s} s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_ingest(
    db_url: str, mqtt_url: str, client_id: str, port: int, log: Path, *options: str, **env: str
) -> subprocess.Popen[bytes]:
    """`fleet ingest` as its own process against these servers, with its metrics on `port`, JSON
    logs to `log`, no maintenance runs, and the extra command-line `options` and FLEET_* `env`."""
    environment = dict(
        os.environ, FLEET_DATABASE_URL=db_url, FLEET_MQTT_URL=mqtt_url, FLEET_INGEST_CLIENT_ID=client_id
    )
    environment.update(env)
    command = [sys.executable, "-m", "fleet.cli", "ingest", "--metrics-port", str(port), "--log-json"]
    command += ["--maintain-every-s", "0", *options]
    return subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def delete_vehicles(db_url: str, patterns: tuple[str, ...], tables: tuple[str, ...]) -> None:
    """Remove what a run wrote: the rows of `tables` whose vehicle_id matches a LIKE pattern."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(db_url) as conn:
        for pattern in patterns:
            for table in tables:
                conn.execute(f"DELETE FROM {table} WHERE vehicle_id LIKE %s", (pattern,))
