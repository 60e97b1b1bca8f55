"""Delivering one notification: read its situation, decide each open channel, send, record.

Owns the imperative shell around `policy.decide`: one transaction per notification, which locks
the notification's row (no two runs of it at once, whatever runs them) and the owner (an
advisory lock, so that the rate limit counts every other delivery of that owner); sending through
the channels; and recording each change of a delivery with an event. What it reads (the owner's
preferences, recent sends, the vehicle's movement) is `situation`'s.
A failed send leaves the delivery pending with a retry time that doubles each time; after
`max_attempts` in a row it is failed, kept, and a sweep tries it again `failed_retry_after_s`
later (`due_notifications`). Delivery is at least once: a crash between a send and the commit
sends again, with the same notification id for the receiver to drop. The task queue around this
is `tasks`'; the rules are `policy`'s; the wording is `messages`'.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from remedies.notifications.channels.base import DeliveryError, Outgoing, Transport
from remedies.notifications.facts import NoticeFacts
from remedies.notifications.messages import Message, render
from remedies.notifications.policy import (
    Channel,
    Hold,
    Motion,
    PolicyConfig,
    Send,
    Situation,
    Suppress,
    VehicleState,
    decide,
    vehicle_state,
)
from remedies.notifications.situation import OWNER_SQL, preferences_of, read_motion, recent_sends

log = logging.getLogger(__name__)
_ORDER = {c: i for i, c in enumerate(Channel)}


@dataclass(frozen=True)
class DeliveryConfig:
    """Units in the names."""

    policy: PolicyConfig = PolicyConfig()
    max_attempts: int = 6  # failed sends in a row before a delivery is marked failed
    backoff_base_s: float = 30.0  # the wait after the first failure; it doubles with each one
    backoff_max_s: float = 900.0
    failed_retry_after_s: float = 3600.0  # a sweep tries a failed delivery again this much later
    motion_lookback_s: float = 3600.0  # how far back "last moving" is looked for

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.backoff_base_s < 0 or self.backoff_max_s < self.backoff_base_s:
            raise ValueError("max_attempts >= 1 and 0 <= backoff_base_s <= backoff_max_s")
        if self.motion_lookback_s <= self.policy.parked_after_s:
            raise ValueError("motion_lookback_s must be longer than the policy's parked_after_s")

    def backoff_s(self, attempts: int) -> float:
        """The wait after the `attempts`-th failure in a row (1, 2, ...)."""
        return min(self.backoff_base_s * 2.0 ** max(attempts - 1, 0), self.backoff_max_s)


@dataclass(frozen=True)
class ChannelResult:
    channel: Channel
    state: str  # the delivery's state after this run
    reason: str | None = None  # held or suppressed: why
    error: str | None = None  # a failed send: the error, without the address
    due_at: dt.datetime | None = None  # pending or held: when it is decided again (None: parked/sweep)


@dataclass(frozen=True)
class DeliveryResult:
    notification_id: int
    channels: tuple[ChannelResult, ...] = ()

    @property
    def next_at(self) -> dt.datetime | None:
        """The earliest time a retry is due or a timed hold ends (a follow-up job then)."""
        times = [c.due_at for c in self.channels if c.due_at is not None and c.state in ("pending", "held")]
        return min(times, default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "channels": {
                c.channel.value: {"state": c.state, "reason": c.reason, "error": c.error}
                for c in self.channels
            },
        }


@dataclass(frozen=True)
class _Delivery:
    channel: Channel
    state: str
    reason: str | None
    hold_until: dt.datetime | None
    attempts: int
    retry_after: dt.datetime | None


def deliver(
    conn: psycopg.Connection,
    notification_id: int,
    transports: Mapping[Channel, Transport],
    config: DeliveryConfig = DeliveryConfig(),
    *,
    now: dt.datetime | None = None,
) -> DeliveryResult:
    """Decide every open delivery (pending, held) of one notification and act: send, hold or
    suppress, recording each change. A channel without a transport here is switched off. Safe to
    run any number of times: a sent or suppressed delivery is never looked at again. Raises
    psycopg.Error when the database fails (nothing of this run is then recorded)."""
    now = now or dt.datetime.now(dt.UTC)
    with conn.transaction():
        head = conn.execute(
            "SELECT vehicle_id, critical, facts, expires_at, booking_id IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM bookings b WHERE b.booking_id = n.booking_id AND b.status = 'booked')"
            " FROM notifications n WHERE notification_id = %s FOR UPDATE OF n",
            (notification_id,),
        ).fetchone()
        if head is None:
            return DeliveryResult(notification_id)
        vehicle_id, critical, facts_json, expires_at, withdrawn = head
        owner = conn.execute(OWNER_SQL, (vehicle_id,)).fetchone()
        owner_id: str | None = owner[0] if owner else None
        if owner_id is not None:
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"notify-owner:{owner_id}",)
            )
        rows = conn.execute(
            "SELECT channel, state, reason, hold_until, attempts, retry_after FROM notification_deliveries"
            " WHERE notification_id = %s AND state IN ('pending', 'held') FOR UPDATE",
            (notification_id,),
        ).fetchall()
        open_ = sorted((_Delivery(Channel(r[0]), *r[1:]) for r in rows), key=lambda d: _ORDER[d.channel])
        if not open_:
            return DeliveryResult(notification_id)
        record = _Recorder(conn, notification_id, owner_id, now, config)
        try:
            facts = NoticeFacts.model_validate(facts_json)
        except ValidationError as exc:  # edited by hand: never sendable, kept for a person to look at
            error = f"the stored facts are invalid: {exc.error_count()} errors"
            return DeliveryResult(
                notification_id, tuple(record.failed(d, error, permanent=True) for d in open_)
            )
        prefs, language = preferences_of(owner, vehicle_id)
        sent_before = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM notification_deliveries"
            " WHERE notification_id = %s AND state = 'sent')",
            (notification_id,),
        ).fetchone()
        motion = None
        if any(d.channel is Channel.IN_CAR for d in open_):
            motion = _motion(conn, [vehicle_id], config).get(vehicle_id)
        situation = Situation(
            now=now,
            owner=prefs,
            vehicle=vehicle_state(motion, now, config.policy),
            critical=critical,
            recent_sends=recent_sends(conn, owner_id, notification_id, now, config.policy),
            already_sent=bool(sent_before and sent_before[0]),
            expires_at=expires_at,
            withdrawn=bool(withdrawn),
            channels_on=frozenset(transports),
        )
        results = []
        for d in open_:
            if d.state == "pending" and d.retry_after is not None and d.retry_after > now:
                results.append(ChannelResult(d.channel, "pending", due_at=d.retry_after))  # backing off
                continue
            decision = decide(d.channel, situation, config.policy)
            if isinstance(decision, Send):
                assert prefs is not None and owner_id is not None  # decide() sends to an owner only
                message = render(facts, notification_id=notification_id, language=language,
                                 time_zone=prefs.time_zone)  # fmt: skip
                out = Outgoing(notification_id, d.channel, vehicle_id, owner_id,
                               prefs.addresses[d.channel], message, now)  # fmt: skip
                result = _send(transports[d.channel], out, d, record)
                if result.state == "sent":
                    situation = replace(situation, already_sent=True)
            elif isinstance(decision, Hold):
                result = record.held(d, decision)
            else:
                result = record.suppressed(d, decision)
            results.append(result)
    return DeliveryResult(notification_id, tuple(results))


def _send(transport: Transport, out: Outgoing, d: _Delivery, record: _Recorder) -> ChannelResult:
    config = record.config
    try:
        transport.send(out)
    except Exception as exc:  # noqa: BLE001 (a backend's bug must not stop the other channels)
        permanent = isinstance(exc, DeliveryError) and exc.permanent
        if not isinstance(exc, DeliveryError):
            log.exception(
                "notification %s: the %s channel failed unexpectedly", out.notification_id, d.channel
            )
        text = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        error = text.replace(out.address, "<address>")[:500]
        attempts = d.attempts + 1
        if permanent or attempts >= config.max_attempts:
            record.attempt_failed(d, error)
            return record.failed(d, error, permanent=permanent, attempts=attempts)
        retry_at = record.now + dt.timedelta(seconds=config.backoff_s(attempts))
        return record.attempt_failed(d, error, retry_at=retry_at)
    return record.sent(d, out.message)


class _Recorder:
    """Writes a delivery's new state and its event, with the owner it was decided for."""

    def __init__(
        self, conn: psycopg.Connection, notification_id: int, owner_id: str | None, now: dt.datetime,
        config: DeliveryConfig,
    ) -> None:  # fmt: skip
        self.conn, self.id, self.owner_id, self.now, self.config = (
            conn,
            notification_id,
            owner_id,
            now,
            config,
        )

    def _set(self, d: _Delivery, state: str, **columns: Any) -> None:
        values = {"reason": None, "hold_until": None, "retry_after": None, **columns}
        sets = ", ".join(f"{k} = %({k})s" for k in values)
        self.conn.execute(
            "UPDATE notification_deliveries SET state = %(state)s, owner_id = %(owner)s,"
            f" updated_at = %(now)s, {sets} WHERE notification_id = %(id)s AND channel = %(channel)s",
            {**values, "state": state, "owner": self.owner_id, "now": self.now, "id": self.id,
             "channel": d.channel.value},
        )  # fmt: skip

    def _event(self, d: _Delivery, event: str, reason: str | None = None, detail: str = "") -> None:
        self.conn.execute(
            "INSERT INTO notification_events (notification_id, channel, event, reason, detail, owner_id, at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self.id, d.channel.value, event, reason, detail, self.owner_id, self.now),
        )

    def sent(self, d: _Delivery, message: Message) -> ChannelResult:
        body = {"subject": message.subject, "language": message.language, "critical": message.critical,
                "parts": list(message.parts)}  # fmt: skip
        self._set(d, "sent", sent_at=self.now, message=Jsonb(body), attempts=0, last_error=None)
        self._event(d, "sent")
        return ChannelResult(d.channel, "sent")

    def held(self, d: _Delivery, hold: Hold) -> ChannelResult:
        if not (d.state == "held" and d.reason == hold.reason.value and d.hold_until == hold.until):
            self._set(d, "held", reason=hold.reason.value, hold_until=hold.until)
            self._event(
                d, "held", hold.reason.value, hold.until.isoformat() if hold.until else "until parked"
            )
        return ChannelResult(d.channel, "held", hold.reason.value, due_at=hold.until)

    def suppressed(self, d: _Delivery, suppress: Suppress) -> ChannelResult:
        self._set(d, "suppressed", reason=suppress.reason.value)
        self._event(d, "suppressed", suppress.reason.value)
        return ChannelResult(d.channel, "suppressed", suppress.reason.value)

    def attempt_failed(self, d: _Delivery, error: str, retry_at: dt.datetime | None = None) -> ChannelResult:
        self._set(d, "pending", attempts=d.attempts + 1, last_error=error, retry_after=retry_at)
        self._event(d, "attempt_failed", detail=error)
        return ChannelResult(d.channel, "pending", error=error, due_at=retry_at)

    def failed(
        self, d: _Delivery, error: str, *, permanent: bool, attempts: int | None = None
    ) -> ChannelResult:
        retry_after = None if permanent else self.now + dt.timedelta(seconds=self.config.failed_retry_after_s)
        self._set(d, "failed", attempts=attempts if attempts is not None else d.attempts, last_error=error,
                  retry_after=retry_after)  # fmt: skip
        self._event(d, "failed", "permanent" if permanent else "attempts_exhausted", error)
        return ChannelResult(d.channel, "failed", error=error)


