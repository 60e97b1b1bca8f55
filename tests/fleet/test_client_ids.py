"""No client can take another's MQTT session (`contract.accounts`), on both brokers.

A broker gives a client id's session to whoever connects with it and disconnects its holder. Each
test below has a client connect, with its own valid password, under another account's client id:
another vehicle's, ingest's while ingest runs and while it is down (its persistent session holds
queued QoS 1 messages), the simulator gateway's; and the simulator account under ingest's. Each
attempt must be refused (CONNACK "not authorised"), the holder must stay connected and keep
receiving, and no queued message may be lost: the rows stored in PostgreSQL are compared with the
rows published. The legitimate logins (workers, auxiliary connections) are covered here too, and
`fleet ingest --workers 2` on an authenticating Mosquitto.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import TelemetryBatch, accounts, topics
from contract.credentials import vehicle_password
from contract.endpoint import MqttEndpoint
from edge_agent.fleet_publishing import MqttPublisher
from localservers.embedded import INGEST_USER, SIMULATOR_USER, BrokerAccounts, free_port, free_ports
from tests.conftest import BrokerUnderTest, fresh_ingest_id
from tests.ingest.conftest import wait_until

pytestmark = [pytest.mark.broker]

ATTACKER, VICTIM = "VEH-B", "VEH-A"


def connack(endpoint: MqttEndpoint, client_id: str, *, clean_session: bool, timeout_s: float = 5.0) -> str:
    """Connect once with `client_id` (no retry), return the CONNACK reason, and leave."""
    result: list[str] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean_session
    )
    client.username_pw_set(endpoint.username, endpoint.password)
    client.on_connect = lambda c, u, f, rc, p: result.append(str(rc))
    client.connect(endpoint.host, endpoint.port)
    deadline = time.monotonic() + timeout_s
    while not result and time.monotonic() < deadline:
        client.loop(0.05)
    client.disconnect()  # after a refusal the broker has closed the connection already
    client.loop(0.05)
    return result[0] if result else "no CONNACK"


class Holder:
    """A connected client that holds a session: counts disconnects and keeps what it receives."""

    def __init__(self, endpoint: MqttEndpoint, client_id: str, subscribe: str | None = None) -> None:
        self.client_id = client_id
        self.disconnects = 0
        self.received: list[tuple[str, bytes]] = []
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(endpoint.username, endpoint.password)
        self.client.on_connect = lambda c, u, f, rc, p: self._on_connect(rc, subscribe)
        self.client.on_disconnect = lambda *a: self._on_disconnect()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, bytes(m.payload)))
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        assert self._connected.wait(5), "the holder could not connect"
        assert subscribe is None or self._subscribed.wait(5)

    def _on_connect(self, rc: object, subscribe: str | None) -> None:
        if str(rc) == "Success":
            self._connected.set()
            if subscribe:
                self.client.subscribe(subscribe, qos=1)

    def _on_disconnect(self) -> None:
        self.disconnects += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _one_row_batches(vehicle_id: str, n: int) -> list[TelemetryBatch]:
    """`n` one-row batches of one vehicle, a second apart, ending a minute ago."""
    start_ns = time.time_ns() - (60 + n) * 10**9
    return [
        TelemetryBatch(
            vehicle_id, seq, np.array([start_ns + seq * 10**9]), {"Vehicle.Speed": np.array([50.0])}
        )
        for seq in range(n)
    ]


def _rows(pg_url: str, vehicle_id: str) -> int:
    with psycopg.connect(pg_url) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM telemetry WHERE vehicle_id = %s", (vehicle_id,)
        ).fetchone()
    return int(count)


def _publish(endpoint: MqttEndpoint, client_id: str, batches: list[TelemetryBatch]) -> None:
    """Publish at QoS 1 and wait until the broker acknowledged every batch."""
    pub = MqttPublisher(endpoint, client_id)
    pub.connect()
    try:
        for batch in batches:
            pub.publish_batch(batch)
        assert pub.wait_acked(20)
        assert pub.stats.batches_acked == len(batches)
    finally:
        pub.close()


# -- vehicles ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("clean_session", [True, False])
def test_a_vehicle_cannot_take_another_vehicles_session(broker: BrokerUnderTest, clean_session: bool) -> None:
    """VEH-B with VEH-A's client id is refused; VEH-A stays connected and keeps its subscription."""
    victim = Holder(broker.vehicle(VICTIM), VICTIM, subscribe=topics.topic_for(VICTIM, topics.CONFIG))
    try:
        assert connack(broker.vehicle(ATTACKER), VICTIM, clean_session=clean_session) == "Not authorized"
        campaign = f"campaign {time.time_ns()}".encode()
        _send_config(broker, VICTIM, campaign)
        assert wait_until(lambda: (topics.topic_for(VICTIM, topics.CONFIG), campaign) in victim.received, 10)
        assert victim.disconnects == 0
    finally:
        victim.close()


