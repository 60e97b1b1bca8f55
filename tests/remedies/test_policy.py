"""The notification policy, pure: no send inside quiet hours for any time zone and time (DST
included), never more than N per rolling window, consent always, in-car only when parked."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remedies.notifications.policy import (
    Channel,
    Hold,
    Motion,
    PolicyConfig,
    Preferences,
    Reason,
    Send,
    Situation,
    Suppress,
    VehicleState,
    decide,
    quiet_hours_end,
    vehicle_state,
)

UTC = dt.UTC
ALL = frozenset(Channel)
ADDRESSES = {Channel.IN_CAR: "VEH-1", Channel.EMAIL: "owner@example.org", Channel.WEBHOOK: "+4915100000000"}


def owner(zone: str = "UTC", quiet: tuple[dt.time, dt.time] | None = None, consented=ALL) -> Preferences:
    return Preferences(time_zone=zone, quiet_hours=quiet, consented=frozenset(consented), addresses=ADDRESSES)


def wall_clock_inside(at: dt.datetime, zone: str, quiet: tuple[dt.time, dt.time]) -> bool:
    """The test's own reading of "inside quiet hours": the owner's wall clock at that instant."""
    h, m = at.astimezone(zoneinfo.ZoneInfo(zone)).timetuple()[3:5]
    now_min, a, b = h * 60 + m, quiet[0].hour * 60 + quiet[0].minute, quiet[1].hour * 60 + quiet[1].minute
    return a <= now_min < b if a < b else (now_min >= a or now_min < b)


instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2080, 12, 31), timezones=st.just(UTC)
)
times = st.builds(dt.time, st.integers(0, 23), st.integers(0, 59))
quiet_spans = st.tuples(times, times).filter(lambda q: q[0] != q[1])
zones = st.timezones().map(str)


@settings(max_examples=400, deadline=None)
@given(now=instants, zone=zones, quiet=quiet_spans, channel=st.sampled_from(Channel), critical=st.booleans())
def test_never_sends_inside_quiet_hours(
    now: dt.datetime, zone: str, quiet: tuple[dt.time, dt.time], channel: Channel, critical: bool
) -> None:
    situation = Situation(now=now, owner=owner(zone, quiet), vehicle=VehicleState.PARKED, critical=critical)
    decision = decide(channel, situation)
    inside = wall_clock_inside(now, zone, quiet)
    if inside:
        assert isinstance(decision, Hold) and decision.reason is Reason.QUIET_HOURS
        until = decision.until
        assert until is not None and until > now
        assert not wall_clock_inside(until, zone, quiet)  # released at a time it may go out
        assert wall_clock_inside(until - dt.timedelta(minutes=1), zone, quiet) or until - now <= dt.timedelta(
            minutes=1
        )  # and not later than needed: the minute before is still quiet
        released = decide(
            channel, Situation(now=until, owner=owner(zone, quiet), vehicle=VehicleState.PARKED)
        )
        assert isinstance(released, Send)
    else:
        assert isinstance(decision, Send)


@settings(max_examples=300, deadline=None)
@given(now=instants, zone=zones, quiet=quiet_spans)
def test_the_hold_is_the_first_minute_outside(
    now: dt.datetime, zone: str, quiet: tuple[dt.time, dt.time]
) -> None:
    end = quiet_hours_end(now, zone, quiet)
    if not wall_clock_inside(now, zone, quiet):
        assert end == now
        return
    step = now.replace(second=0, microsecond=0) + dt.timedelta(
        minutes=1 if now.second or now.microsecond else 0
    )
    while step < end:  # every whole minute before it is quiet
        assert wall_clock_inside(step, zone, quiet)
        step += dt.timedelta(minutes=1)
    assert step == end and not wall_clock_inside(end, zone, quiet)


def test_dst_hand_checked() -> None:
    berlin = "Europe/Berlin"
    # Spring forward 2025-03-30: 02:00 CET becomes 03:00 CEST (01:00 UTC). Quiet 22:00-02:30: the
    # wall clock never reads 02:30 that night, so quiet hours end at the jump.
    assert quiet_hours_end(
        dt.datetime(2025, 3, 30, 0, 59, tzinfo=UTC), berlin, (dt.time(22), dt.time(2, 30))
    ) == (dt.datetime(2025, 3, 30, 1, 0, tzinfo=UTC))
    # Fall back 2025-10-26: 03:00 CEST becomes 02:00 CET (01:00 UTC). Quiet 01:00-02:30 ends at
    # 02:30 CEST (00:30 UTC); the repeated hour brings 02:00-02:30 CET (01:00-01:30 UTC) back.
    quiet = (dt.time(1), dt.time(2, 30))
    assert quiet_hours_end(dt.datetime(2025, 10, 25, 23, 10, tzinfo=UTC), berlin, quiet) == dt.datetime(
        2025, 10, 26, 0, 30, tzinfo=UTC
    )
    at = dt.datetime(2025, 10, 26, 1, 10, tzinfo=UTC)  # 02:10 CET, the second time
    assert quiet_hours_end(at, berlin, quiet) == dt.datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    # Across midnight in New York: 23:30 EST is inside 22:00-07:00, which ends at 07:00 EST = 12:00 UTC.
    ny = dt.datetime(2025, 1, 15, 4, 30, tzinfo=UTC)
    assert quiet_hours_end(ny, "America/New_York", (dt.time(22), dt.time(7))) == dt.datetime(
        2025, 1, 15, 12, 0, tzinfo=UTC
    )


@settings(max_examples=200, deadline=None)
@given(
    gaps_s=st.lists(st.integers(0, 40_000), min_size=1, max_size=40),
    critical=st.lists(st.booleans(), min_size=40, max_size=40),
    limit=st.integers(1, 5),
)
def test_never_more_than_n_per_rolling_window(gaps_s: list[int], critical: list[bool], limit: int) -> None:
    config = PolicyConfig(max_per_window=limit)
    now = dt.datetime(2025, 6, 1, tzinfo=UTC)
    sent: list[tuple[dt.datetime, bool]] = []
    for gap, is_critical in zip(gaps_s, critical, strict=False):
        now += dt.timedelta(seconds=gap)
        situation = Situation(
            now=now,
            owner=owner(),
            vehicle=VehicleState.PARKED,
            critical=is_critical,
            recent_sends=tuple(t for t, _ in sent),
        )
        decision = decide(Channel.EMAIL, situation, config)
        if isinstance(decision, Send):
            sent.append((now, is_critical))
        else:
            assert decision == Suppress(Reason.RATE_LIMIT) and not is_critical
    window = dt.timedelta(seconds=config.window_s)
    for i, (t, is_critical) in enumerate(sent):
        before = [u for u, _ in sent[:i] if u > t - window]  # the earlier sends in its window
        if not is_critical:  # a non-critical message only goes out below the limit
            assert len(before) < limit
    if not any(critical[: len(gaps_s)]):  # without critical ones: at most N in every window
        for t, _ in sent:
            assert sum(1 for u, _ in sent if t - window < u <= t) <= limit


def test_a_notification_counts_once_across_its_channels() -> None:
    now = dt.datetime(2025, 6, 1, 12, tzinfo=UTC)
    full = tuple(now - dt.timedelta(hours=h) for h in (1, 2, 3))
    situation = Situation(now=now, owner=owner(), vehicle=VehicleState.PARKED, recent_sends=full)
    assert decide(Channel.EMAIL, situation) == Suppress(Reason.RATE_LIMIT)
    assert isinstance(decide(Channel.EMAIL, Situation(now=now, owner=owner(), recent_sends=full,
                                                      already_sent=True)), Send)  # fmt: skip
    old = tuple(now - dt.timedelta(hours=h) for h in (1, 2, 24))  # one is out of the window
    assert isinstance(decide(Channel.EMAIL, Situation(now=now, owner=owner(), recent_sends=old)), Send)


@given(
    now=instants,
    channel=st.sampled_from(Channel),
    critical=st.booleans(),
    vehicle=st.sampled_from(VehicleState),
)
def test_consent_is_never_overridden(
    now: dt.datetime, channel: Channel, critical: bool, vehicle: VehicleState
) -> None:
    others = ALL - {channel}
    situation = Situation(now=now, owner=owner(consented=others), vehicle=vehicle, critical=critical)
    assert decide(channel, situation) == Suppress(Reason.NO_CONSENT)
    assert decide(channel, Situation(now=now, owner=None, critical=critical)) == Suppress(Reason.NO_OWNER)


@given(
    now=instants,
    critical=st.booleans(),
    vehicle=st.sampled_from([VehicleState.DRIVING, VehicleState.UNKNOWN]),
)
def test_in_car_waits_until_parked(now: dt.datetime, critical: bool, vehicle: VehicleState) -> None:
    decision = decide(Channel.IN_CAR, Situation(now=now, owner=owner(), vehicle=vehicle, critical=critical))
    assert isinstance(decision, Hold) and decision.until is None
    assert decision.reason is (
        Reason.DRIVING if vehicle is VehicleState.DRIVING else Reason.VEHICLE_STATE_UNKNOWN
    )
    assert isinstance(decide(Channel.EMAIL, Situation(now=now, owner=owner(), vehicle=vehicle)), Send)


def test_the_other_rules() -> None:
    now = dt.datetime(2025, 6, 1, 12, tzinfo=UTC)
    on_email = frozenset({Channel.EMAIL})
    assert decide(Channel.WEBHOOK, Situation(now=now, owner=owner(), channels_on=on_email)) == Suppress(
        Reason.CHANNEL_OFF
    )
    no_address = Preferences(consented=ALL, addresses={Channel.IN_CAR: "VEH-1"})
    assert decide(Channel.EMAIL, Situation(now=now, owner=no_address)) == Suppress(Reason.NO_ADDRESS)
    expired = Situation(now=now, owner=owner(), expires_at=now)
    assert decide(Channel.EMAIL, expired) == Suppress(Reason.EXPIRED)
    moved = Situation(now=now, owner=owner(), withdrawn=True, critical=True)  # critical: still out
    assert decide(Channel.EMAIL, moved) == Suppress(Reason.WITHDRAWN)
    with pytest.raises(ValueError):
        decide(Channel.EMAIL, Situation(now=now.replace(tzinfo=None), owner=owner()))
    with pytest.raises(ValueError):
        decide(Channel.EMAIL, Situation(now=now, owner=owner("Mars/Olympus", (dt.time(1), dt.time(2)))))


def test_vehicle_state() -> None:
    now = dt.datetime(2025, 6, 1, 12, tzinfo=UTC)
    ago = lambda s: now - dt.timedelta(seconds=s)  # noqa: E731
    assert vehicle_state(None, now) is VehicleState.UNKNOWN
    assert vehicle_state(Motion(), now) is VehicleState.UNKNOWN
    assert vehicle_state(Motion(50.0, ago(5), ago(5)), now) is VehicleState.DRIVING
    assert (
        vehicle_state(Motion(50.0, ago(3600), ago(3600)), now) is VehicleState.UNKNOWN
    )  # went silent moving
    assert vehicle_state(Motion(0.0, ago(5), ago(30)), now) is VehicleState.DRIVING  # at a red light
    assert vehicle_state(Motion(0.0, ago(5), ago(200)), now) is VehicleState.PARKED
    assert (
        vehicle_state(Motion(0.0, ago(5), None), now) is VehicleState.PARKED
    )  # no movement in the look-back
    assert vehicle_state(Motion(0.0, ago(90_000), ago(90_100)), now) is VehicleState.PARKED  # parked and off
    with pytest.raises(ValueError):
        PolicyConfig(max_per_window=0)
