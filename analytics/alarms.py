"""The alarm lifecycle: findings in, alarm state changes out (ThingsBoard's model, without its
wall clock).

Owns the rules, as a pure function of the current alarm and one finding:
- one active alarm per (vehicle, fault);
- a RAISE on no alarm (or after the last one cleared) raises a new one, at the finding's time;
- a RAISE on an active alarm escalates it when its severity is higher, and is otherwise already
  known: an active alarm never de-escalates;
- a CLEAR on an active alarm clears it (the detector's clear rule already held for its hysteresis
  time, so the alarm does not flap);
- a finding no newer than what the alarm already records changes nothing, so re-running a job over
  data it has seen, or over an overlapping window, creates no second alarm (at one instant, a
  clear is applied before a raise, and the worst raise first).
Acknowledging (a person's act, not data) is independent of clearing. Resolving (a person's act,
`alarm_store.resolve`) clears an active alarm at once; while the detector still sees the fault the
alarm is *held*: the findings of that episode change nothing (the person's decision stands, and
the next job run does not raise it again), except
- a CLEAR, which ends the episode (recorded as the detector's clear; the alarm stays as the person
  left it), so the next RAISE is a new episode and raises a new alarm;
- a RAISE more severe than the resolved alarm, which is news the person did not decide on: it
  raises a new alarm (at once, not waiting for the episode to end).
Storage is `analytics.alarm_store`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from analytics.findings import Finding, FindingState, Severity


class Change(enum.StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alarm:
    """An alarm as the lifecycle sees it; `alarm_id` is None until stored."""

    vehicle_id: str
    fault: str
    severity: Severity
    raised_ns: int
    updated_ns: int
    since_ns: int | None = None
    cleared_ns: int | None = None
    acknowledged: bool = False
    alarm_id: int | None = None
    held: bool = False  # a person resolved it and the detector has not cleared the episode since

    @property
    def active(self) -> bool:
        return self.cleared_ns is None


@dataclass(frozen=True)
class Transition:
    """What a finding did: the alarm after it (a new one when `change` is RAISED) and the change."""

    alarm: Alarm
    change: Change
    finding: Finding


def apply_finding(current: Alarm | None, finding: Finding) -> Transition | None:
    """The change `finding` makes to `current` (the newest alarm of its vehicle and fault, active or
    not), or None when it changes nothing: a finding no newer than what the alarm last recorded
    (`updated_ns`) is already known."""
    at = finding.at_ns
    if current is not None and at <= current.updated_ns:
        return None
    if current is not None and current.held:
        return _apply_to_held(current, finding)
    if finding.state is FindingState.RAISE:
        if current is None or not current.active:
            alarm = Alarm(finding.vehicle_id, finding.fault, finding.severity, at, at, finding.since_ns)
            return Transition(alarm, Change.RAISED, finding)
        if finding.severity > current.severity:
            return Transition(
                replace(current, severity=finding.severity, updated_ns=at), Change.ESCALATED, finding
            )
        return None
    if current is not None and current.active:
        return Transition(replace(current, cleared_ns=at, updated_ns=at), Change.CLEARED, finding)
    return None


def _apply_to_held(current: Alarm, finding: Finding) -> Transition | None:
    """A finding on an alarm a person resolved during an episode the detector still sees."""
    at = finding.at_ns
    if finding.state is FindingState.CLEAR:
        return Transition(replace(current, held=False, updated_ns=at), Change.CLEARED, finding)
    if finding.severity > current.severity:
        alarm = Alarm(finding.vehicle_id, finding.fault, finding.severity, at, at, finding.since_ns)
        return Transition(alarm, Change.RAISED, finding)
    return None


def apply_findings(newest: dict[tuple[str, str], Alarm], findings: list[Finding]) -> list[Transition]:
    """Apply `findings` in time order (per vehicle and fault) to the newest alarms by (vehicle,
    fault); returns the transitions in the order they happened and updates `newest` in place."""
    transitions = []
    for finding in sorted(
        findings, key=lambda f: (f.vehicle_id, f.fault, f.at_ns, f.state is FindingState.RAISE)
    ):
        key = (finding.vehicle_id, finding.fault)
        done = apply_finding(newest.get(key), finding)
        if done is not None:
            newest[key] = done.alarm
            transitions.append(done)
    return transitions