def _send_config(broker: BrokerUnderTest, vehicle_id: str, payload: bytes) -> None:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=accounts.INGEST_CAMPAIGN, protocol=mqtt.MQTTv311
    )
    ep = broker.login(accounts.INGEST_CAMPAIGN)
    client.username_pw_set(ep.username, ep.password)
    client.connect(ep.host, ep.port)
    client.loop_start()
    try:
        info = client.publish(topics.topic_for(vehicle_id, topics.CONFIG), payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_vehicle_logs_in_only_with_its_own_id(broker: BrokerUnderTest) -> None:
    """The legitimate path: a vehicle's client id is its vehicle id. Not a made-up id, nor a
    service login with the vehicle's password."""
    assert connack(broker.vehicle(ATTACKER), ATTACKER, clean_session=True) == "Success"
    assert connack(broker.vehicle(ATTACKER), f"agent-{ATTACKER}", clean_session=True) == "Not authorized"
    as_service = MqttEndpoint(broker.host, broker.port, INGEST_USER, broker.vehicle(ATTACKER).password)
    assert connack(as_service, INGEST_USER, clean_session=True) == "Not authorized"


# -- ingest ------------------------------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.parametrize("clean_session", [True, False])
def test_a_vehicle_cannot_take_ingests_session_while_it_runs(
    broker: BrokerUnderTest, running_ingest, pg_url: str, clean_session: bool
) -> None:
    """Refused; ingest keeps its one connection and stores what is published afterwards."""
    vid = f"TKO-RUN-{broker.name}-{int(clean_session)}-{time.time_ns()}"
    with running_ingest(broker.ingest) as ingest:
        client_id = ingest._config.client_id  # noqa: SLF001
        assert connack(broker.vehicle(ATTACKER), client_id, clean_session=clean_session) == "Not authorized"
        batches = _one_row_batches(vid, 10)
        _publish(broker.simulator, SIMULATOR_USER, batches)
        assert wait_until(lambda: _rows(pg_url, vid) == len(batches), 20), _rows(pg_url, vid)
        assert ingest.service.subscribed.is_set()
        assert ingest.service._connection == 1  # noqa: SLF001  # never reconnected: never kicked out


@pytest.mark.postgres
def test_a_vehicle_cannot_take_ingests_session_while_it_is_down(
    broker: BrokerUnderTest, running_ingest, pg_url: str
) -> None:
    """A session takeover while ingest is down: the broker queues 60 acknowledged batches in its persistent
    session, a vehicle tries ingest's client id (with and without clean session). Both refused;
    when ingest is back, all 60 rows are stored (the takeover had left 0 of 60)."""
    client_id, vid = fresh_ingest_id(), f"TKO-DOWN-{broker.name}-{time.time_ns()}"
    with running_ingest(broker.ingest, client_id):
        pass  # subscribed with a persistent session, then stopped
    batches = _one_row_batches(vid, 60)
    _publish(broker.simulator, SIMULATOR_USER, batches)
    for clean_session in (True, False):
        assert connack(broker.vehicle(ATTACKER), client_id, clean_session=clean_session) == "Not authorized"
    assert _rows(pg_url, vid) == 0
    with running_ingest(broker.ingest, client_id) as ingest:
        assert wait_until(lambda: _rows(pg_url, vid) >= len(batches), 30), _rows(pg_url, vid)
        assert ingest.service.totals.dead_letters == 0
    assert _rows(pg_url, vid) == len(batches)


@pytest.mark.parametrize("which", ["base", "fresh"])
def test_the_simulator_account_cannot_use_ingests_client_ids(broker: BrokerUnderTest, which: str) -> None:
    """With its own password, the simulator gateway may not use an ingest login as client id, nor
    log in as one; the holder of that login stays connected and keeps its subscription."""
    login = INGEST_USER if which == "base" else fresh_ingest_id()
    vid = f"TKO-ING-{broker.name}-{which}-{time.time_ns()}"
    holder = Holder(broker.login(login), login, subscribe=topics.topic_for(vid, topics.TELEMETRY))
    try:
        assert connack(broker.simulator, login, clean_session=True) == "Not authorized"
        as_ingest = MqttEndpoint(broker.host, broker.port, login, broker.simulator.password)
        assert connack(as_ingest, login, clean_session=True) == "Not authorized"
        _publish(broker.simulator, SIMULATOR_USER, _one_row_batches(vid, 1))
        assert wait_until(lambda: len(set(holder.received)) == 1, 10)
        assert holder.disconnects == 0
    finally:
        holder.close()


# -- simulator ---------------------------------------------------------------------------------------
def test_a_vehicle_cannot_take_the_simulator_gateways_session(broker: BrokerUnderTest) -> None:
    """The gateway (`fleet-simulator`) and its DTC publisher keep their connections and their
    subscriptions to the vehicles' campaigns."""
    config = topics.topic_for(ATTACKER, topics.CONFIG)
    holders = [
        Holder(broker.login(login), login, subscribe=config)
        for login in (SIMULATOR_USER, accounts.SIMULATOR_DTC)
    ]
    try:
        for holder in holders:
            assert connack(broker.vehicle(ATTACKER), holder.client_id, clean_session=True) == "Not authorized"
        campaign = f"campaign {time.time_ns()}".encode()
        _send_config(broker, ATTACKER, campaign)
        for holder in holders:
            assert wait_until(lambda h=holder: (config, campaign) in h.received, 10)
            assert holder.disconnects == 0
    finally:
        for holder in holders:
            holder.close()


def test_service_logins_share_the_accounts_password(broker: BrokerUnderTest) -> None:
    """The legitimate logins of the service accounts (the base, workers, auxiliary ones) connect,
    each with its own client id and only with it."""
    for login in (
        "fleet-ingest",
        "fleet-ingest-0",
        "fleet-ingest-7",
        *accounts.AUXILIARY_LOGINS[INGEST_USER],
    ):
        assert connack(broker.login(login), login, clean_session=True) == "Success", login
        assert connack(broker.login(login), f"{login}x", clean_session=True) == "Not authorized", login
    for login in (SIMULATOR_USER, accounts.SIMULATOR_DTC):
        assert connack(broker.login(login), login, clean_session=True) == "Success", login
    assert connack(broker.ingest, "", clean_session=True) == "Not authorized"  # a broker-assigned id


# -- Mosquitto: several ingest workers ---------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.mosquitto
def test_fleet_ingest_workers_log_in_with_their_own_ids(pg_url: str, tmp_path: Path) -> None:
    """`fleet ingest --workers 2` against an authenticating Mosquitto: worker i logs in as
    `fleet-ingest-<i>` with the account's password, both share the load, every batch is stored once."""
    from benchmarks.ingest.fleetdata import open_persistent_session
    from benchmarks.ingest.prom import scrape
    from localservers.mosquitto import MosquittoProcess
    from tests.ingest.conftest import IngestProcess, metrics_answer

    creds = BrokerAccounts()
    users: dict[str, str | None] = {
        INGEST_USER: creds.ingest_password,
        SIMULATOR_USER: creds.simulator_password,
    }
    vid = f"TKO-WRK-{time.time_ns()}"
    batches = _one_row_batches(vid, 200)
    with MosquittoProcess(tmp_path / "mosquitto", accounts=users) as broker:
        for worker in range(2):  # the workers' sessions exist before anything is published: no race
            login = accounts.worker_login(INGEST_USER, worker)
            open_persistent_session(
                f"mqtt://{login}:{creds.ingest_password}@127.0.0.1:{broker.port}", login, INGEST_USER
            )
        url = f"mqtt://{INGEST_USER}:{creds.ingest_password}@127.0.0.1:{broker.port}"
        ingest = IngestProcess(pg_url, url, INGEST_USER, tmp_path / "ingest.log")
        port = free_ports(2)
        ingest.start("--workers", "2", "--metrics-port", str(port))
        try:
            assert wait_until(lambda: metrics_answer(port, port + 1), 30), ingest.log_tail()
            gateway = MqttEndpoint("127.0.0.1", broker.port, SIMULATOR_USER, creds.simulator_password)
            _publish(gateway, SIMULATOR_USER, batches)
            assert wait_until(lambda: _rows(pg_url, vid) >= len(batches), 30), ingest.log_tail()
            received = [scrape(p).get("fleet_ingest_messages_total", 0) for p in (port, port + 1)]
            assert min(received) > 0, received
            assert "not authori" not in ingest.log_text().lower(), ingest.log_tail()
        finally:
            ingest.stop()
    assert _rows(pg_url, vid) == len(batches)


# -- the generator and the shipped Mosquitto configuration ---------------------------------------------
def _generate(tmp_path: Path, *args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from fleet.cli import app

    result = CliRunner().invoke(
        app, ["creds", "mosquitto-dynsec", *args], env={"FLEET_VEHICLE_SECRET": "test-secret"}
    )
    return result.exit_code, result.stdout


def test_creds_mosquitto_dynsec_binds_every_login_to_its_client_id(tmp_path: Path) -> None:
    code, out = _generate(tmp_path, "--service", "fleet-ingest:ipw", "--workers", "3", "VEH-1", "VEH-2")
    assert code == 0, out
    config = json.loads(out)
    clients = {c["username"]: c for c in config["clients"]}
    expected = ["VEH-1", "VEH-2", *accounts.provisioned_logins(INGEST_USER, workers=3)]
    assert sorted(clients) == sorted(expected)
    assert all(c["clientid"] == name for name, c in clients.items())
    assert config["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    assert clients["VEH-1"]["roles"] == [{"rolename": "vehicle:VEH-1"}]
    assert clients["fleet-ingest-2"]["roles"] == [{"rolename": "fleet-ingest"}]
    roles = {r["rolename"]: r["acls"] for r in config["roles"]}
    assert {(a["acltype"], a["topic"]) for a in roles["vehicle:VEH-2"]} == {
        ("publishClientSend", "fleet/v1/VEH-2/telemetry"),
        ("publishClientSend", "fleet/v1/VEH-2/status"),
        ("publishClientSend", "fleet/v1/VEH-2/dtc"),
        ("publishClientSend", "fleet/v1/VEH-2/update"),
        ("subscribePattern", "fleet/v1/VEH-2/config"),
        ("publishClientReceive", "fleet/v1/VEH-2/config"),
        ("subscribePattern", "fleet/v1/VEH-2/command"),
        ("publishClientReceive", "fleet/v1/VEH-2/command"),
    }
    assert ("subscribePattern", "$share/+/fleet/v1/+/telemetry") in {
        (a["acltype"], a["topic"]) for a in roles["fleet-ingest"]
    }
    # the vehicle's hash is PBKDF2-SHA512 of its derived password, as the plugin computes it
    veh = clients["VEH-1"]
    digest = hashlib.pbkdf2_hmac(
        "sha512",
        vehicle_password("test-secret", "VEH-1").encode(),
        base64.b64decode(veh["salt"]),
        veh["iterations"],
    )
    assert base64.b64decode(veh["password"]) == digest


@pytest.mark.parametrize("vehicle", ["fleet-ingest-9", "fleet-simulator", "bad/id"])
def test_creds_mosquitto_dynsec_refuses_a_reserved_or_invalid_vehicle_id(
    tmp_path: Path, vehicle: str
) -> None:
    code, _ = _generate(tmp_path, "--service", "fleet-ingest:ipw", vehicle)
    assert code != 0


@pytest.mark.mosquitto
def test_the_shipped_mosquitto_conf_refuses_takeovers(tmp_path: Path) -> None:
    """deploy/mosquitto/mosquitto.conf as compose runs it (paths and port moved to this machine),
    with a file from `fleet creds mosquitto-dynsec`: the logins connect with their own ids only,
    a vehicle cannot take another's or ingest's id, and the holder stays connected."""
    from localservers.mosquitto import find_dynsec_plugin, find_mosquitto, wait_port

    binary, plugin = find_mosquitto(), find_dynsec_plugin()
    if binary is None or plugin is None:
        pytest.skip("mosquitto (with its dynamic security plugin) is not installed")
    code, out = _generate(
        tmp_path, "--service", "fleet-ingest:ipw", "--service", "fleet-simulator:spw", "VEH-1", "VEH-2"
    )
    assert code == 0, out
    (tmp_path / "dynamic-security.json").write_text(out)
    (tmp_path / "data").mkdir()
    port = free_port()
    shipped = (Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    replacements = {
        "plugin /usr/lib/mosquitto_dynamic_security.so": f"plugin {plugin}",
        "/mosquitto/config/dynamic-security.json": str(tmp_path / "dynamic-security.json"),
        "/mosquitto/data/": f"{tmp_path / 'data'}/",
        "listener 1883\n": f"listener {port} 127.0.0.1\n",
    }
    for old, new in replacements.items():
        assert old in shipped, old
        shipped = shipped.replace(old, new)
    (tmp_path / "mosquitto.conf").write_text(shipped + f"user {getpass.getuser()}\n")
    proc = subprocess.Popen([binary, "-c", str(tmp_path / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        secret_of = {"VEH-1": "test-secret", "VEH-2": "test-secret"}
        from contract.credentials import vehicle_password

        vehicle = {
            v: MqttEndpoint("127.0.0.1", port, v, vehicle_password(secret_of[v], v)) for v in secret_of
        }
        ingest = MqttEndpoint("127.0.0.1", port, INGEST_USER, "ipw")
        for login in ("fleet-ingest", "fleet-ingest-0", "fleet-ingest-7", accounts.INGEST_CAMPAIGN):
            assert connack(accounts.login_endpoint(ingest, login), login, clean_session=True) == "Success"
        assert connack(ingest, "fleet-ingest-8", clean_session=True) == "Not authorized"  # not provisioned
        holder = Holder(vehicle["VEH-1"], "VEH-1", subscribe=topics.topic_for("VEH-1", topics.CONFIG))
        try:
            assert connack(vehicle["VEH-2"], "VEH-1", clean_session=True) == "Not authorized"
            assert connack(vehicle["VEH-2"], "fleet-ingest", clean_session=False) == "Not authorized"
            assert connack(vehicle["VEH-2"], "VEH-2", clean_session=True) == "Success"
            time.sleep(0.3)
            assert holder.disconnects == 0 and holder.client.is_connected()
        finally:
            holder.close()
    finally:
        proc.terminate()
        proc.wait(10)
