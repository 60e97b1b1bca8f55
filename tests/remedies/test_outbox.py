"""The outbox against the real PostgreSQL, with in-memory channels: one notification per (vehicle,
alarm, remedy), every channel decided by the rules, every change recorded, nothing lost while a
channel is down, and the counts."""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo

import psycopg
import pytest

from remedies.notifications import (
    Channel,
    DeliveryConfig,
    MemoryTransport,
    PolicyConfig,
    counts,
    deliver,
    due_notifications,
    enqueue,
    list_notifications,
)
from tests.remedies.conftest import OTA, raise_alarm, seed_owner, set_motion

pytestmark = pytest.mark.postgres
UTC = dt.UTC


def channels() -> dict[Channel, MemoryTransport]:
    return {c: MemoryTransport(c) for c in Channel}


def states(conn: psycopg.Connection, notification_id: int) -> dict[str, tuple[str, str | None]]:
    rows = conn.execute(
        "SELECT channel, state, reason FROM notification_deliveries WHERE notification_id = %s",
        (notification_id,),
    ).fetchall()
    return {c: (s, r) for c, s, r in rows}


def events(conn: psycopg.Connection, notification_id: int) -> list[tuple[str | None, str, str | None]]:
    return conn.execute(
        "SELECT channel, event, reason FROM notification_events WHERE notification_id = %s ORDER BY event_id",
        (notification_id,),
    ).fetchall()


