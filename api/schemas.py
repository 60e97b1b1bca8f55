"""The API's response shapes, kept apart from the table rows in `api.repository`.

Owns: what clients see, including units taken from the signal catalogue so that every value is
self-describing. Leaves storage shapes to the repository and the catalogue to `contract.signals`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from api.params import TIMESTAMP_RULE, parse_rfc3339
from api.repository import LatestRecord
from contract.signals import BY_PATH


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`): the body of every error
    response (`api.problems`; the kinds are listed in docs/api.md)."""

    type: str = Field(description="Identifies the kind of problem (a stable URI; compare it as a string)")
    title: str = Field(description="A short summary of the kind, the same for every occurrence")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong this time, for a person to read")
    instance: str = Field(description="The path of the request that failed")


class FieldError(BaseModel):
    location: list[str] = Field(
        description='Where: e.g. ["query", "limit"], ["path", "vehicle_id"], ["body", "reason"]'
    )
    message: str = Field(description="What is wrong with it")
    type: str = Field(description="A machine-readable reason, e.g. less_than_equal, extra_forbidden, missing")


class ValidationProblem(Problem):
    """A 422 invalid-request problem: every invalid field (the input values are not echoed)."""

    errors: list[FieldError]


ErrorOut = Problem  # the name routes declared error bodies with before problem details


class VehicleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    vehicle_id: str
    registered_at: datetime
    last_seen_at: datetime | None
    vin: str | None = Field(description="ISO 3779 vehicle identification number, from the registry")
    model_id: str | None = Field(description="The vehicle model in the registry")
    fleet_id: str | None = Field(description="The operator's fleet in the registry")
    service_centre_id: str | None = Field(description="The home service centre")


NEXT_CURSOR = "Pass as `cursor` (with the same filters) for the next page; null on the last page"


class VehicleList(BaseModel):
    items: list[VehicleOut] = Field(description="By vehicle_id")
    limit: int
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class SignalValue(BaseModel):
    value: float = Field(description="Booleans are 0.0 / 1.0")
    unit: str | None = Field(description="Catalogue unit; null for a path outside this server's catalogue")
    ts: datetime


class LatestOut(BaseModel):
    vehicle_id: str
    ts: datetime
    signals: dict[str, SignalValue] = Field(description="Keyed by COVESA VSS path")

    @classmethod
    def from_record(cls, record: LatestRecord) -> LatestOut:
        """Raises ValueError if the record has no data yet (ts is None)."""
        if record.ts is None:
            raise ValueError(f"vehicle {record.vehicle_id!r} has no latest state")
        signals = {
            path: SignalValue(
                value=sample["value"],
                unit=BY_PATH[path].unit if path in BY_PATH else None,
                ts=sample["ts"],
            )
            for path, sample in sorted(record.signals.items())
        }
        return cls(vehicle_id=record.vehicle_id, ts=record.ts, signals=signals)


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    storage_mode: str | None = Field(description="timescale | native; null if not migrated or unreachable")


class DtcReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ts: datetime = Field(description="When the vehicle reported this set (its own clock)")
    codes: list[str] = Field(description="SAE J2012 codes stored at that moment; empty = cleared")
    agent_version: str = Field(description="The reporting edge agent's own version; empty if not sent")
    software: dict[str, str] = Field(description="ECU -> software version when the codes were read")


class DtcHistory(BaseModel):
    vehicle_id: str
    current: DtcReportOut | None = Field(
        description="The newest report in this page (the vehicle's current codes when `since` is not set)"
    )
    reports: list[DtcReportOut] = Field(description="Newest first")
    limit: int


class StatusOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    vehicle_id: str
    state: Literal["online", "offline"] | None = Field(description="null: no status message yet")
    reported_at: datetime | None = Field(description="When ingest received the newest status message")
    details: dict[str, Any] = Field(
        description="The edge agent's last check-in: campaign and agent version, queue depth, dropped data"
    )


class EcuSoftwareOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ecu: str
    software_version: str
    hardware_id: str = Field(description="The ECU hardware the software was built for")
    reported_at: datetime = Field(description="When ingest received the check-in that reported it")


class SoftwareInventory(BaseModel):
    vehicle_id: str
    ecus: list[EcuSoftwareOut] = Field(description="As the vehicle last reported them, by ECU name")


BookingStatus = Literal["booked", "completed", "cancelled", "no_show"]


class BookingHistoryOut(BaseModel):
    at: datetime
    status: str = Field(description="booked, rescheduled, completed, cancelled or no_show")
    starts_at: datetime
    reason: str
    actor: str = Field(description="Who did it: `engine`, or the API caller as `role:name`")


class BookingOut(BaseModel):
    booking_id: int
    vehicle_id: str
    service_centre_id: str
    remedy_id: int
    alarm_id: int | None = Field(description="The alarm the visit remedies")
    fault: str | None = Field(description="The alarm's fault kind, e.g. brake_pad_wear or dtc:P0217")
    severity: str | None
    skill: str = Field(description="The skill the visit needs, e.g. brakes")
    starts_at: datetime
    ends_at: datetime
    deadline: datetime = Field(description="When the visit should happen by, from the alarm's urgency")
    late: bool = Field(description="No centre with the skill had a slot before the deadline")
    distance_km: float | None = Field(description="From where the vehicle usually parks")
    status: BookingStatus
    reason: str
    created_at: datetime
    updated_at: datetime


class BookingDetail(BookingOut):
    history: list[BookingHistoryOut] = Field(description="Every change, oldest first")


class BookingList(BaseModel):
    items: list[BookingOut] = Field(description="Newest start first, then by booking_id descending")
    limit: int
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, description="Why, for the booking's history")
    rebook: bool = Field(False, description="Book the next free slot at once")


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    not_before: Annotated[
        datetime | None,
        BeforeValidator(parse_rfc3339),
        WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}),
    ] = Field(
        None,
        description="The new slot starts at or after this (default: after the current start): "
        + TIMESTAMP_RULE,
    )


class BookingActionOut(BaseModel):
    booking: BookingDetail = Field(description="The booking acted on, as it is now")
    next_booking: BookingOut | None = Field(
        description="The booking that replaces it (a reschedule, a no-show, a cancel with rebook), when "
        "this caller may see it: a new slot may be at another centre"
    )
    rebooked: bool = Field(description="A new booking was made")
