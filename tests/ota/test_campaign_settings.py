"""An operator's change to a campaign's settings: valid settings only, and only when the campaign's
status allows it (pure rules, no database)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ota.campaign_settings import (
    CampaignSettings,
    SettingsError,
    apply_change,
    describe,
    parse_waves,
    parse_window,
)
from ota.rollout import Status

DEFAULTS = CampaignSettings(
    (1.0, 10.0, 50.0, 100.0), 0.95, 0.05, 20, 3600.0, 259200.0, "soft", None, None, True
)
LATER = dt.datetime(2027, 1, 15, tzinfo=dt.UTC)


def test_a_proposed_campaign_takes_every_setting() -> None:
    new = apply_change(
        DEFAULTS,
        Status.PROPOSED,
        {
            "waves_pct": (5.0, 100.0),
            "urgency": "forced_after",
            "forced_after": LATER,
            "maintenance_window": {"start": "22:00", "end": "05:00", "timezone": "Europe/Berlin"},
            "consent_required": False,
            "offer_timeout_s": 3600.0,
        },
    )
    assert new.waves_pct == (5.0, 100.0) and new.forced_after == LATER and not new.consent_required
    assert "waves_pct (1.0, 10.0, 50.0, 100.0) -> (5.0, 100.0)" in describe(DEFAULTS, new)


@pytest.mark.parametrize("status", [Status.RUNNING, Status.FINISHED, Status.CANCELLED])
def test_a_running_or_ended_campaign_refuses_every_change(status: Status) -> None:
    with pytest.raises(SettingsError, match="cannot change"):
        apply_change(DEFAULTS, status, {"soak_s": 60.0})


def test_a_paused_campaign_keeps_its_waves_but_takes_the_rest() -> None:
    with pytest.raises(SettingsError, match="only before the campaign starts"):
        apply_change(DEFAULTS, Status.PAUSED, {"waves_pct": (50.0, 100.0)})
    assert apply_change(DEFAULTS, Status.PAUSED, {"max_failures": 5}).max_failures == 5


def test_leaving_forced_after_drops_its_date_and_forced_after_needs_one() -> None:
    dated = apply_change(DEFAULTS, Status.PAUSED, {"urgency": "forced_after", "forced_after": LATER})
    assert apply_change(dated, Status.PAUSED, {"urgency": "forced"}).forced_after is None
    with pytest.raises(SettingsError, match="forced_after"):
        apply_change(DEFAULTS, Status.PAUSED, {"urgency": "forced_after"})
    with pytest.raises(SettingsError, match="time zone"):
        apply_change(
            DEFAULTS, Status.PAUSED, {"urgency": "forced_after", "forced_after": LATER.replace(tzinfo=None)}
        )


@pytest.mark.parametrize(
    "change",
    [
        {"waves_pct": (10.0, 5.0, 100.0)},
        {"waves_pct": (1.0, float("nan"), 100.0)},
        {"waves_pct": (1.0, 50.0)},
        {"success_threshold": 0.0},
        {"error_threshold": float("nan")},
        {"soak_s": -1.0},
        {"soak_s": float("inf")},
        {"offer_timeout_s": 0.0},
        {"urgency": "whenever"},
        {"maintenance_window": {"start": "22:00", "end": "22:00", "timezone": "UTC"}},
        {"maintenance_window": {"start": "24:00", "end": "05:00", "timezone": "UTC"}},
        {"maintenance_window": {"start": "22:00", "end": "05:00", "timezone": "Mars/Olympus"}},
        {"maintenance_window": {"start": "22:00", "end": "05:00"}},
        {"colour": "red"},
        {},
    ],
)
def test_invalid_settings_are_refused_with_a_reason(change: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        apply_change(DEFAULTS, Status.PROPOSED, change)


def test_the_command_line_forms_parse() -> None:
    assert parse_window("22:00-05:00@Europe/Berlin") == {
        "start": "22:00",
        "end": "05:00",
        "timezone": "Europe/Berlin",
    }
    assert parse_window("none") is None
    assert parse_waves("1,10,50,100") == (1.0, 10.0, 50.0, 100.0)
    for bad in ("22:00-05:00", "22:00@UTC", "2200-0500@UTC", "../../etc/passwd"):
        with pytest.raises(SettingsError):
            parse_window(bad)
    with pytest.raises(SettingsError):
        parse_waves("1;10")


@given(st.text(max_size=40))
def test_any_window_text_parses_or_is_refused_with_settings_error(text: str) -> None:
    try:
        window = parse_window(text)
    except SettingsError:
        return
    assert window is None or set(window) == {"start", "end", "timezone"}
