"""The remedy engine's decisions: an alarm change in, what to do about it out. Pure.

Owns the rules:
- A raised alarm gets one remedy, from the catalogue's most specific entry for its fault and the
  vehicle (`remedies.catalogue`). No entry: no remedy, recorded with that reason.
- An OTA patch takes its ECU and target from the entry, or, for the fleet firmware test's
  `firmware_bug` alarms, from the alarm's evidence (the faulty version and its cure). With no cure
  known yet the remedy waits for a release (`waiting`), and is proposed when one appears.
- A shop visit's urgency is the entry's, or follows the alarm's severity; its deadline is the
  alarm's raise time plus the urgency's hours (critical: 24 h), never before now.
- An escalated alarm tightens a visit's urgency (a booked visit is moved earlier by the shell when
  its deadline is now earlier); it never loosens it.
- A cleared alarm resolves its remedy; a visit not yet made is cancelled (the fault went away) unless
  the alarm was cleared by the visit itself. An alarm a person resolved (`POST
  /v1/alarms/{id}/resolve`) is cleared at that moment and is treated the same way.
Every decision carries its reason, for the record. Leaves SQL, booking and campaigns to the shell
(`remedies.run`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from remedies.catalogue import DEADLINE_H, URGENCY_OF_SEVERITY, Catalogue, OtaPatch, Urgency, VehicleFacts

URGENCY_ORDER = (Urgency.LOW, Urgency.NORMAL, Urgency.HIGH, Urgency.CRITICAL)


@dataclass(frozen=True)
class AlarmChange:
    """One change of an alarm, as `alarm_history` records it, with the alarm's own fields."""

    alarm_id: int
    vehicle_id: str
    fault: str
    change: str  # raised | escalated | cleared | acknowledged | resolved
    severity: str
    at: dt.datetime
    raised_at: dt.datetime
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What the shell must do. `kind`: ota_patch | shop_visit | none; `status` the remedy's new
    status; `details` the remedy's parameters (stored as JSON)."""

    kind: str
    status: str
    details: dict[str, Any]
    rule: str
    reason: str


def decide(change: AlarmChange, vehicle: VehicleFacts, catalogue: Catalogue, now: dt.datetime) -> Decision:
    """The remedy for a newly raised alarm."""
    entry = catalogue.match(change.fault, vehicle)
    if entry is None:
        return Decision("none", "none", {}, "", f"no catalogue entry for {change.fault!r}")
    remedy = entry.remedy
    if isinstance(remedy, OtaPatch):
        return _ota(change, vehicle, remedy, entry.name, entry.why)
    urgency = remedy.urgency or URGENCY_OF_SEVERITY.get(change.severity, Urgency.LOW)
    details = {
        "skill": remedy.skill,
        "urgency": urgency.value,
        "duration_min": remedy.duration_min,
        "parts": list(remedy.parts),
        "deadline": deadline(change.raised_at, urgency, now).isoformat(),
    }
    reason = f"{entry.why} Urgency {urgency.value} ({change.severity} alarm)." if entry.why else ""
    return Decision("shop_visit", "proposed", details, entry.name, reason.strip())


def _ota(change: AlarmChange, vehicle: VehicleFacts, patch: OtaPatch, rule: str, why: str) -> Decision:
    ecu = change.evidence.get("ecu") if patch.ecu == "*" else patch.ecu
    if not isinstance(ecu, str) or not ecu:
        return Decision("none", "none", {}, rule, "an OTA remedy needs the ECU, and the alarm names none")
    from_version = change.evidence.get("version") if patch.ecu == "*" else None
    from_version = from_version or vehicle.software.get(ecu)
    target = patch.to_version or change.evidence.get("cure_version")
    details = {
        "ecu": ecu,
        "from_version": from_version,
        "to_version": target,
        "duration_min": patch.duration_min,
        "code": change.evidence.get("code"),
    }
    if not target:
        reason = f"{why} No version of {ecu} is known to cure it yet: waits for a release.".strip()
        return Decision("ota_patch", "waiting", details, rule, reason)
    reason = f"{why} Install {ecu} {target} (now {from_version or 'unknown'}).".strip()
    return Decision("ota_patch", "proposed", details, rule, reason)


def deadline(raised_at: dt.datetime, urgency: Urgency, now: dt.datetime) -> dt.datetime:
    """When a visit of `urgency` must have happened: from the alarm's raise, never before now."""
    return max(raised_at + dt.timedelta(hours=DEADLINE_H[urgency]), now)


def tightened(
    details: dict[str, Any], severity: str, raised_at: dt.datetime, now: dt.datetime
) -> dict[str, Any]:
    """A visit's details after its alarm escalated to `severity`: a more urgent urgency and an
    earlier deadline, or the same details when the escalation changes nothing."""
    old = Urgency(details["urgency"])
    new = URGENCY_OF_SEVERITY.get(severity, Urgency.LOW)
    if URGENCY_ORDER.index(new) <= URGENCY_ORDER.index(old):
        return details
    return {**details, "urgency": new.value, "deadline": deadline(raised_at, new, now).isoformat()}
