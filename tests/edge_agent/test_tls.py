"""The agent's MQTT link over TLS against a real Mosquitto, with a throw-away PKI made at test time
(`cryptography`; nothing is committed, nothing leaves the loopback): a CA, a server certificate for
127.0.0.1/localhost and client certificates (CN = identity) signed by it.

Proves: password authentication over TLS with the configured CA (an `mqtts://` agent.toml read by
`load_config`, batches acknowledged); a link that does not trust the broker's CA fails to connect
(nor one whose certificate names another host) with a certificate verification error, logged and
retried with backoff, never hanging; a client certificate alone (no password) authenticates a
vehicle whose identity, taken from the certificate, is still confined by the shipped ACL to its own
topics; and on that listener a password without a certificate gets no connection."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics
from contract.credentials import vehicle_password
from contract.endpoint import MqttEndpoint
from edge_agent.agent import Agent
from edge_agent.config import load_config
from edge_agent.link import AgentLink, LinkConfig
from edge_agent.sources.simulated import SimulatedSource
from localservers.embedded import INGEST_USER, BrokerAccounts
from localservers.mosquitto import MosquittoProcess
from tests.conftest import INGEST_OBSERVER, TEST_LOGIN_SUFFIXES
from tests.edge_agent.test_agent_e2e import AgentThread, wait_until

pytest.importorskip("cryptography", reason="cryptography makes the test PKI")
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

pytestmark = [pytest.mark.broker, pytest.mark.mosquitto, pytest.mark.timeout(60)]

PASSWORD_VEHICLE = "AGT-TLS-PW"
CERT_VEHICLE = "AGT-TLS-CERT"
OTHER_VEHICLE = "AGT-TLS-OTHER"


# -- a throw-away PKI -------------------------------------------------------------------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@dataclass(frozen=True)
class Ca:
    cert_path: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    directory: Path

    @classmethod
    def create(cls, directory: Path, cn: str) -> Ca:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(_write_cert(cert, directory / "ca.crt"), cert, key, directory)

    def issue(self, cn: str, *, server: bool) -> tuple[Path, Path]:
        """A leaf certificate and its key, as PEM files (cert, key): a server certificate for
        `cn` (and 127.0.0.1 when `cn` is localhost), or a client certificate whose CN is the identity."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if server:
            names: list[x509.GeneralName] = [x509.DNSName(cn)]
            if cn == "localhost":
                names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return _write_cert(cert, self.directory / f"{cn}.crt"), _write_key(key, self.directory / f"{cn}.key")


@dataclass(frozen=True)
class Pki:
    ca: Ca
    server: tuple[Path, Path]
    stranger_ca: Ca  # a CA the broker's certificate does not chain to

    def client(self, cn: str) -> tuple[Path, Path]:
        return self.ca.issue(cn, server=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = Ca.create(root / "ca", "fleetpulse test CA")
    return Pki(ca, ca.issue("localhost", server=True), Ca.create(root / "stranger", "stranger CA"))


# -- brokers ----------------------------------------------------------------------------------------
@dataclass
class TlsBroker:
    mosquitto: MosquittoProcess
    accounts: BrokerAccounts

    @property
    def port(self) -> int:
        return self.mosquitto.port


@pytest.fixture
def tls_broker(pki: Pki, tmp_path: Path) -> Iterator[TlsBroker]:
    """Passwords over TLS (server certificate only), the fleet's logins and ACL."""
    accounts = BrokerAccounts()
    users: dict[str, str | None] = {INGEST_USER: accounts.ingest_password}
    users.update({v: vehicle_password(accounts.fleet_secret, v) for v in (PASSWORD_VEHICLE, OTHER_VEHICLE)})
    cert, key = pki.server
    with MosquittoProcess(
        tmp_path / "mosquitto", accounts=users, extra_logins=TEST_LOGIN_SUFFIXES, tls_cert=cert, tls_key=key
    ) as broker:
        yield TlsBroker(broker, accounts)


@pytest.fixture
def cert_broker(pki: Pki, tmp_path: Path) -> Iterator[TlsBroker]:
    """Client certificates required; the certificate's CN is the username and, rewritten by the
    broker, the client id; the fleet's ACL. The certificate identities are provisioned without a
    password (their roles carry the ACL)."""
    accounts = BrokerAccounts()
    cert, key = pki.server
    with MosquittoProcess(
        tmp_path / "mosquitto",
        accounts={INGEST_USER: None, CERT_VEHICLE: None, OTHER_VEHICLE: None},
        tls_cert=cert,
        tls_key=key,
        tls_ca=pki.ca.cert_path,
        require_client_cert=True,
    ) as broker:
        yield TlsBroker(broker, accounts)


def _listen(
    port: int,
    topic: str,
    ca: Path,
    *,
    password: tuple[str, str] | None = None,
    client_cert: tuple[Path, Path] | None = None,
) -> tuple[mqtt.Client, list[tuple[str, bytes]]]:
    """An observer on the ingest account, over TLS: the login of `password` (its client id), or a
    client certificate (the broker makes the certificate's identity the client id)."""
    got: list[tuple[str, bytes]] = []
    ready = threading.Event()
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=password[0] if password else "observer",
        protocol=mqtt.MQTTv311,
    )
    if password:
        client.username_pw_set(*password)
    client.tls_set(
        ca_certs=str(ca),
        certfile=str(client_cert[0]) if client_cert else None,
        keyfile=str(client_cert[1]) if client_cert else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )
    client.on_message = lambda c, u, m: got.append((m.topic, bytes(m.payload)))
    client.on_subscribe = lambda *a: ready.set()
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    assert ready.wait(5), "the observer could not subscribe"
    return client, got


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


