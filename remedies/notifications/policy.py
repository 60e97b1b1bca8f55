"""When each channel of an owner notification may go out: the pure decision.

Owns the rules, in the order they are applied to each channel (docs/notifications.md):
1. the channel is switched on in this deployment (else suppressed: `channel_off`);
2. the vehicle has an owner, who consented to the channel and gave its address (else suppressed:
   `no_owner`, `no_consent`, `no_address`);
3. the message is not out of date (a visit that has started: suppressed, `expired`; a visit that
   was moved or cancelled since: suppressed, `withdrawn`, the new booking has its own notice);
4. an in-car message waits until the vehicle is parked (held: `driving`, or `vehicle_state_unknown`
   while its state is not known);
5. nothing goes out inside the owner's quiet hours, in the owner's time zone (held until they end:
   `quiet_hours`);
6. at most `max_per_window` notifications per owner in any rolling `window_s` (suppressed:
   `rate_limit`). A notification counts from its first message on any channel; its other channels
   do not count again. The one exception: a critical safety message ignores the rate limit (never
   consent, quiet hours or the parked rule), and it still counts against the limit.
Also the vehicle's state (driving, parked, unknown) from its latest data (`vehicle_state`).

No I/O and no clock: the caller passes `now`. Reading the registry and the telemetry is
`remedies.notifications.outbox`'s, sending is the channels', the wording is `messages`'.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class Channel(enum.StrEnum):
    """How a notification reaches the owner, in the order a delivery tries them."""

    IN_CAR = "in_car"  # the vehicle's screen, over MQTT (registry: consent_in_car)
    EMAIL = "email"  # e-mail over SMTP (registry: consent_email, email)
    WEBHOOK = "webhook"  # the operator's phone gateway (SMS or app push) over HTTP (consent_sms, phone)


class VehicleState(enum.StrEnum):
    PARKED = "parked"
    DRIVING = "driving"  # moving, or stopped for less than `parked_after_s` (traffic, a light)
    UNKNOWN = "unknown"  # no speed data, or the newest says it moves but is too old to trust


class Reason(enum.StrEnum):
    """Why a delivery is held or suppressed."""

    DRIVING = "driving"  # held: an in-car message waits until the vehicle is parked
    VEHICLE_STATE_UNKNOWN = "vehicle_state_unknown"  # held: the same, while the state is not known
    QUIET_HOURS = "quiet_hours"  # held until the owner's quiet hours end
    CHANNEL_OFF = "channel_off"  # suppressed: this deployment has no such channel configured
    NO_OWNER = "no_owner"  # suppressed: the vehicle has no owner in the registry
    NO_CONSENT = "no_consent"  # suppressed: the owner did not consent to this channel
    NO_ADDRESS = "no_address"  # suppressed: the owner gave no address for it
    EXPIRED = "expired"  # suppressed: the message is out of date (its visit has started)
    WITHDRAWN = "withdrawn"  # suppressed: its visit was moved or cancelled (a new booking has its own)
    RATE_LIMIT = "rate_limit"  # suppressed: the owner had `max_per_window` notifications already


HOLD_REASONS = frozenset({Reason.DRIVING, Reason.VEHICLE_STATE_UNKNOWN, Reason.QUIET_HOURS})


@dataclass(frozen=True)
class PolicyConfig:
    """The rules' numbers. Units in the names."""

    max_per_window: int = 3  # notifications per owner in any rolling window
    window_s: float = 86_400.0  # the rolling window: 24 h
    critical_ignores_rate_limit: bool = True  # the one exception for critical safety messages
    moving_kmh: float = 2.0  # above this speed a vehicle moves
    parked_after_s: float = 120.0  # stopped this long (or more) is parked, not waiting at a light
    stale_after_s: float = 300.0  # a "moving" reading older than this says nothing about now

    def __post_init__(self) -> None:
        if self.max_per_window < 1 or self.window_s <= 0:
            raise ValueError("the rate limit needs max_per_window >= 1 and window_s > 0")
        if self.parked_after_s < 0 or self.stale_after_s <= 0 or self.moving_kmh < 0:
            raise ValueError("parked_after_s, stale_after_s and moving_kmh must not be negative")


