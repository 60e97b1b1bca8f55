"""A private Mosquitto on a loopback port: the one launcher the benchmarks, local runs and tests use.

Owns: writing its configuration (and, given accounts, a password file hashed with
`contract.credentials.mosquitto_password_line` plus the shipped ACL), starting it as a child
process, and stopping it. The settings that matter for lossless ingest are also the production
ones (deploy/mosquitto/mosquitto.conf, docs/scaling.md):
- `max_inflight_messages`: ingest acknowledges after commit, so this window must hold a couple of
  flushes (Mosquitto's default of 20 would cap a transaction at 20 messages);
- `max_queued_messages`: what the broker keeps for an offline persistent session;
- `persistence`: queued and in-flight messages survive a broker restart.
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
from fleet.embedded import INGEST_USER, SIMULATOR_USER, free_port

DEFAULT_BINARY = "/usr/sbin/mosquitto"
REPO_ACL = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "acl"


def find_mosquitto() -> str | None:
    """The mosquitto binary on PATH or in /usr/sbin, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return DEFAULT_BINARY if Path(DEFAULT_BINARY).exists() else None


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    """Raises RuntimeError when nothing listens on 127.0.0.1:`port` within the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def acl_text() -> str:
    """The shipped ACL in a source checkout; otherwise the same rules generated from the topics."""
    if REPO_ACL.exists():
        return REPO_ACL.read_text()
    lines = [f"user {INGEST_USER}"]
    lines += [f"topic read {topics.PREFIX}/+/{k}" for k in topics.UPLINK_KINDS]
    lines += [f"topic write {topics.PREFIX}/+/{topics.CONFIG}", f"user {SIMULATOR_USER}"]
    lines += [f"topic write {topics.PREFIX}/+/{k}" for k in topics.UPLINK_KINDS]
    lines += [f"topic read {topics.PREFIX}/+/{topics.CONFIG}", *topics.vehicle_acl_patterns()]
    return "\n".join(lines) + "\n"


class MosquittoProcess:
    """Mosquitto on 127.0.0.1, restartable on the same port. With `accounts` (user -> password)
    clients must authenticate and the fleet ACL applies; without, it is anonymous and open.

    With `tls_cert` and `tls_key` (PEM) the listener speaks only MQTT over TLS; `tls_ca` is the CA
    that client certificates must chain to. `require_client_cert` (needs `tls_ca`) makes every
    client present such a certificate, and its common name becomes its username
    (`use_identity_as_username`): the password file is then not consulted, but the ACL applies to
    that identity."""

    def __init__(
        self,
        work_dir: Path,
        *,
        accounts: dict[str, str] | None = None,
        binary: str | None = None,
        port: int | None = None,
        persistence: bool = False,
        max_inflight_messages: int = 10_000,
        max_queued_messages: int = 1_000_000,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_ca: Path | None = None,
        require_client_cert: bool = False,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if require_client_cert and (tls_cert is None or tls_ca is None):
            raise ValueError("require_client_cert needs tls_cert, tls_key and tls_ca")
        found = binary or find_mosquitto()
        if found is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = found
        self.work_dir = work_dir
        self.port = port or free_port()
        self.config_path = work_dir / "mosquitto.conf"
        self.tls = tls_cert is not None
        work_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1"]
        if tls_cert is not None:  # listener options: they must follow their `listener` line
            lines += [f"certfile {tls_cert}", f"keyfile {tls_key}"]
            if tls_ca is not None:
                lines.append(f"cafile {tls_ca}")
            if require_client_cert:
                lines += ["require_certificate true", "use_identity_as_username true"]
        lines += [
            f"allow_anonymous {'false' if accounts else 'true'}",
            f"max_inflight_messages {max_inflight_messages}",
            f"max_queued_messages {max_queued_messages}",
            "max_queued_bytes 0",
            "max_packet_size 1100000",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {work_dir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            f"user {getpass.getuser()}",  # as root, mosquitto would switch to a user without access
        ]
        if accounts:
            passwd, acl = work_dir / "passwd", work_dir / "acl"
            passwd.write_text("".join(mosquitto_password_line(u, p) + "\n" for u, p in accounts.items()))
            passwd.chmod(0o600)
            acl.write_text(acl_text())
            lines += [f"password_file {passwd}", f"acl_file {acl}"]
        self.config_path.write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = 10) -> None:
        """Start the broker and wait until it accepts connections. Raises RuntimeError otherwise."""
        self._proc = subprocess.Popen([self.binary, "-c", str(self.config_path)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM): with persistence on, Mosquitto saves its state first."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def __enter__(self) -> MosquittoProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def private_mosquitto(binary: str | None = None) -> Iterator[tuple[MqttEndpoint, MqttEndpoint, int]]:
    """A throw-away authenticated broker: yield (simulator gateway endpoint, ingest endpoint, pid).
    Raises FileNotFoundError without mosquitto, RuntimeError when it does not start."""
    sim_pw, ingest_pw = new_secret(), new_secret()
    with tempfile.TemporaryDirectory(prefix="fleet-mosquitto-") as tmp:
        accounts = {SIMULATOR_USER: sim_pw, INGEST_USER: ingest_pw}
        with MosquittoProcess(Path(tmp), accounts=accounts, binary=binary) as broker:
            assert broker.pid is not None
            yield (
                MqttEndpoint("127.0.0.1", broker.port, SIMULATOR_USER, sim_pw),
                MqttEndpoint("127.0.0.1", broker.port, INGEST_USER, ingest_pw),
                broker.pid,
            )
