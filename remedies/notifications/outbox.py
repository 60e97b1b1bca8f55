"""The outbox tables: putting a notification in, and reading what became of them.

Owns `enqueue` (the remedy engine's entry point: one notification per (vehicle, alarm, remedy)
and stage, whatever the retries; a second call returns the row the first made), the listing of a vehicle's
or an owner's notifications with every delivery and event (the single customer view), and the
counts for reports (`counts`). Deciding and sending is `delivery`'s; the task queue is `tasks`'.
SQL only; the tables are migrations 0016 and 0020 (stages).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from remedies.notifications.facts import NoticeFacts
from remedies.notifications.policy import Channel

_COLUMNS = (
    "notification_id, vehicle_id, alarm_id, remedy_id, critical, facts, expires_at, created_at,"
    " stage, booking_id"
)


@dataclass(frozen=True)
class Notification:
    """One row of `notifications`. `created`: this call made it (False: it existed already)."""

    notification_id: int
    vehicle_id: str
    alarm_id: int
    remedy_id: int
    critical: bool
    facts: dict[str, Any]
    expires_at: dt.datetime | None
    created_at: dt.datetime
    stage: str = "remedy"  # `remedies.notifications.facts.Stage`
    booking_id: int | None = None  # a visit's notice: its booking
    created: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "vehicle_id": self.vehicle_id,
            "alarm_id": self.alarm_id,
            "remedy_id": self.remedy_id,
            "critical": self.critical,
            "facts": self.facts,
            "expires_at": _iso(self.expires_at),
            "created_at": _iso(self.created_at),
            "stage": self.stage,
            "booking_id": self.booking_id,
        }


def enqueue(
    conn: psycopg.Connection,
    vehicle_id: str,
    alarm_id: int,
    remedy_id: int,
    facts: NoticeFacts | Mapping[str, Any],
    *,
    booking_id: int | None = None,
) -> Notification:
    """Put the notification of (vehicle, alarm, remedy), the facts' stage and, for a visit, its
    `booking_id` in the outbox, with one
    pending delivery per channel, and return its row; when it exists already, return that row unchanged
    (`created` False). `facts` (`remedies.notifications.facts.NoticeFacts`, or its JSON form) may leave
    out `fault`, `severity` and `explanation`: the alarm's are used. Commits nothing itself: it runs in
    the caller's transaction (or its own when there is none). The delivery worker picks it up on its
    next sweep; `tasks.defer_delivery` after the commit sends it at once.

    Raises ValueError for invalid facts or ids, or an alarm that does not exist or belongs to
    another vehicle; psycopg.Error when the database fails."""
    ids = [("alarm_id", alarm_id), ("remedy_id", remedy_id)]
    for name, value in ids + ([("booking_id", booking_id)] if booking_id is not None else []):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
            raise ValueError(f"{name} must be a positive 64-bit integer, not {value!r}")
    if not isinstance(facts, NoticeFacts | Mapping):
        raise ValueError("facts must be NoticeFacts or a mapping of its fields")
    with conn.transaction():
        alarm = conn.execute(
            "SELECT vehicle_id, fault, severity, explanation FROM alarms WHERE alarm_id = %s", (alarm_id,)
        ).fetchone()
        if alarm is None or alarm[0] != vehicle_id:
            raise ValueError(f"alarm {alarm_id} is not an alarm of vehicle {vehicle_id!r}")
        if isinstance(facts, NoticeFacts):
            parsed = facts
        else:
            defaults = {"fault": alarm[1], "severity": alarm[2], "explanation": alarm[3][:1000]}
            parsed = NoticeFacts.model_validate(
                {**defaults, **dict(facts)}
            )  # ValidationError is a ValueError
        row = conn.execute(
            "INSERT INTO notifications (vehicle_id, alarm_id, remedy_id, critical, facts, expires_at, stage,"
            " booking_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING"
            f" RETURNING {_COLUMNS}",
            (vehicle_id, alarm_id, remedy_id, parsed.critical, Jsonb(parsed.model_dump(mode="json")),
             parsed.expires_at, parsed.stage, booking_id),
        ).fetchone()  # fmt: skip
        if row is None:
            existing = conn.execute(
                f"SELECT {_COLUMNS} FROM notifications"
                " WHERE vehicle_id = %s AND alarm_id = %s AND remedy_id = %s AND stage = %s"
                " AND booking_id IS NOT DISTINCT FROM %s",
                (vehicle_id, alarm_id, remedy_id, parsed.stage, booking_id),
            ).fetchone()
            assert existing is not None  # the conflict was with it, and notifications are not deleted
            return replace(Notification(*existing), created=False)
        notification = Notification(*row)
        conn.cursor().executemany(
            "INSERT INTO notification_deliveries (notification_id, channel) VALUES (%s, %s)",
            [(notification.notification_id, channel.value) for channel in Channel],
        )
        conn.execute(
            "INSERT INTO notification_events (notification_id, event, detail) VALUES (%s, 'queued', %s)",
            (notification.notification_id, f"alarm {alarm_id}, remedy {remedy_id}"),
        )
    return notification


def list_notifications(
    conn: psycopg.Connection, *, vehicle_id: str | None = None, owner_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest notifications of a vehicle, or of an owner (those of the owner's vehicles and those
    decided for the owner), each with its deliveries and its events in order. Addresses are not
    included: they stay in the registry. Raises ValueError without a vehicle or an owner."""
    if (vehicle_id is None) == (owner_id is None):
        raise ValueError("give either a vehicle or an owner")
    if vehicle_id is not None:
        where, params = "n.vehicle_id = %s", (vehicle_id,)
    else:
        where = (
            "n.vehicle_id IN (SELECT vehicle_id FROM vehicles WHERE owner_id = %s) OR EXISTS"
            " (SELECT 1 FROM notification_deliveries d WHERE d.notification_id = n.notification_id"
            " AND d.owner_id = %s)"
        )
        params = (owner_id, owner_id)  # type: ignore[assignment]
    rows = conn.execute(
        f"SELECT {', '.join('n.' + c.strip() for c in _COLUMNS.split(','))} FROM notifications n"
        f" WHERE {where} ORDER BY n.created_at DESC, n.notification_id DESC LIMIT %s",
        (*params, limit),
    ).fetchall()
    found = [Notification(*row).as_dict() for row in rows]
    ids = [n["notification_id"] for n in found]
    deliveries = _by_notification(
        conn,
        "notification_deliveries",
        ("channel", "state", "reason", "hold_until", "attempts", "last_error", "retry_after", "owner_id",
         "sent_at", "message", "updated_at"),
        "channel",
        ids,
    )  # fmt: skip
    events = _by_notification(
        conn,
        "notification_events",
        ("at", "channel", "event", "reason", "detail", "owner_id"),
        "event_id",
        ids,
    )
    for n in found:
        n["deliveries"] = deliveries[n["notification_id"]]
        n["events"] = events[n["notification_id"]]
    return found