# -- (1) password over TLS --------------------------------------------------------------------------
def test_agent_authenticates_with_a_password_over_tls(
    tls_broker: TlsBroker, pki: Pki, tmp_path: Path
) -> None:
    """An `mqtts://` agent.toml with `ca_file`, read by load_config, runs a whole agent whose batches
    the broker acknowledges and the ingest account receives."""
    vid = PASSWORD_VEHICLE
    directory = tmp_path / "agent"
    directory.mkdir()
    (directory / "ca.crt").write_bytes(pki.ca.cert_path.read_bytes())  # relative to agent.toml
    path = directory / "agent.toml"
    path.write_text(
        f'[vehicle]\nid = "{vid}"\n\n'
        f'[broker]\nurl = "mqtts://127.0.0.1:{tls_broker.port}"\npassword_env = "PW"\n'
        'ca_file = "ca.crt"\nbackoff_initial_s = 0.1\nbackoff_max_s = 1.0\n\n'
        '[agent]\nstate_dir = "state"\n\n'
        "[sampling]\ndefault_period_ms = 100\nflush_interval_s = 0.5\nbatch_interval_s = 0.5\n"
    )
    config = load_config(path, {"PW": vehicle_password(tls_broker.accounts.fleet_secret, vid)})
    assert config.endpoint.tls and config.endpoint.port == tls_broker.port
    assert config.ca_file == (directory / "ca.crt").resolve()

    observer, got = _listen(
        tls_broker.port,
        topics.topic_for(vid, topics.TELEMETRY),
        pki.ca.cert_path,
        password=(INGEST_OBSERVER, tls_broker.accounts.ingest_password),
    )
    agent = Agent(config, SimulatedSource(seed=5))
    try:
        with AgentThread(agent):
            assert wait_until(lambda: agent.sender.stats.batches_acked >= 1, 10)
            assert wait_until(lambda: bool(got), 5)
    finally:
        _close(observer)
    assert agent.link.last_refusal is None
    assert all(topic == topics.topic_for(vid, topics.TELEMETRY) for topic, _ in got)


# -- (2) an untrusted broker ------------------------------------------------------------------------
def _assert_link_rejects_the_broker(
    port: int, password: str, ca_file: Path | None, caplog: pytest.LogCaptureFixture, reason: str
) -> None:
    """The link's TLS handshake fails: logged with `reason`, retried with backoff, never connected,
    and each attempt fails at once instead of hanging until a timeout."""
    vid = PASSWORD_VEHICLE
    endpoint = MqttEndpoint("127.0.0.1", port, vid, password, tls=True)
    link = AgentLink(
        LinkConfig(endpoint, vid, vid, ca_file=ca_file, backoff_initial_s=0.1, backoff_max_s=0.2),
        lambda: b"{}",
    )

    def failures() -> list[str]:
        return [r.getMessage() for r in caplog.records if "cannot reach broker" in r.getMessage()]

    caplog.set_level(logging.WARNING, logger="edge_agent.link")
    started = time.monotonic()
    link.start()
    try:
        assert wait_until(lambda: len(failures()) >= 2, 5), "no failed attempts were reported"
        elapsed = time.monotonic() - started
        assert not link.connected.is_set()
        assert link.publish(topics.topic_for(vid, topics.TELEMETRY), b"x") is None
    finally:
        link.stop()
    assert not link._thread.is_alive()
    assert elapsed < 3
    assert all(reason in m for m in failures()), failures()
    assert link.last_refusal is None  # it never got as far as a CONNACK


