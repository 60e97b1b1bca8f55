"""The alarm routes' shapes: an alarm as a caller sees it, its history, and a page of them.

Owns: what clients see of `alarms` and `alarm_history` (analytics.alarms has the lifecycle). Leaves
the rows to `api.alarm_queries`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from api.schemas import NEXT_CURSOR

AlarmSeverity = Literal["CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE"]
AlarmState = Literal["active", "cleared"]


class AlarmOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    alarm_id: int
    vehicle_id: str
    service_centre_id: str | None = Field(description="The vehicle's home centre")
    fleet_id: str | None = Field(description="The vehicle's fleet")
    fault: str = Field(description="The fault kind, e.g. tyre_slow_leak or dtc:P0301 (docs/faults.md)")
    severity: AlarmSeverity = Field(description="Only escalates while the alarm is active")
    raised_at: datetime = Field(description="Data time of the finding that raised it")
    since_at: datetime | None = Field(description="When the condition began, if the data shows it")
    updated_at: datetime = Field(description="Data time of the newest finding that changed it")
    cleared_at: datetime | None = Field(
        description="When it cleared (by its detector, or resolved by a person)"
    )
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="Who acknowledged it, as `role:name`")
    resolved_at: datetime | None = Field(description="When a person resolved it (wall clock)")
    resolved_by: str | None = Field(description="Who resolved it, as `role:name`")
    explanation: str = Field(description="What is wrong and what to do, for the service centre")
    thresholds_version: str = Field(
        description="The detector thresholds the finding used, e.g. tyre_slow_leak/2"
    )

    @computed_field(description="active: not cleared; cleared: by its detector or resolved by a person")  # type: ignore[prop-decorator]
    @property
    def state(self) -> AlarmState:
        return "active" if self.cleared_at is None else "cleared"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class AlarmHistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    change: Literal["raised", "escalated", "cleared", "acknowledged", "resolved"]
    at: datetime = Field(description="Data time for the detector's changes; wall clock for a person's acts")
    severity: AlarmSeverity
    cause: str = Field(description="Why: the detector's explanation, or who acknowledged or resolved it")
    evidence: dict[str, Any] = Field(
        description="The finding's values, thresholds and times (detector changes)"
    )
    recorded_at: datetime = Field(description="When the change was written")


class AlarmDetail(AlarmOut):
    evidence: dict[str, Any] = Field(
        description="The newest raise or escalation's values, thresholds and times"
    )
    history: list[AlarmHistoryOut] = Field(description="Every change, oldest first")


class AlarmList(BaseModel):
    items: list[AlarmOut] = Field(description="Newest raise first, then alarm_id descending")
    limit: int
    next_cursor: str | None = Field(description=NEXT_CURSOR)