@dataclass(frozen=True)
class NotificationCounts:
    """What became of the notifications (for `fleet notify counts`, and the demo and simulator
    summaries). Deliveries are per channel: one notification has one per channel.

    `sent`: messages that went out (deliveries sent); `reached`: notifications that went out on at
    least one channel; `suppressed`: by reason; `held`: deliveries waiting now, by reason;
    `ever_held`: deliveries that were held at least once, by reason (a message held for quiet
    hours and sent in the morning counts here and in `sent`)."""

    notifications: int = 0
    reached: int = 0
    sent: int = 0
    pending: int = 0
    failed: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    ever_held: dict[str, int] = field(default_factory=dict)
    sent_by_channel: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "notifications": self.notifications,
            "reached": self.reached,
            "sent": self.sent,
            "sent_by_channel": self.sent_by_channel,
            "pending": self.pending,
            "failed": self.failed,
            "held": self.held,
            "suppressed": self.suppressed,
            "ever_held": self.ever_held,
        }


def counts(
    conn: psycopg.Connection, *, vehicle_ids: list[str] | None = None, since: dt.datetime | None = None
) -> NotificationCounts:
    """The counts over the notifications created since `since` (all by default) of `vehicle_ids`
    (all by default). Raises psycopg.Error when the database fails."""
    scope = (
        "SELECT notification_id FROM notifications WHERE (%(v)s::text[] IS NULL OR vehicle_id = ANY(%(v)s))"
    )
    scope += " AND (%(s)s::timestamptz IS NULL OR created_at >= %(s)s)"
    p = {"v": vehicle_ids, "s": since}
    (total,) = conn.execute(f"SELECT count(*) FROM ({scope}) n", p).fetchone()  # type: ignore[misc]
    by_state: dict[tuple[str, str | None, str], int] = {}
    for state, reason, channel, n in conn.execute(
        "SELECT state, reason, channel, count(*) FROM notification_deliveries"
        f" WHERE notification_id IN ({scope}) GROUP BY 1, 2, 3",
        p,
    ):
        by_state[(state, reason, channel)] = n
    (reached,) = conn.execute(  # type: ignore[misc]
        f"SELECT count(DISTINCT notification_id) FROM notification_deliveries WHERE state = 'sent'"
        f" AND notification_id IN ({scope})",
        p,
    ).fetchone()
    ever: dict[str, int] = dict(
        conn.execute(
            "SELECT reason, count(DISTINCT (notification_id, channel)) FROM notification_events"
            f" WHERE event = 'held' AND notification_id IN ({scope}) GROUP BY reason ORDER BY reason",
            p,
        ).fetchall()
    )

    def total_of(state: str) -> int:
        return sum(n for (s, _, _), n in by_state.items() if s == state)

    def by(state: str, key: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for k, n in by_state.items():
            if k[0] == state:
                out[str(k[key])] = out.get(str(k[key]), 0) + n
        return dict(sorted(out.items()))

    return NotificationCounts(
        notifications=int(total),
        reached=int(reached),
        sent=total_of("sent"),
        pending=total_of("pending"),
        failed=total_of("failed"),
        suppressed=by("suppressed", 1),
        held=by("held", 1),
        ever_held={str(k): int(v) for k, v in ever.items()},
        sent_by_channel=by("sent", 2),
    )


def _by_notification(
    conn: psycopg.Connection, table: str, columns: tuple[str, ...], order: str, ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """The rows of `table` (its `columns`) of each notification of `ids`, in `order`."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for row in conn.execute(
        f"SELECT notification_id, {', '.join(columns)} FROM {table}"
        f" WHERE notification_id = ANY(%s) ORDER BY notification_id, {order}",
        (ids,),
    ):
        out[row[0]].append({k: _iso(v) for k, v in zip(columns, row[1:], strict=True)})
    return out


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value
