"""What a detector concludes about one vehicle: a `Finding` that a fault condition holds (with a
severity) or that it is clear, with its evidence and an explanation a service centre can read.

Owns: the vocabulary shared by every detector and the alarm lifecycle (`analytics.alarms`):
severities (ThingsBoard's), fault codes, and the finding itself. A detector reports only what
its data shows: no finding for a vehicle means "not enough data to say", which never clears an
alarm.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """Ordered: a higher value is worse. An active alarm only escalates."""

    INDETERMINATE = 0
    WARNING = 1
    MINOR = 2
    MAJOR = 3
    CRITICAL = 4


class FindingState(enum.StrEnum):
    RAISE = "raise"  # the fault condition holds at `at_ns`
    CLEAR = "clear"  # the data shows the condition does not hold at `at_ns`


@dataclass(frozen=True)
class Finding:
    """One vehicle, one fault type, at one time (the newest row the conclusion rests on)."""

    vehicle_id: str
    fault: str  # e.g. "tyre_slow_leak", "dtc:P0420"; one active alarm per (vehicle, fault)
    state: FindingState
    at_ns: int
    severity: Severity = Severity.WARNING
    since_ns: int | None = None  # when the condition began, if the data shows it
    explanation: str = ""  # for the service centre: what is wrong and what to do
    evidence: dict[str, Any] = field(default_factory=dict)  # JSON-able: values, threshold, signal, times

    @classmethod
    def at_level(
        cls,
        vehicle_id: str,
        fault: str,
        level: int,
        at_ns: int,
        since_ns: int | None,
        explanation: str,
        evidence: dict[str, Any],
    ) -> Finding:
        """A detector's state as a finding: level 0 is a CLEAR, any other a RAISE at that severity."""
        if level == 0:
            return cls(
                vehicle_id,
                fault,
                FindingState.CLEAR,
                at_ns,
                Severity.WARNING,
                since_ns,
                explanation,
                evidence,
            )
        return cls(
            vehicle_id, fault, FindingState.RAISE, at_ns, Severity(level), since_ns, explanation, evidence
        )
