"""The agent's OTA decisions (pure): the offer's terms over time, which install events become which
reports, waiting or giving up after a refusal; and the live conditions from the signals."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from contract.update import MaintenanceWindow, UpdateOffer
from edge_agent.ota import policy
from edge_agent.ota.conditions import BATTERY_V, ENGINE_SPEED, PATHS, SPEED, ConditionTracker, local_time_in
from edge_agent.ota.events import InstallEvent
from edge_agent.ota.preconditions import Refusal
from edge_agent.ota.state import State

S = 1_000_000  # µs
OFFER = UpdateOffer(
    offer_id="offer-1",
    nonce="n" * 43,
    issued_at_us=1000 * S,
    ecu="ECM",
    target="ECM/4.3.0/ecm.bin",
    version="4.3.0",
    urgency="forced_after",
    forced_after_us=2000 * S,
    repository_url="https://ota.example.com/",
    maintenance_window=MaintenanceWindow("22:00", "05:00", "Europe/Berlin"),
    consent_required=True,
)


def event(state: State, reason: str = "", *, stalled: bool = False) -> InstallEvent:
    return InstallEvent(
        "offer-1", "ECM", state, "4.2.1", "", "4.3.0", "ab" * 32, "4.2.1", "", 0.0, reason, (), stalled
    )


def test_consent_is_needed_only_until_the_offer_is_forced() -> None:
    before = policy.terms_of(OFFER, 1999 * S)
    assert before.consent_required and before.offer_id == "offer-1"
    assert (
        before.window is not None
        and before.window.start == dt.time(22, 0)
        and before.window.end == dt.time(5, 0)
    )
    assert not policy.terms_of(OFFER, 2000 * S).consent_required
    forced = UpdateOffer(**{**_fields(OFFER), "urgency": "forced", "forced_after_us": None})
    assert not policy.terms_of(forced, 0).consent_required
    soft = UpdateOffer(**{**_fields(OFFER), "urgency": "soft", "forced_after_us": None})
    assert policy.terms_of(soft, 10**18).consent_required


def _fields(offer: UpdateOffer) -> dict[str, object]:
    return {name: getattr(offer, name) for name in UpdateOffer.__dataclass_fields__}


def test_install_events_become_reports() -> None:
    assert policy.report_of(event(State.HEALTH_CHECK)) == ("installed", None)
    assert policy.report_of(event(State.INSTALLED)) == ("committed", None)
    assert policy.report_of(event(State.ROLLED_BACK, "health check failed: no answer")) == (
        "rolled_back",
        "health_check_failed",
    )
    assert policy.report_of(event(State.FAILED, "interrupted by a restart in write")) == (
        "failed",
        "interrupted",
    )
    assert policy.report_of(event(State.FAILED, "writing slot b failed: ENOSPC")) == (
        "failed",
        "write_failed",
    )
    assert policy.report_of(event(State.FAILED, "something new")) == ("failed", "install_failed")
    for quiet in (
        State.PRECONDITIONS,
        State.WRITE,
        State.VERIFY,
        State.SWITCH,
        State.REBOOT,
        State.COMMIT,
        State.ROLLBACK,
        State.REFUSED,
    ):
        assert policy.report_of(event(quiet)) is None
    assert policy.report_of(event(State.INSTALLED, stalled=True)) is None


def test_a_refusal_waits_unless_it_can_never_pass() -> None:
    waiting = [Refusal("parked", "moving at 50 km/h"), Refusal("consent", "not given")]
    outcome = policy.after_refusal(waiting)
    assert not outcome.give_up and outcome.waiting_for == ("parked", "consent")
    assert policy.waiting_detail(waiting) == "waiting: parked (moving at 50 km/h); consent (not given)"
    for permanent in ("already_running", "hardware_id", "ecu"):
        outcome = policy.after_refusal([*waiting, Refusal(permanent, "x")])
        assert outcome.give_up and outcome.reason == permanent
    assert not policy.after_refusal([Refusal("busy", "install x of BCM is at write")]).give_up


def test_expiry() -> None:
    assert not policy.expired(0, 10 * S, 10.0)
    assert policy.expired(0, 10 * S + 1, 10.0)


def test_the_tracker_knows_how_long_the_car_stood_still() -> None:
    tracker = ConditionTracker(PATHS, max_age_s=5.0)
    unknown = tracker.snapshot(0)
    assert unknown.speed_kmh is None and unknown.parked_s is None and unknown.engine_running is None
    tracker.observe(1 * 10**9, {SPEED: 30.0, ENGINE_SPEED: 900.0, BATTERY_V: 14.1})
    driving = tracker.snapshot(1 * 10**9)
    assert driving.parked_s == 0.0 and driving.engine_running and driving.battery_v == 14.1
    tracker.observe(2 * 10**9, {SPEED: 0.0, ENGINE_SPEED: 0.0, BATTERY_V: 12.6})
    tracker.observe(4 * 10**9, {SPEED: 0.0, ENGINE_SPEED: 0.0, BATTERY_V: float("nan")})
    parked = tracker.snapshot(5 * 10**9, consent_given=True)
    assert parked.parked_s == 3.0 and parked.engine_running is False and parked.battery_v == 12.6
    assert parked.consent_given
    stale = tracker.snapshot(20 * 10**9)  # nothing read for 16 s: proves nothing
    assert stale.speed_kmh is None and stale.parked_s is None and stale.battery_v is None
    tracker.observe(21 * 10**9, {SPEED: 0.01})
    assert tracker.snapshot(21 * 10**9).parked_s == 0.0


def test_a_car_without_an_engine_speed_signal_has_no_engine_to_run() -> None:
    tracker = ConditionTracker((SPEED,))
    tracker.observe(0, {SPEED: 0.0})
    assert tracker.snapshot(10**9).engine_running is False
    assert tracker.paths == (SPEED,)


@given(st.floats(min_value=0, max_value=4e9))
def test_local_time_in_a_zone(unix_s: float) -> None:
    utc = local_time_in("UTC", unix_s)
    assert utc == dt.datetime.fromtimestamp(unix_s, dt.UTC).time()
    assert local_time_in("Not/AZone", unix_s) is None
