"""Delivery on the task queue, end to end: procrastinate workers on the real PostgreSQL, sending to a
real SMTP server, a real HTTP receiver and a vehicle on a real broker. Nothing is lost while SMTP
is down and each notification goes out once; an in-car message waits until the vehicle is parked;
a restart delivers nothing twice; a worker killed in the middle of a send is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from analytics.tasks import ensure_schema
from remedies.notifications import Channel, DeliveryConfig, Transport, counts, enqueue
from remedies.notifications.channels.mqtt import MqttTransport
from remedies.notifications.channels.smtp import SmtpConfig, SmtpTransport
from remedies.notifications.channels.webhook import WebhookConfig, WebhookTransport
from remedies.notifications.tasks import QUEUE, defer_delivery, make_app
from tests.conftest import BrokerUnderTest
from tests.remedies.conftest import OTA, Receiver, SmtpServer, car_screen, raise_alarm, seed_owner, set_motion
from tests.task_worker import running_worker

pytestmark = [pytest.mark.postgres, pytest.mark.broker]
SECRET = b"worker-test-secret-32-bytes-long"
FAST = DeliveryConfig(max_attempts=3, backoff_base_s=0.5, backoff_max_s=1.0, failed_retry_after_s=2.0)


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def transports(broker: BrokerUnderTest, smtp: SmtpServer, receiver: Receiver) -> dict[Channel, Transport]:
    return {
        Channel.IN_CAR: MqttTransport(broker.ingest),
        Channel.EMAIL: SmtpTransport(
            SmtpConfig("127.0.0.1", "fleet@garage.example", port=smtp.port, security="none")
        ),
        Channel.WEBHOOK: WebhookTransport(WebhookConfig(receiver.url, SECRET)),
    }


def events_of(conn: psycopg.Connection, event: str, channel: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM notification_events WHERE event = %s AND channel = %s", (event, channel)
    ).fetchone()
    return int(row[0]) if row else 0


def sent_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return counts(conn).sent


@pytest.fixture
def queue_db(notify_db: str) -> str:
    ensure_schema(notify_db)
    return notify_db


def test_nothing_lost_while_smtp_is_down_and_each_goes_out_once(
    queue_db: str, amqtt_broker: BrokerUnderTest, smtp_server: SmtpServer, receiver: Receiver
) -> None:
    url = queue_db
    vehicles = ("VEH-A", "VEH-B", "VEH-C")
    with psycopg.connect(url) as conn:
        for i, v in enumerate(vehicles):
            seed_owner(conn, f"O-{i}", (v,))
            set_motion(conn, v, speed_kmh=0.0, moving_s_ago=None)  # parked
    smtp_server.stop()
    channels = transports(amqtt_broker, smtp_server, receiver)
    with car_screen(amqtt_broker, "VEH-A") as screen:
        app = make_app(url, channels, FAST, sweep_every_s=1)
        with running_worker(app, QUEUE, concurrency=2), psycopg.connect(url) as conn:
            ids = [enqueue(conn, v, raise_alarm(conn, v), 1, OTA).notification_id for v in vehicles]
            conn.commit()
            # the webhook and the car get theirs; every e-mail fails, stays pending, is retried
            wait_until(lambda: len(receiver.requests) == 3 and len(screen.notices) == 1)
            wait_until(lambda: events_of(conn, "failed", "email") >= 3)
            email_states = conn.execute(
                "SELECT state FROM notification_deliveries WHERE channel = 'email'"
            ).fetchall()
            assert set(email_states) <= {("pending",), ("failed",)}  # kept, never dropped
            smtp_server.start()
            wait_until(lambda: sorted(smtp_server.ids()) == ids)
            time.sleep(3)  # more sweeps and retries: still once each
            assert sorted(smtp_server.ids()) == ids
            assert sorted(b["notification_id"] for b in receiver.bodies()) == ids
            assert [n["notification_id"] for n in screen.notices] == [ids[0]]
            c = counts(conn)
            assert (c.sent, c.pending, c.failed, c.sent_by_channel["email"]) == (9, 0, 0, 3)
            (retried,) = conn.execute(
                "SELECT count(*) FROM notification_events WHERE event = 'attempt_failed'"
            ).fetchone()  # type: ignore[misc]
            assert retried >= 3 * FAST.max_attempts

        # a restart: a new worker, the engine enqueues the same (vehicle, alarm, remedy) again
        app2 = make_app(url, channels, FAST, sweep_every_s=1)
        with running_worker(app2, QUEUE, concurrency=2), psycopg.connect(url) as conn:
            alarms = conn.execute("SELECT vehicle_id, alarm_id FROM notifications ORDER BY 1").fetchall()
            for v, a in alarms:
                again = enqueue(conn, v, a, 1, OTA)
                conn.commit()
                assert not again.created
                defer_delivery(app2, again.notification_id)
            time.sleep(3)
        assert sorted(smtp_server.ids()) == ids and len(receiver.requests) == 3 and len(screen.notices) == 1
    assert sent_count(url) == 9
    for t in channels.values():
        t.close()


def test_in_car_message_waits_until_the_vehicle_is_parked(
    queue_db: str, broker: BrokerUnderTest, smtp_server: SmtpServer, receiver: Receiver
) -> None:
    url = queue_db
    with psycopg.connect(url) as conn:
        seed_owner(conn, "O-1", ("VEH-B",), consent_email=False, consent_sms=False)
        set_motion(conn, "VEH-B", speed_kmh=95.0, moving_s_ago=1)
    with car_screen(broker, "VEH-B") as screen, psycopg.connect(url) as conn:
        app = make_app(url, transports(broker, smtp_server, receiver), FAST, sweep_every_s=1)
        with running_worker(app, QUEUE, concurrency=2):
            n = enqueue(conn, "VEH-B", raise_alarm(conn, "VEH-B"), 5, OTA).notification_id
            conn.commit()
            defer_delivery(app, n)
            wait_until(
                lambda: (
                    conn.execute(
                        "SELECT state, reason FROM notification_deliveries WHERE notification_id = %s"
                        " AND channel = 'in_car'",
                        (n,),
                    ).fetchone()
                    == ("held", "driving")
                )
            )
            time.sleep(2)  # sweeps come and go while it drives
            assert screen.notices == []
            set_motion(conn, "VEH-B", speed_kmh=0.0, moving_s_ago=600)
            wait_until(lambda: len(screen.notices) == 1)
            time.sleep(2)
        assert [x["notification_id"] for x in screen.notices] == [n]
        assert smtp_server.messages == [] and receiver.requests == []  # no consent for those


def test_a_worker_killed_mid_send_is_taken_over(queue_db: str, receiver: Receiver) -> None:
    """SIGKILL a `fleet notify worker` while its webhook request hangs: the job of the dead worker
    is ended by the sweep, and a new worker delivers. Delivery is at least once: the receiver may
    see the request the dead worker made, with the same idempotency key."""
    url = queue_db
    gate = threading.Event()
    receiver.hold = gate  # the first request hangs until released
    with psycopg.connect(url) as conn:
        seed_owner(conn, "O-1", ("VEH-C",), consent_email=False, consent_in_car=False)
        n = enqueue(conn, "VEH-C", raise_alarm(conn, "VEH-C"), 9, OTA).notification_id
        conn.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update(
        FLEET_DATABASE_URL=url,
        FLEET_NOTIFY_WEBHOOK_URL=receiver.url,
        FLEET_NOTIFY_WEBHOOK_SECRET=SECRET.decode(),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet.cli", "notify", "worker", "--sweep-every-s", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: len(receiver.requests) == 1, timeout_s=60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    gate.set()
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT state FROM notification_deliveries WHERE notification_id = %s AND channel = 'webhook'",
            (n,),
        ).fetchone() == ("pending",)  # the dead worker's transaction never committed
    app = make_app(
        url, {Channel.WEBHOOK: WebhookTransport(WebhookConfig(receiver.url, SECRET))}, FAST, sweep_every_s=1,
        stalled_after_s=3,
    )  # fmt: skip
    with running_worker(app, QUEUE, concurrency=2):
        wait_until(lambda: sent_count(url) == 1, timeout_s=60)
    keys = {h["idempotency-key"] for h, _ in receiver.requests}
    assert keys == {f"fleetpulse-notification-{n}"} and len(receiver.requests) == 2
    with psycopg.connect(url) as conn:
        (sent_events,) = conn.execute(
            "SELECT count(*) FROM notification_events WHERE event = 'sent' AND notification_id = %s", (n,)
        ).fetchone()  # type: ignore[misc]
        (dead,) = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs"
            " WHERE task_name = 'notifications.deliver' AND status = 'failed'"
        ).fetchone()  # type: ignore[misc]
    assert sent_events == 1 and dead == 1