def due_notifications(
    conn: psycopg.Connection, config: DeliveryConfig = DeliveryConfig(), *, now: dt.datetime | None = None
) -> list[int]:
    """The notifications with a delivery to decide again now: pending ones (whose retry time has
    come: their job may have been lost), held ones whose hold ended or whose vehicle is parked now,
    and failed ones (not refused for good) whose retry time has come: those are made pending again
    (event `retried`). Raises psycopg.Error."""
    now = now or dt.datetime.now(dt.UTC)
    with conn.transaction():
        retried = conn.execute(
            "UPDATE notification_deliveries SET state = 'pending', attempts = 0, retry_after = NULL,"
            " updated_at = %s WHERE state = 'failed' AND retry_after <= %s"
            " RETURNING notification_id, channel, owner_id",
            (now, now),
        ).fetchall()
        if retried:
            conn.cursor().executemany(
                "INSERT INTO notification_events (notification_id, channel, event, owner_id, at)"
                " VALUES (%s, %s, 'retried', %s, %s)",
                [(*r, now) for r in retried],
            )
        due = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT notification_id FROM notification_deliveries"
                " WHERE (state = 'pending' AND (retry_after IS NULL OR retry_after <= %s))"
                " OR (state = 'held' AND hold_until <= %s)",
                (now, now),
            )
        }
        waiting = conn.execute(
            "SELECT DISTINCT d.notification_id, n.vehicle_id FROM notification_deliveries d"
            " JOIN notifications n USING (notification_id) WHERE d.state = 'held' AND d.hold_until IS NULL"
        ).fetchall()
        motion = _motion(conn, {v for _, v in waiting}, config)
        due |= {
            n for n, v in waiting if vehicle_state(motion.get(v), now, config.policy) is VehicleState.PARKED
        }
    return sorted(due)


def _motion(
    conn: psycopg.Connection, vehicle_ids: Iterable[str], config: DeliveryConfig
) -> dict[str, Motion]:
    return read_motion(
        conn, vehicle_ids, lookback_s=config.motion_lookback_s, moving_kmh=config.policy.moving_kmh
    )
