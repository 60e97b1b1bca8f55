"""What the OTA loop tests share: a database with vehicles and their ECU inventory, a published TUF
target, vehicles with registered report keys that listen on their command topic and publish
signed reports (contract/update.py's format), and the campaign row."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics
from contract.update import (
    Software,
    UpdateOffer,
    parse_update_offer,
)
from edge_agent.ota.report import ReportSigner, build_report
from ota.compatibility import TargetInfo
from ota.keys import init_keys
from ota.loop import read_targets
from ota.repository import OtaRepository
from ota.rollout import draw
from ota.vehicle_keys import register_key
from tests.conftest import BrokerUnderTest

BEFORE_SHA = "a" * 64


def publish_target(tmp_path: Path, version: str = "4.2.1", hardware: tuple[str, ...] = ("ecm-b12",)) -> Path:
    """A TUF repository with one ECM target; its directory."""
    keys, repo_dir = tmp_path / "keys", tmp_path / "repo"
    init_keys(keys)
    repository = OtaRepository(repo_dir, keys)
    repository.create()
    artifact = tmp_path / "ecm.bin"
    artifact.write_bytes(b"\x7fELF" + bytes(range(256)) * 20)
    repository.publish(artifact, ecu="ECM", version=version, hardware_ids=hardware)
    return repo_dir


def target_of(repo_dir: Path) -> TargetInfo:
    (target,) = read_targets(repo_dir)
    return target


def seed_vehicles(conn: psycopg.Connection, hardware: dict[str, str], version: str = "4.2.0") -> None:
    for vid, hw in hardware.items():
        conn.execute("INSERT INTO vehicles (vehicle_id) VALUES (%s) ON CONFLICT DO NOTHING", (vid,))
        conn.execute(
            "INSERT INTO vehicle_software (vehicle_id, ecu, software_version, hardware_id, reported_at)"
            " VALUES (%s, 'ECM', %s, %s, now() - interval '1 hour')",
            (vid, version, hw),
        )


def first_wave_share(campaign_id: int, vehicle_ids: list[str]) -> float:
    """A first wave's share that takes exactly the vehicle with the lowest draw (by the rollout's
    own keyed draw, so the test does not depend on which vehicle that is)."""
    low, second = sorted(100.0 * draw(campaign_id, v) for v in vehicle_ids)[:2]
    return (low + second) / 2


def insert_campaign(conn: psycopg.Connection, waves: list[float], **fields: Any) -> int:
    values = {
        "name": "ECM fix", "ecu": "ECM", "from_version": "4.2.0", "to_version": "4.2.1",
        "target_filter": json.dumps({"ecu": "ECM", "software_version": "4.2.0"}), "status": "approved",
        "waves_pct": waves, "success_threshold": 1.0, "error_threshold": 0.5, "max_failures": 20,
        "soak_s": 60.0, "consent_required": False,
    }  # fmt: skip
    values.update(fields)
    (cid,) = conn.execute(
        f"INSERT INTO campaigns ({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))})"
        " RETURNING campaign_id",
        tuple(values.values()),
    ).fetchone()  # type: ignore[misc]
    return int(cid)


def signed_report(
    key: Ed25519PrivateKey,
    vehicle_id: str,
    offer: UpdateOffer,
    seq: int,
    state: str,
    *,
    after: Software,
    target_sha256: str | None,
    reason: str | None = None,
    ts_us: int | None = None,
) -> bytes:
    """A report in contract/update.py's format, signed with `key` as the agent signs
    (`edge_agent.ota.report`)."""
    report = build_report(
        offer, vehicle_id=vehicle_id, seq=seq, ts_us=ts_us or time.time_ns() // 1000, state=state,
        before=Software("4.2.0", BEFORE_SHA), after=after, target_sha256=target_sha256, reason=reason,
    )  # fmt: skip
    return ReportSigner(key).sign(report)


@dataclass
class Car:
    """A vehicle with its own login and report key: it keeps the offers that reach its command
    topic and publishes signed reports on its update topic."""

    broker: BrokerUnderTest
    vehicle_id: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    offers: list[UpdateOffer] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    seq: int = 0

    def __post_init__(self) -> None:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = public
        ep = self.broker.vehicle(self.vehicle_id)
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.vehicle_id,
            protocol=mqtt.MQTTv311,
        )
        self._client.username_pw_set(ep.username, ep.password)
        topic = topics.topic_for(self.vehicle_id, topics.COMMAND)
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(ep.host, ep.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "the vehicle could not subscribe to its command topic"

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        self.raw.append(bytes(msg.payload))
        self.offers.append(parse_update_offer(bytes(msg.payload)))

    def register(self, conn: psycopg.Connection) -> str:
        return register_key(conn, self.vehicle_id, self.public_key)

    def wait_for_offers(self, n: int, timeout_s: float = 10.0) -> list[UpdateOffer]:
        deadline = time.monotonic() + timeout_s
        while len(self.offers) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.offers)

    def report(
        self,
        offer: UpdateOffer,
        state: str,
        *,
        after: Software,
        target_sha256: str | None,
        reason: str | None = None,
        seq: int | None = None,
        ts_us: int | None = None,
    ) -> bytes:
        """Sign and publish a report (QoS 1, waits for the PUBACK); its payload."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        payload = signed_report(
            self.key, self.vehicle_id, offer, seq, state, after=after, target_sha256=target_sha256,
            reason=reason, ts_us=ts_us,
        )  # fmt: skip
        self.publish(payload)
        return payload

    def publish(self, payload: bytes) -> None:
        info = self._client.publish(topics.topic_for(self.vehicle_id, topics.UPDATE), payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def publish_status(self, payload: bytes) -> None:
        info = self._client.publish(topics.topic_for(self.vehicle_id, topics.STATUS), payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def wait_until(predicate: Any, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()
