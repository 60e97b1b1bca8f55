"""Helpers of the agent's OTA end-to-end tests: a real TUF repository served over HTTP
(`ota.repository` + `ota.server`), the vehicle's report key and agent.toml, the agent as a process,
and a cloud-side MQTT client that sends commands and collects the signed reports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics
from contract.endpoint import MqttEndpoint
from contract.update import UpdateOffer, UpdateReport, key_id_of, parse_update_report
from ota import keys
from ota.reports import ACCEPTED, OfferRecord, judge
from ota.repository import OtaRepository
from ota.server import serving_in_thread

DRIVER = Path(__file__).with_name("agent_driver.py")
IMAGE_BYTES = 64 * 1024


def image(version: str) -> bytes:
    seed = f"ECM-{version}-".encode()
    return (seed * (IMAGE_BYTES // len(seed) + 1))[:IMAGE_BYTES]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served_repository(
    directory: Path, versions: tuple[str, ...] = ("4.3.0",)
) -> Iterator[tuple[OtaRepository, str]]:
    """A TUF repository with ECM `versions` (hardware id ecm-b12), served over HTTP; yields it and
    its URL."""
    keys.init_keys(directory / "keys")
    repo = OtaRepository(directory / "repo", directory / "keys")
    repo.create()
    for version in versions:
        artifact = directory / f"ecm-{version}.bin"
        artifact.write_bytes(image(version))
        repo.publish(artifact, ecu="ECM", version=version, hardware_ids=("ecm-b12",), file_name="ecm.bin")
    with serving_in_thread(repo.repo_dir) as url:
        yield repo, url


@dataclass
class Vehicle:
    """One vehicle's provisioning: its agent.toml, report key (public part for the server)."""

    vehicle_id: str
    config: Path
    state_dir: Path
    public_key: bytes = field(repr=False)

    @property
    def keys(self) -> dict[str, bytes]:
        return {key_id_of(self.public_key): self.public_key}


def provision(
    directory: Path,
    vehicle_id: str,
    endpoint: MqttEndpoint,
    root_json: bytes | None,
    *,
    parked_at_s: float = 0.0,
    ota_extra: str = "",
) -> Vehicle:
    """Write agent.toml (with [ota] unless `root_json` is None), the MQTT password and report key."""
    directory.mkdir(parents=True, exist_ok=True)
    secret = directory / "mqtt-password"
    secret.write_text(endpoint.password or "")
    secret.chmod(0o600)
    key = Ed25519PrivateKey.generate()
    key_file = directory / "report.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    ota = ""
    if root_json is not None:
        (directory / "root.json").write_bytes(root_json)
        ota = (
            '[ota]\ntrusted_root = "root.json"\nreport_key = "report.pem"\n'
            f"min_parked_s = 0.5\ncheck_interval_s = 0.5\n{ota_extra}\n"
        )
    (directory / "agent.toml").write_text(
        f'[vehicle]\nid = "{vehicle_id}"\n'
        '[[vehicle.software]]\necu = "ECM"\nversion = "4.2.1"\nhardware_id = "ecm-b12"\n\n'
        f'[broker]\nurl = "mqtt://{endpoint.host}:{endpoint.port}"\npassword_file = "mqtt-password"\n'
        "backoff_initial_s = 0.1\nbackoff_max_s = 1.0\n\n"
        '[agent]\nstate_dir = "state"\ncheckin_interval_s = 2\n\n'
        "[sampling]\ndefault_period_ms = 1000\nbase_rate_hz = 10.0\nflush_interval_s = 0.5\n\n"
        f'[source]\nkind = "simulated"\nparked_at_s = {parked_at_s}\n\n{ota}'
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Vehicle(vehicle_id, directory / "agent.toml", directory / "state", raw)


class AgentProcess:
    """`python -m edge_agent --config` (or the driver with `--kill POINT`: it SIGKILLs itself there)."""

    def __init__(self, vehicle: Vehicle, kill: str = "") -> None:
        if kill:
            command = [sys.executable, str(DRIVER), str(vehicle.config), "--kill", kill]
        else:
            command = [
                sys.executable,
                "-m",
                "edge_agent",
                "--config",
                str(vehicle.config),
                "--log-level",
                "INFO",
            ]
        self.log_path = vehicle.config.parent / f"agent-{time.time_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ)
        )

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self._log.close()
        return code

    def wait_killed(self, timeout_s: float = 60.0) -> int:
        code = self.proc.wait(timeout_s)
        self._log.close()
        return code

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Cloud:
    """The backend's side: publishes commands to one vehicle and collects its update reports and
    check-ins."""

    def __init__(self, endpoint: MqttEndpoint, vehicle_id: str, *, persistent: bool = False) -> None:
        """`persistent`: a persistent session (what the broker holds for it while it reconnects)."""
        self.vehicle_id = vehicle_id
        self.reports: list[bytes] = []
        self.checkins: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=endpoint.username or "",
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
        )
        client.username_pw_set(endpoint.username, endpoint.password)
        client.reconnect_delay_set(0.1, 1.0)
        update = topics.topic_for(vehicle_id, topics.UPDATE)
        status = topics.topic_for(vehicle_id, topics.STATUS)

        def on_connect(c, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
            c.subscribe([(update, 1), (status, 1)])

        def on_subscribe(c, userdata, mid, reason_codes, properties) -> None:  # noqa: ANN001
            self._subscribed.set()

        def on_message(c, userdata, message) -> None:  # noqa: ANN001
            with self._lock:
                if message.topic == update:
                    self.reports.append(bytes(message.payload))
                elif message.payload.startswith(b"{"):
                    self.checkins.append(json.loads(message.payload))

        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        self.client = client
        assert self._subscribed.wait(10)

    def send(self, payload: bytes) -> None:
        info = self.client.publish(topics.topic_for(self.vehicle_id, topics.COMMAND), payload, qos=1)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def parsed(self, offer: UpdateOffer) -> list[UpdateReport]:
        """This offer's reports, each once (a redelivery is the same bytes), in seq order."""
        with self._lock:
            payloads = list(dict.fromkeys(self.reports))
        reports = [parse_update_report(p) for p in payloads]
        return sorted((r for r in reports if r.offer_id == offer.offer_id), key=lambda r: r.seq)

    def states(self, offer: UpdateOffer) -> list[str]:
        return [r.state for r in self.parsed(offer)]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.1)
        return False


def judged(offer: UpdateOffer, vehicle: Vehicle, reports: list[UpdateReport]) -> list[str]:
    """`ota.reports.judge`'s verdict on each report, in seq order, as the server judges them
    (`verify_pending`): an accepted report moves the offer's last seq."""
    record = OfferRecord(offer.offer_id, vehicle.vehicle_id, offer.nonce, offer.ecu, offer.issued_at_us)
    verdicts = []
    for report in reports:
        verdict = judge(report, record, vehicle.keys)
        if verdict == ACCEPTED:
            record = OfferRecord(
                record.offer_id, record.vehicle_id, record.nonce, record.ecu, record.issued_at_us, report.seq
            )
        verdicts.append(verdict)
    return verdicts