@pytest.mark.parametrize("trust", ["stranger-ca", "system-store"])
def test_link_refuses_a_broker_it_does_not_trust(
    tls_broker: TlsBroker, pki: Pki, trust: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker's certificate does not chain to the CA the link trusts (another CA's file, or
    the system store when `ca_file` is omitted)."""
    password = vehicle_password(tls_broker.accounts.fleet_secret, PASSWORD_VEHICLE)
    ca_file = pki.stranger_ca.cert_path if trust == "stranger-ca" else None
    _assert_link_rejects_the_broker(
        tls_broker.port, password, ca_file, caplog, "certificate verify failed: unable to get local issuer"
    )


def test_link_checks_the_broker_host_name(pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A certificate from the trusted CA, but for another host: the link verifies the name too."""
    cert, key = pki.ca.issue("broker.elsewhere.example", server=True)
    with MosquittoProcess(tmp_path / "mosquitto", tls_cert=cert, tls_key=key) as broker:
        _assert_link_rejects_the_broker(broker.port, "pw", pki.ca.cert_path, caplog, "IP address mismatch")


# -- (3) client certificate --------------------------------------------------------------------------
def test_client_certificate_is_the_identity_and_the_acl_confines_it(cert_broker: TlsBroker, pki: Pki) -> None:
    """No password: the vehicle's certificate (CN = vehicle id) authenticates it, and the ACL's
    `%u` patterns apply to that identity: a publish to another vehicle's topic is acknowledged
    by the broker but dropped, its own arrives."""
    observer, got = _listen(
        cert_broker.port, "fleet/v1/+/telemetry", pki.ca.cert_path, client_cert=pki.client(INGEST_USER)
    )
    cert, key = pki.client(CERT_VEHICLE)
    endpoint = MqttEndpoint("127.0.0.1", cert_broker.port, tls=True)  # no username, no password
    link = AgentLink(
        LinkConfig(
            endpoint,
            CERT_VEHICLE,
            "any-id",  # the broker replaces it with the certificate's identity
            ca_file=pki.ca.cert_path,
            cert_file=cert,
            key_file=key,
            backoff_initial_s=0.1,
        ),
        lambda: b"{}",
    )
    acks: list[tuple[int, int]] = []

    def acked(*published: tuple[int, int]) -> bool:
        acks.extend(link.take_acks())
        return set(published) <= set(acks)

    link.start()
    try:
        assert link.connected.wait(5), f"no connection (refusal: {link.last_refusal})"
        spoofed = link.publish(topics.topic_for(OTHER_VEHICLE, topics.TELEMETRY), b"spoofed")
        own = link.publish(topics.topic_for(CERT_VEHICLE, topics.TELEMETRY), b"own")
        assert spoofed is not None and own is not None
        assert wait_until(lambda: acked(spoofed, own), 5)  # both acknowledged by the broker
        assert wait_until(lambda: bool(got), 5)
        time.sleep(0.2)  # anything else in flight would arrive now
    finally:
        link.stop()
        _close(observer)
    assert got == [(topics.topic_for(CERT_VEHICLE, topics.TELEMETRY), b"own")]


def test_a_vehicle_without_a_certificate_is_refused(cert_broker: TlsBroker, pki: Pki) -> None:
    """The certificate is what authenticates: a correct-looking password does not replace it."""
    endpoint = MqttEndpoint("127.0.0.1", cert_broker.port, CERT_VEHICLE, "any password", tls=True)
    link = AgentLink(
        LinkConfig(endpoint, CERT_VEHICLE, CERT_VEHICLE, ca_file=pki.ca.cert_path, backoff_initial_s=0.1),
        lambda: b"{}",
    )
    link.start()
    try:
        assert not link.connected.wait(1.5)
    finally:
        link.stop()
    assert not link._thread.is_alive()
