"""A private Mosquitto broker on a free loopback port, for benchmarks and local runs.

Owns: writing its configuration and password file (service accounts only, hashed with
`contract.credentials.mosquitto_password_line`) into a temporary directory, starting it, and
stopping it. The ACL is the shipped `deploy/mosquitto/acl` when this is a source checkout, else
the same rules generated from `contract.topics`.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from contract import topics
from contract.credentials import mosquitto_password_line, new_secret
from contract.endpoint import MqttEndpoint

REPO_ACL = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "acl"
SIMULATOR_USER = "fleet-simulator"
INGEST_USER = "fleet-ingest"


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


def _acl_text() -> str:
    if REPO_ACL.exists():
        return REPO_ACL.read_text()
    lines = [f"user {INGEST_USER}"]
    lines += [f"topic read {topics.PREFIX}/+/{k}" for k in topics.UPLINK_KINDS]
    lines += [f"topic write {topics.PREFIX}/+/{topics.CONFIG}", f"user {SIMULATOR_USER}"]
    lines += [f"topic write {topics.PREFIX}/+/{k}" for k in topics.UPLINK_KINDS]
    lines += [f"topic read {topics.PREFIX}/+/{topics.CONFIG}", *topics.vehicle_acl_patterns()]
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_mosquitto(binary: str) -> Iterator[tuple[MqttEndpoint, MqttEndpoint, int]]:
    """Yield (simulator gateway endpoint, ingest endpoint, broker pid). Raises RuntimeError when
    the broker does not listen within 10 s."""
    sim_pw, ingest_pw = new_secret(), new_secret()
    with tempfile.TemporaryDirectory(prefix="fleet-mosquitto-") as tmp:
        work = Path(tmp)
        (work / "passwd").write_text(
            mosquitto_password_line(SIMULATOR_USER, sim_pw)
            + "\n"
            + mosquitto_password_line(INGEST_USER, ingest_pw)
            + "\n"
        )
        (work / "passwd").chmod(0o600)
        (work / "acl").write_text(_acl_text())
        port = _free_port()
        (work / "mosquitto.conf").write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {work / 'passwd'}\n"
            f"acl_file {work / 'acl'}\npersistence false\nmax_packet_size 1100000\n"
            "log_dest stderr\nlog_type error\n"
            f"user {getpass.getuser()}\n"
        )
        proc = subprocess.Popen([binary, "-c", str(work / "mosquitto.conf")], stderr=subprocess.DEVNULL)
        try:
            _wait_port(port)
            yield (
                MqttEndpoint("127.0.0.1", port, SIMULATOR_USER, sim_pw),
                MqttEndpoint("127.0.0.1", port, INGEST_USER, ingest_pw),
                proc.pid,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on port {port}")