def test_one_notification_per_vehicle_alarm_and_remedy(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",))
        alarm = raise_alarm(conn, "VEH-1")
        first = enqueue(conn, "VEH-1", alarm, 41, OTA)
        conn.commit()
        again = enqueue(conn, "VEH-1", alarm, 41, {**OTA, "vehicle_label": "ignored: it exists"})
        assert first.created and not again.created
        assert again.notification_id == first.notification_id and again.facts == first.facts
        assert (
            first.facts["fault"] == "battery_12v_failing" and first.facts["severity"] == "MAJOR"
        )  # the alarm's
        other = enqueue(conn, "VEH-1", alarm, 42, OTA)  # another remedy of the same alarm
        assert other.notification_id != first.notification_id
        conn.commit()

    results: list[int] = []

    def racer() -> None:
        with psycopg.connect(notify_db) as c:
            results.append(enqueue(c, "VEH-1", alarm, 43, OTA).notification_id)
            c.commit()

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(notify_db) as conn:
        assert len(set(results)) == 1
        (n,) = conn.execute("SELECT count(*) FROM notifications").fetchone()  # type: ignore[misc]
        assert n == 3
        assert events(conn, first.notification_id) == [(None, "queued", None)]
        assert set(states(conn, first.notification_id).values()) == {("pending", None)}


def test_the_notices_after_an_update_are_one_per_outcome(notify_db: str) -> None:
    """Before (the remedy), then a rollback, then a later install: three notices, each once."""
    result = {"kind": "update_result", "ecu": "ECM", "installed": False, "software_version": "4.2.0",
              "at": "2025-03-10T08:30:00Z"}  # fmt: skip
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",))
        alarm = raise_alarm(conn, "VEH-1")
        before = enqueue(conn, "VEH-1", alarm, 41, OTA)
        undone = [enqueue(conn, "VEH-1", alarm, 41, {"remedy": result}) for _ in range(2)]
        done = [
            enqueue(conn, "VEH-1", alarm, 41, {"remedy": {**result, "installed": True}}) for _ in range(2)
        ]
        conn.commit()
        assert [n.stage for n in (before, undone[0], done[0])] == [
            "remedy",
            "update_rolled_back",
            "update_installed",
        ]
        assert len({before.notification_id, undone[0].notification_id, done[0].notification_id}) == 3
        assert not undone[1].created and undone[1].notification_id == undone[0].notification_id
        assert not done[1].created and done[1].notification_id == done[0].notification_id


def test_enqueue_refuses_what_is_not_so(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1", "VEH-2"))
        alarm = raise_alarm(conn, "VEH-1")
        for args in (
            ("VEH-2", alarm, 1, OTA),  # the alarm is VEH-1's
            ("VEH-1", alarm + 999, 1, OTA),  # no such alarm
            ("VEH-1", alarm, 1, {"remedy": {"kind": "ota_patch"}}),  # incomplete remedy
            ("VEH-1", alarm, 1, {**OTA, "severity": "APOCALYPTIC"}),
            ("VEH-1", alarm, True, OTA),
            ("VEH-1", alarm, 2**64, OTA),
            ("VEH-1", alarm, 1, ["not", "a", "mapping"]),
        ):
            with pytest.raises(ValueError):
                enqueue(conn, *args)  # type: ignore[arg-type]
        (n,) = conn.execute("SELECT count(*) FROM notifications").fetchone()  # type: ignore[misc]
        assert n == 0


def test_retries_and_reruns_never_send_twice(notify_db: str) -> None:
    ch = channels()
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",))
        set_motion(conn, "VEH-1", speed_kmh=0.0, moving_s_ago=None)
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1"), 1, OTA).notification_id
        conn.commit()
        for _ in range(3):
            deliver(conn, n, ch)
        enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1", "tyre_slow_leak"), 1, OTA)  # another alarm
        assert [len(t.sent) for t in ch.values()] == [1, 1, 1]
        assert {o.address for o in ch[Channel.EMAIL].sent} == {"o-1@example.org"}
        assert ch[Channel.WEBHOOK].sent[0].address == "+4915112345678"
        assert ch[Channel.IN_CAR].sent[0].address == "VEH-1"
        assert states(conn, n) == {c.value: ("sent", None) for c in Channel}
        assert [e for e in events(conn, n) if e[1] == "sent"] == [(c.value, "sent", None) for c in Channel]
        (message,) = conn.execute(
            "SELECT message FROM notification_deliveries WHERE notification_id = %s AND channel = 'email'",
            (n,),
        ).fetchone()  # type: ignore[misc]
        assert message["parts"][0].startswith("The 12 V battery") and "@" not in str(message)


def test_in_car_waits_until_parked_and_the_sweep_releases_it(notify_db: str) -> None:
    ch = channels()
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",))
        set_motion(conn, "VEH-1", speed_kmh=80.0, moving_s_ago=1)
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1"), 1, OTA).notification_id
        conn.commit()
        deliver(conn, n, ch)
        assert states(conn, n)["in_car"] == ("held", "driving")
        assert ch[Channel.IN_CAR].sent == [] and len(ch[Channel.EMAIL].sent) == 1
        deliver(conn, n, ch)  # decided again, still driving: nothing new is recorded
        assert [e for e in events(conn, n) if e[1] == "held"] == [("in_car", "held", "driving")]
        assert due_notifications(conn) == []
        set_motion(conn, "VEH-1", speed_kmh=0.0, moving_s_ago=30)  # stopped at a light: still driving
        assert due_notifications(conn) == []
        set_motion(conn, "VEH-1", speed_kmh=0.0, moving_s_ago=300)  # parked
        assert due_notifications(conn) == [n]
        deliver(conn, n, ch)
        assert states(conn, n)["in_car"] == ("sent", None) and len(ch[Channel.IN_CAR].sent) == 1
        assert due_notifications(conn) == []


def test_nothing_inside_quiet_hours(notify_db: str) -> None:
    ch = channels()
    zone = "Asia/Kolkata"  # +05:30: the quiet hours are the hour around now on the owner's wall clock
    local = dt.datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(zone))
    start, end = (local - dt.timedelta(minutes=30)).time(), (local + dt.timedelta(minutes=30)).time()
    quiet = f"{start:%H:%M}-{end:%H:%M}"
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",), time_zone=zone, quiet_hours=quiet)
        set_motion(conn, "VEH-1", speed_kmh=0.0, moving_s_ago=None)
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1", severity="CRITICAL"), 1, OTA).notification_id
        conn.commit()
        result = deliver(conn, n, ch)
        assert {c.reason for c in result.channels} == {"quiet_hours"} and not any(t.sent for t in ch.values())
        until = result.next_at
        assert until is not None
        assert until.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%H:%M") == f"{end:%H:%M}"
        assert due_notifications(conn, now=until - dt.timedelta(seconds=1)) == []
        assert due_notifications(conn, now=until) == [n]
        deliver(conn, n, ch, now=until)
        assert [len(t.sent) for t in ch.values()] == [1, 1, 1]
        assert all(o.sent_at == until for t in ch.values() for o in t.sent)


def test_no_more_than_the_rate_limit_and_critical_goes_through(notify_db: str) -> None:
    ch = channels()
    config = DeliveryConfig(policy=PolicyConfig(max_per_window=2))
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1", "VEH-2"), consent_in_car=False, consent_sms=False)
        ids = [
            enqueue(conn, v, raise_alarm(conn, v, f), 1, OTA).notification_id
            for v, f in (("VEH-1", "a"), ("VEH-2", "b"), ("VEH-1", "c"), ("VEH-2", "d"))
        ]
        critical = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1", "e", severity="CRITICAL"), 1, OTA)
        conn.commit()
        for n in [*ids, critical.notification_id]:
            deliver(conn, n, ch, config)
        emails = ch[Channel.EMAIL].sent
        assert [o.notification_id for o in emails] == [*ids[:2], critical.notification_id]
        assert [states(conn, n)["email"] for n in ids[2:]] == [("suppressed", "rate_limit")] * 2
        assert states(conn, ids[0])["in_car"] == ("suppressed", "no_consent")
        c = counts(conn)
        assert (c.notifications, c.reached, c.sent) == (5, 3, 3)
        assert c.suppressed == {"no_consent": 10, "rate_limit": 2}
        assert c.sent_by_channel == {"email": 3}
        assert counts(conn, vehicle_ids=["VEH-2"]).notifications == 2
        # a day later the window is free again
        later = dt.datetime.now(UTC) + dt.timedelta(days=1, minutes=1)
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1", "f"), 1, OTA).notification_id
        deliver(conn, n, ch, config, now=later)
        assert states(conn, n)["email"] == ("sent", None)


def test_nothing_is_lost_while_a_channel_is_down(notify_db: str) -> None:
    ch = channels()
    config = DeliveryConfig(max_attempts=3, backoff_base_s=10, failed_retry_after_s=600)
    ch[Channel.EMAIL].down = True
    t0 = dt.datetime.now(UTC)
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",), consent_in_car=False, consent_sms=False)
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1"), 1, OTA).notification_id
        conn.commit()
        first = deliver(conn, n, ch, config, now=t0)
        assert states(conn, n)["email"] == ("pending", None)
        assert first.next_at == t0 + dt.timedelta(seconds=10)  # then 20: the wait doubles
        assert (
            deliver(conn, n, ch, config, now=t0 + dt.timedelta(seconds=5)).next_at == first.next_at
        )  # waits
        assert deliver(conn, n, ch, config, now=t0 + dt.timedelta(seconds=10)).next_at == t0 + dt.timedelta(
            seconds=30
        )
        deliver(conn, n, ch, config, now=t0 + dt.timedelta(seconds=30))
        assert states(conn, n)["email"] == ("failed", None)  # after max_attempts: kept, not deleted
        assert due_notifications(conn, config, now=t0 + dt.timedelta(seconds=60)) == []
        ch[Channel.EMAIL].down = False
        assert due_notifications(conn, config, now=t0 + dt.timedelta(seconds=630)) == [n]  # the sweep retries
        assert states(conn, n)["email"] == ("pending", None)
        deliver(conn, n, ch, config, now=t0 + dt.timedelta(seconds=631))
        assert states(conn, n)["email"] == ("sent", None) and len(ch[Channel.EMAIL].sent) == 1
        email_events = [e[1] for e in events(conn, n) if e[0] == "email"]
        assert email_events == ["attempt_failed"] * 3 + ["failed", "retried", "sent"]
        (error,) = conn.execute(
            "SELECT detail FROM notification_events WHERE event = 'attempt_failed' LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        assert error == "email is down"


def test_a_refused_address_is_failed_for_good_without_the_address(notify_db: str) -> None:
    ch = channels()
    ch[Channel.EMAIL].refused.add("o-1@example.org")
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",), consent_in_car=False)
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1"), 1, OTA).notification_id
        conn.commit()
        deliver(conn, n, ch)
        assert states(conn, n)["email"] == ("failed", None) and states(conn, n)["webhook"] == ("sent", None)
        later = dt.datetime.now(UTC) + dt.timedelta(days=30)
        assert due_notifications(conn, now=later) == []  # refused for good: never retried
        assert "example.org" not in str(list_notifications(conn, vehicle_id="VEH-1"))


def test_listing_and_erasing_an_owner(notify_db: str) -> None:
    ch = channels()
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",))
        set_motion(conn, "VEH-1", speed_kmh=50.0, moving_s_ago=1)
        visit = {
            "kind": "shop_visit",
            "centre_name": "North",
            "starts_at": (dt.datetime.now(UTC) + dt.timedelta(days=2)).isoformat(),
            "duration_min": 60,
        }
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1"), 7, {"remedy": visit}).notification_id
        conn.commit()
        deliver(conn, n, ch)
        (mine,) = list_notifications(conn, owner_id="O-1")
        assert mine["notification_id"] == n and mine["remedy_id"] == 7
        assert [d["state"] for d in mine["deliveries"]] == ["sent", "held", "sent"]  # email, in_car, webhook
        assert [e["event"] for e in mine["events"]] == ["queued", "held", "sent", "sent"]
        assert list_notifications(conn, vehicle_id="VEH-1") == [mine]
        assert list_notifications(conn, vehicle_id="VEH-9") == []
        with pytest.raises(ValueError):
            list_notifications(conn)
        # the visit has begun: the in-car message is no longer worth sending
        set_motion(conn, "VEH-1", speed_kmh=0.0, moving_s_ago=None)
        deliver(conn, n, ch, now=dt.datetime.now(UTC) + dt.timedelta(days=3))
        assert states(conn, n)["in_car"] == ("suppressed", "expired")
        # erasing the owner is one DELETE; the outbox keeps its history without them
        conn.execute("DELETE FROM owners WHERE owner_id = 'O-1'")
        conn.commit()
        owners = conn.execute(
            "SELECT count(*) FROM notification_events WHERE owner_id IS NOT NULL"
            " UNION ALL SELECT count(*) FROM notification_deliveries WHERE owner_id IS NOT NULL"
        ).fetchall()
        assert owners == [(0,), (0,)]
        assert len(list_notifications(conn, vehicle_id="VEH-1")[0]["events"]) == 5
        n2 = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1", "b"), 7, OTA).notification_id
        deliver(conn, n2, ch)
        assert set(states(conn, n2).values()) == {("suppressed", "no_owner")}


class _Broken(MemoryTransport):
    def _send(self, out: object) -> None:  # type: ignore[override]
        raise RuntimeError("a bug in a backend")


def test_a_backend_bug_is_a_failed_attempt_and_the_other_channels_go_out(notify_db: str) -> None:
    ch = channels()
    ch[Channel.EMAIL] = _Broken(Channel.EMAIL)
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",), consent_in_car=False)
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1"), 1, OTA).notification_id
        conn.commit()
        result = deliver(conn, n, ch)
        assert {c.channel: c.state for c in result.channels} == {
            Channel.IN_CAR: "suppressed",
            Channel.EMAIL: "pending",
            Channel.WEBHOOK: "sent",
        }
        (error,) = conn.execute(
            "SELECT last_error FROM notification_deliveries WHERE notification_id = %s AND channel = 'email'",
            (n,),
        ).fetchone()  # type: ignore[misc]
        assert error == "RuntimeError: a bug in a backend" and result.next_at is not None
