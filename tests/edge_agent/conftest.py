"""Fixtures of the edge-agent tests: a private, restartable Mosquitto, one shared ELM327
emulator session (python-obd needs about 4 s to connect, so every OBD test shares it), and small
filesystems (tmpfs) that a test can fill up."""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from contract.credentials import vehicle_password
from contract.endpoint import MqttEndpoint
from localservers.embedded import INGEST_USER, BrokerAccounts, free_port
from localservers.mosquitto import MosquittoProcess, wait_port
from tests.conftest import TEST_LOGIN_SUFFIXES

AGENT_VEHICLES = (
    "AGT-OUTAGE",
    "AGT-KILL",
    "AGT-CAMPAIGN",
    "AGT-CORRUPT",
    "AGT-OBD",
    "AGT-DISKFULL",
    "AGT-OTA",
)
EMULATED_DTCS = ("0301", "0420")  # P0301 (cylinder 1 misfire), P0420 (catalyst efficiency)


@dataclass
class PrivateBroker:
    mosquitto: MosquittoProcess
    accounts: BrokerAccounts = field(repr=False)

    @property
    def port(self) -> int:
        return self.mosquitto.port

    @property
    def ingest(self) -> MqttEndpoint:
        return MqttEndpoint("127.0.0.1", self.port, INGEST_USER, self.accounts.ingest_password)

    def login(self, login: str) -> MqttEndpoint:
        """A login of the ingest account (contract.accounts), e.g. INGEST_OBSERVER."""
        return MqttEndpoint("127.0.0.1", self.port, login, self.accounts.ingest_password)

    def vehicle(self, vehicle_id: str) -> MqttEndpoint:
        pw = vehicle_password(self.accounts.fleet_secret, vehicle_id)
        return MqttEndpoint("127.0.0.1", self.port, vehicle_id, pw)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A Mosquitto of this test alone (shipped ACL, persistence on), which the test may stop/start."""
    accounts = BrokerAccounts()
    users: dict[str, str | None] = {INGEST_USER: accounts.ingest_password}
    users.update({v: vehicle_password(accounts.fleet_secret, v) for v in AGENT_VEHICLES})
    broker = MosquittoProcess(
        tmp_path / "mosquitto",
        accounts=users,
        extra_logins=TEST_LOGIN_SUFFIXES,
        persistence=True,
        max_queued_messages=100_000,
    )
    broker.start()
    try:
        yield PrivateBroker(broker, accounts)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def elm_emulator_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    pytest.importorskip("elm", reason="elm327-emulator is a test dependency")
    port = free_port()
    workdir = tmp_path_factory.mktemp("elm")  # the emulator writes elm.log into its working directory
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("elm_server.py")), str(port), ",".join(EMULATED_DTCS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    try:
        wait_port(port, 20)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def obd_source(elm_emulator_port: int):  # noqa: ANN201
    """One python-obd session to the emulator for the whole run (connecting takes ~4 s)."""
    from edge_agent.sources.obd_adapter import ObdSource

    source = ObdSource(port=f"socket://127.0.0.1:{elm_emulator_port}", baudrate=38400, dtc_interval_s=0.0)
    source.open()
    try:
        yield source
    finally:
        source.close()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """`small_fs(size_bytes)` mounts a tmpfs of that size under tmp_path and returns it; unmounted
    at teardown. Skips the test where it cannot mount (needs root or CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def mount(size_bytes: int) -> Path:
        where = tmp_path / f"small-fs-{len(mounted)}"
        where.mkdir()
        try:
            proc = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700", "tmpfs", str(where)],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN): {exc}")
        if proc.returncode != 0:
            pytest.skip(
                f"cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}"
            )
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in reversed(mounted):
            if subprocess.run(["umount", str(where)], capture_output=True, timeout=30).returncode:
                subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)  # still busy


def fill_up(directory: Path, name: str = "filler") -> Path:
    """Write a file into `directory` until its filesystem is full (ENOSPC); returns the file."""
    path = directory / name
    block = b"\0" * 4096
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        # a last partial block, so not even a few bytes are left
        for size in (2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1):
            try:
                fh.write(b"\0" * size)
            except OSError:
                continue
    return path
