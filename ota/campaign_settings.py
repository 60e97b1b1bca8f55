"""An operator's change to a campaign's delivery settings, checked before anything is written.

Owns: which settings exist (waves, thresholds, soak, offer timeout, urgency, maintenance window,
consent), their validation, and when each may change. Leaves reading and writing the campaign row
to `ota.campaign_edit`, and the rollout rules themselves to `ota.rollout`.

When a setting may change (hawkBit lets an operator edit a rollout only before it starts; we are
as strict for the waves and let the rest change while the campaign is paused, so a person always
stops it first and the change is a deliberate act):
- the waves: only before the campaign starts (proposed or approved); the open wave's index would
  mean something else afterwards;
- every other setting: also while it is paused, never while it runs (pause it first), and never
  after it finished or was cancelled.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ota.rollout import Policy, Status

URGENCIES = ("soft", "forced", "forced_after")
_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
BEFORE_START = frozenset({Status.PROPOSED, Status.APPROVED})
EDITABLE = BEFORE_START | {Status.PAUSED}


class SettingsError(ValueError):
    """A setting is invalid, or may not change in the campaign's present status."""


@dataclass(frozen=True)
class CampaignSettings:
    """Everything an operator sets on a campaign (the columns of the same names)."""

    waves_pct: tuple[float, ...]
    success_threshold: float
    error_threshold: float
    max_failures: int
    soak_s: float
    offer_timeout_s: float
    urgency: str
    forced_after: dt.datetime | None
    maintenance_window: dict[str, str] | None
    consent_required: bool

    def check(self) -> None:
        """Raises SettingsError when the settings do not hold together."""
        numbers = (
            *self.waves_pct,
            self.success_threshold,
            self.error_threshold,
            self.soak_s,
            self.offer_timeout_s,
        )
        if not all(math.isfinite(x) for x in numbers):
            raise SettingsError("waves, thresholds and times must be finite numbers")
        try:
            Policy(
                self.waves_pct,
                self.success_threshold,
                self.error_threshold,
                self.max_failures,
                self.soak_s,
                self.offer_timeout_s,
            )
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if self.urgency not in URGENCIES:
            raise SettingsError(f"urgency must be one of {', '.join(URGENCIES)}")
        if (self.urgency == "forced_after") != (self.forced_after is not None):
            raise SettingsError("a forced_after date goes with urgency forced_after, and only with it")
        if self.forced_after is not None and self.forced_after.tzinfo is None:
            raise SettingsError("forced_after needs a time zone (e.g. 2027-01-15T00:00:00+00:00)")
        if self.maintenance_window is not None:
            check_window(self.maintenance_window)

    def as_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check_window(window: dict[str, str]) -> None:
    """A maintenance window is {"start": "HH:MM", "end": "HH:MM", "timezone": IANA name} with
    start != end (end before start spans midnight). Raises SettingsError."""
    if set(window) != {"start", "end", "timezone"}:
        raise SettingsError("a maintenance window has exactly start, end and timezone")
    start, end, zone = window["start"], window["end"], window["timezone"]
    if not (isinstance(start, str) and _HH_MM.match(start) and isinstance(end, str) and _HH_MM.match(end)):
        raise SettingsError("maintenance window times are HH:MM, 24 h (e.g. 22:00)")
    if start == end:
        raise SettingsError("a maintenance window needs start != end")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise SettingsError(f"unknown time zone {zone!r} (an IANA name, e.g. Europe/Berlin)") from None


def parse_window(text: str) -> dict[str, str] | None:
    """`HH:MM-HH:MM@Zone/Name` (e.g. `22:00-05:00@Europe/Berlin`), or `none` for any time.
    Raises SettingsError."""
    if text.strip().lower() == "none":
        return None
    times, sep, zone = text.partition("@")
    start, dash, end = times.partition("-")
    if not sep or not dash:
        raise SettingsError("a maintenance window is HH:MM-HH:MM@Zone/Name, or none")
    window = {"start": start.strip(), "end": end.strip(), "timezone": zone.strip()}
    check_window(window)
    return window


def parse_waves(text: str) -> tuple[float, ...]:
    """Cumulative wave shares in percent, comma-separated (e.g. `1,10,50,100`). Raises SettingsError."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise SettingsError("waves are percentages separated by commas, e.g. 1,10,50,100") from None


def apply_change(current: CampaignSettings, status: Status, change: dict[str, Any]) -> CampaignSettings:
    """The settings after `change` (names of CampaignSettings fields to new values), checked as a
    whole. Raises SettingsError for an unknown field, a change the status forbids, or settings that
    do not hold together."""
    unknown = set(change) - {f.name for f in fields(CampaignSettings)}
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
    if not change:
        raise SettingsError("nothing to change")
    if status not in EDITABLE:
        raise SettingsError(
            f"a {status.value} campaign's settings cannot change"
            + (" (pause it first)" if status is Status.RUNNING else "")
        )
    if "waves_pct" in change and status not in BEFORE_START:
        raise SettingsError("the waves can change only before the campaign starts")
    if change.get("urgency") not in (None, "forced_after") and "forced_after" not in change:
        change = {**change, "forced_after": None}  # leaving forced_after drops its date
    new = replace(current, **change)
    new.check()
    return new


def describe(old: CampaignSettings, new: CampaignSettings) -> str:
    """One line for the campaign's history: each changed setting, old -> new."""
    parts = [
        f"{f.name} {getattr(old, f.name)!s} -> {getattr(new, f.name)!s}"
        for f in fields(CampaignSettings)
        if getattr(old, f.name) != getattr(new, f.name)
    ]
    return "settings: " + ("; ".join(parts) if parts else "unchanged")