@dataclass(frozen=True)
class Preferences:
    """An owner's choices from the registry: consented channels with their addresses (an in-car
    message's address is the vehicle id), the time zone (IANA) and the quiet hours (local
    `start`-`end`, which may cross midnight; None: none)."""

    time_zone: str = "UTC"
    quiet_hours: tuple[dt.time, dt.time] | None = None
    consented: frozenset[Channel] = frozenset()
    addresses: Mapping[Channel, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Situation:
    """Everything a decision about one notification looks at, at `now` (timezone-aware).

    `recent_sends`: when each *other* notification of this owner first went out (any channel);
    `already_sent`: this notification went out on some channel already (it counts, once)."""

    now: dt.datetime
    owner: Preferences | None
    vehicle: VehicleState = VehicleState.UNKNOWN
    critical: bool = False
    recent_sends: tuple[dt.datetime, ...] = ()
    already_sent: bool = False
    expires_at: dt.datetime | None = None
    withdrawn: bool = False  # the booking the message is about is not open any more
    channels_on: frozenset[Channel] = frozenset(Channel)


@dataclass(frozen=True)
class Send:
    pass


@dataclass(frozen=True)
class Hold:
    """Decide again at `until`; `until` None: when the vehicle is parked."""

    reason: Reason
    until: dt.datetime | None = None


@dataclass(frozen=True)
class Suppress:
    reason: Reason


Decision = Send | Hold | Suppress


def decide(channel: Channel, situation: Situation, config: PolicyConfig = PolicyConfig()) -> Decision:
    """Send now, hold, or suppress `channel` (the rules in the module docstring, in that order).
    Raises ValueError for a naive `now` or an unknown time zone."""
    now, owner = situation.now, situation.owner
    if now.tzinfo is None:
        raise ValueError("decide needs a timezone-aware now")
    if channel not in situation.channels_on:
        return Suppress(Reason.CHANNEL_OFF)
    if owner is None:
        return Suppress(Reason.NO_OWNER)
    if channel not in owner.consented:
        return Suppress(Reason.NO_CONSENT)
    if not owner.addresses.get(channel):
        return Suppress(Reason.NO_ADDRESS)
    if situation.expires_at is not None and now >= situation.expires_at:
        return Suppress(Reason.EXPIRED)
    if situation.withdrawn:
        return Suppress(Reason.WITHDRAWN)
    if channel is Channel.IN_CAR and situation.vehicle is not VehicleState.PARKED:
        unknown = situation.vehicle is VehicleState.UNKNOWN
        return Hold(Reason.VEHICLE_STATE_UNKNOWN if unknown else Reason.DRIVING)
    if owner.quiet_hours is not None and in_quiet_hours(now, owner.time_zone, owner.quiet_hours):
        return Hold(Reason.QUIET_HOURS, quiet_hours_end(now, owner.time_zone, owner.quiet_hours))
    exempt = situation.critical and config.critical_ignores_rate_limit
    if not (situation.already_sent or exempt) and not within_rate_limit(now, situation.recent_sends, config):
        return Suppress(Reason.RATE_LIMIT)
    return Send()


def within_rate_limit(now: dt.datetime, sends: Iterable[dt.datetime], config: PolicyConfig) -> bool:
    """Whether one more notification at `now` keeps the owner at or under `max_per_window` in the
    window (now - window_s, now]. A send stamped after `now` (another clock) counts too."""
    start = now - dt.timedelta(seconds=config.window_s)
    return sum(1 for t in sends if t > start) < config.max_per_window


# -- quiet hours --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone") from exc


def in_quiet_hours(at: dt.datetime, time_zone: str, quiet: tuple[dt.time, dt.time]) -> bool:
    """Whether the owner's wall clock at instant `at` reads inside [start, end), which may cross
    midnight. DST needs nothing special: the instant is converted to the local wall time it shows.
    Raises ValueError for an unknown time zone or a naive `at`."""
    if at.tzinfo is None:
        raise ValueError("in_quiet_hours needs a timezone-aware instant")
    start, end = quiet
    local = at.astimezone(_zone(time_zone)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end


_MINUTE = dt.timedelta(minutes=1)
_MAX_STEPS = 3 * 24 * 60  # a span is < 24 h; DST can add an hour or two; never reached in practice


def quiet_hours_end(at: dt.datetime, time_zone: str, quiet: tuple[dt.time, dt.time]) -> dt.datetime:
    """The first whole minute (UTC) at or after `at` that is outside the quiet hours; `at` itself
    when it is outside. Exact for every zone whose offsets are whole minutes (all current ones):
    a wall clock leaves the span either when it reads `end` or at a DST jump, both on a whole
    minute. At most a minute late otherwise, and never inside. Raises ValueError as
    `in_quiet_hours` does."""
    if not in_quiet_hours(at, time_zone, quiet):
        return at
    utc = at.astimezone(dt.UTC)
    step = utc.replace(second=0, microsecond=0)
    if step < utc:
        step += _MINUTE
    for _ in range(_MAX_STEPS):
        if not in_quiet_hours(step, time_zone, quiet):
            return step
        step += _MINUTE
    raise ValueError(f"quiet hours {quiet} in {time_zone} never end")  # pragma: no cover


# -- the vehicle's state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Motion:
    """What the latest data says about a vehicle's movement: its newest speed reading with that
    reading's time, and the time of its newest reading above `moving_kmh` (None: none in the
    look-back the caller used, which must be longer than `parked_after_s`)."""

    speed_kmh: float | None = None
    speed_at: dt.datetime | None = None
    last_moving_at: dt.datetime | None = None


def vehicle_state(
    motion: Motion | None, now: dt.datetime, config: PolicyConfig = PolicyConfig()
) -> VehicleState:
    """Parked: the newest speed is at or below `moving_kmh` and nothing moved in the last
    `parked_after_s` (a car that stopped and went quiet is parked). Driving: it moves, by a reading
    at most `stale_after_s` old, or it stopped less than `parked_after_s` ago. Unknown: no speed
    data, or a "moving" reading too old to say anything about now."""
    if motion is None or motion.speed_kmh is None or motion.speed_at is None:
        return VehicleState.UNKNOWN
    if motion.speed_kmh > config.moving_kmh:
        fresh = (now - motion.speed_at).total_seconds() <= config.stale_after_s
        return VehicleState.DRIVING if fresh else VehicleState.UNKNOWN
    moved_s = None if motion.last_moving_at is None else (now - motion.last_moving_at).total_seconds()
    if moved_s is not None and moved_s < config.parked_after_s:
        return VehicleState.DRIVING
    return VehicleState.PARKED
