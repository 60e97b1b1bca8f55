"""Fixtures of the notification tests: a fresh migrated database per test, the registry rows and
alarms they need, a real SMTP server (aiosmtpd) that can be stopped and started again on its port,
a real HTTP receiver, and a vehicle listening on its command topic of a real broker."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from aiosmtpd.controller import Controller
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics
from registry.records import Owner, Vehicle
from registry.store import import_records
from tests.conftest import BrokerUnderTest, migrated_fresh_database

UTC = dt.UTC


@pytest.fixture
def notify_db(pg_server_url: str) -> str:
    """A new migrated database of this test's own."""
    return migrated_fresh_database(pg_server_url, "fleet_notify")


def seed_owner(conn: psycopg.Connection, owner_id: str, vehicles: tuple[str, ...], **owner: Any) -> None:
    """An owner (consent to every channel unless told) and their vehicles, through the registry."""
    fields: dict[str, Any] = {
        "name": f"Owner {owner_id}",
        "email": f"{owner_id.lower()}@example.org",
        "phone": "+4915112345678",
        "consent_email": True,
        "consent_sms": True,
        "consent_in_car": True,
        "time_zone": "UTC",
    }
    fields.update(owner)
    report = import_records(
        conn,
        [Owner(owner_id=owner_id, **fields), *(Vehicle(vehicle_id=v, owner_id=owner_id) for v in vehicles)],
    )
    assert not report.problems, report.problems
    conn.commit()


def raise_alarm(
    conn: psycopg.Connection, vehicle_id: str, fault: str = "battery_12v_failing", **kw: Any
) -> int:
    """A new active alarm of the vehicle; its id."""
    severity = kw.get("severity", "MAJOR")
    explanation = kw.get("explanation", "resting voltage 11.8 V below 12.0 V")
    now = dt.datetime.now(UTC)
    (alarm_id,) = conn.execute(
        "INSERT INTO alarms (vehicle_id, fault, severity, raised_at, updated_at, explanation)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING alarm_id",
        (vehicle_id, fault, severity, now, now, explanation),
    ).fetchone()  # type: ignore[misc]
    conn.commit()
    return int(alarm_id)


def set_motion(
    conn: psycopg.Connection, vehicle_id: str, *, speed_kmh: float, moving_s_ago: float | None
) -> None:
    """What ingest would have stored: the newest speed now, and a reading above walking speed
    `moving_s_ago` seconds ago (None: none)."""
    now = dt.datetime.now(UTC)
    latest = {"Vehicle.Speed": {"value": speed_kmh, "ts": now.isoformat()}}
    conn.execute(
        "INSERT INTO vehicle_latest (vehicle_id, ts, signals) VALUES (%s, %s, %s)"
        " ON CONFLICT (vehicle_id) DO UPDATE SET ts = excluded.ts, signals = excluded.signals",
        (vehicle_id, now, json.dumps(latest)),
    )
    conn.execute("DELETE FROM telemetry WHERE vehicle_id = %s", (vehicle_id,))
    rows = [(now, vehicle_id, speed_kmh)]
    if moving_s_ago is not None:
        rows.append((now - dt.timedelta(seconds=moving_s_ago), vehicle_id, 50.0))
    conn.cursor().executemany("INSERT INTO telemetry (ts, vehicle_id, speed_kmh) VALUES (%s, %s, %s)", rows)
    conn.commit()


OTA = {"remedy": {"kind": "ota_patch", "ecu": "BCM", "software_version": "2.0.1", "duration_min": 20}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """A real SMTP server on a fixed local port, stoppable and startable (an outage). It refuses
    the recipients in `refused` with 550, and keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.refused: set[str] = set()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def ids(self) -> list[int]:
        return [int(m["X-Fleetpulse-Notification-Id"]) for m in self.messages]


class _SmtpHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address in self.server.refused:
            return f"550 5.1.1 <{address}>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.server.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Receiver:
    """A real HTTP server that keeps every POST (headers and exact body) and answers `status`."""

    status: int = 200
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    hold: threading.Event | None = None  # set: requests wait (up to 60 s) until it is set

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            if state.hold is not None:
                state.hold.wait(60)
            with contextlib.suppress(OSError):  # the sender may be gone (killed) by now
                self.send_response(state.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/notices"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class CarScreen:
    """A vehicle subscribed to its own command topic (its own login and ACL), keeping the notices."""

    def __init__(self, broker: BrokerUnderTest, vehicle_id: str) -> None:
        ep = broker.vehicle(vehicle_id)
        self.notices: list[dict[str, Any]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=vehicle_id, protocol=mqtt.MQTTv311
        )
        self._client.username_pw_set(ep.username, ep.password)
        topic = topics.topic_for(vehicle_id, topics.COMMAND)
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = lambda _c, _u, msg: self.notices.append(json.loads(msg.payload))
        self._client.connect(ep.host, ep.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "the vehicle could not subscribe to its command topic"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@contextlib.contextmanager
def car_screen(broker: BrokerUnderTest, vehicle_id: str) -> Iterator[CarScreen]:
    screen = CarScreen(broker, vehicle_id)
    try:
        yield screen
    finally:
        screen.close()
