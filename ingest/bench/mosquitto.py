"""A private Mosquitto for benchmarks and fault tests: own port, own config, restartable.

Owns: writing a config fit for lossless ingest and running the broker as a child process. The
settings that matter for ingest (also for production, see docs/scaling.md):
- `max_inflight_messages`: QoS 1 messages sent to a client and not yet acknowledged. Ingest
  acknowledges after commit, so this window must hold at least a couple of flushes (Mosquitto's
  default of 20 makes ingest flush every 20 messages).
- `max_queued_messages`: what the broker keeps for an offline persistent session (default 1000);
  a stopped ingest must not lose more than that, so it is raised here.
- `persistence`: with it, queued and in-flight messages survive a broker restart.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

DEFAULT_BINARY = "/usr/sbin/mosquitto"


def find_mosquitto() -> str | None:
    """The mosquitto binary on PATH or in /usr/sbin, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return DEFAULT_BINARY if Path(DEFAULT_BINARY).exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MosquittoProcess:
    """Mosquitto on 127.0.0.1 with anonymous access or a given password file (and ACL)."""

    def __init__(
        self,
        work_dir: Path,
        *,
        binary: str | None = None,
        port: int | None = None,
        persistence: bool = False,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        max_inflight_messages: int = 10_000,
        max_queued_messages: int = 1_000_000,
    ) -> None:
        found = binary or find_mosquitto()
        if found is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = found
        self.work_dir = work_dir
        self.port = port or free_port()
        self.config_path = work_dir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if password_file else 'true'}",
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
        if password_file:
            lines.append(f"password_file {password_file}")
        if acl_file:
            lines.append(f"acl_file {acl_file}")
        work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

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
