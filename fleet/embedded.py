"""The servers a command runs against: the configured ones, or embedded ones for a configuration-free
start (PostgreSQL and amqtt, `localservers.embedded`).

Owns: choosing between them from the settings. When FLEET_DATABASE_URL or FLEET_MQTT_URL is set,
`servers()` uses those and starts nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from contract.credentials import new_secret
from contract.endpoint import MqttEndpoint
from fleet.settings import FleetSettings
from localservers.embedded import (
    INGEST_USER,
    SIMULATOR_USER,
    BrokerAccounts,
    EmbeddedBroker,
    embedded_postgres,
)


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
