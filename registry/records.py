"""The registry's record kinds and their rules: what a valid fleet, vehicle model, service centre,
owner and vehicle is.

Owns: validation of one row (from a TOML table or a CSV line) into a record, and the canonical
row form a record exports to (which validates back to the same record). Cross-row rules (a
vehicle's model must exist) are `registry.store`'s, since they need the database.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import zoneinfo
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from contract.batch import VEHICLE_ID_PATTERN
from registry.hours import (
    OpeningHours,
    format_opening_hours,
    format_quiet_hours,
    parse_opening_hours,
    parse_quiet_hours,
)

RecordId = Annotated[str, Field(pattern=VEHICLE_ID_PATTERN.pattern, description="1-64 of [A-Za-z0-9_.-]")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"  # ISO 3779: 17 characters, never I, O or Q


class Powertrain(enum.StrEnum):
    ICE = "ice"  # combustion engine only
    HEV = "hev"  # hybrid, not plug-in
    PHEV = "phev"  # plug-in hybrid
    BEV = "bev"  # battery electric
    UNKNOWN = "unknown"  # only for rows that predate the registry


class Skill(enum.StrEnum):
    """What a service centre can fix; a shop-visit remedy names the skill it needs."""

    TYRES = "tyres"
    BRAKES = "brakes"
    ELECTRICAL = "electrical"
    ENGINE = "engine"
    HIGH_VOLTAGE = "high_voltage"  # EV and hybrid traction systems
    DIAGNOSTICS = "diagnostics"  # software and sensor faults, ECU flashing
    BODY = "body"


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from exc
    return value


def _split_list(value: Any) -> Any:
    """CSV cells hold lists as `a;b;c`."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return value


TimeZone = Annotated[str, BeforeValidator(_time_zone)]


class Record(BaseModel):
    """One row of one kind. `KIND` names its table and file section; `KEY` its id field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
    KIND: ClassVar[str]
    KEY: ClassVar[str]

    @property
    def key(self) -> str:
        return str(getattr(self, self.KEY))

    def row(self) -> dict[str, Any]:
        """The canonical import/export row: only set values, in field order."""
        return {k: v for k, v in self.model_dump(mode="json").items() if v not in (None, {}, [])}


class Fleet(Record):
    KIND = "fleets"
    KEY = "fleet_id"
    fleet_id: RecordId
    name: Name
    operator: str = Field("", max_length=200, description="The company that runs the fleet")


class VehicleModel(Record):
    KIND = "models"
    KEY = "model_id"
    model_id: RecordId
    make: Name
    model: Name
    powertrain: Powertrain
    cylinders: int = Field(0, ge=0, le=16, description="0 for a battery-electric vehicle")
    tyre_placard_kpa: float | None = Field(None, gt=50, lt=1000, description="Cold tyre pressure")
    tank_l: float | None = Field(None, ge=0, lt=2000)
    battery_kwh: float | None = Field(None, ge=0, lt=2000)
    params: dict[str, float] = Field(default_factory=dict, description="More detector parameters")

    @model_validator(mode="after")
    def _engine_matches_powertrain(self) -> VehicleModel:
        if self.powertrain is Powertrain.BEV and self.cylinders:
            raise ValueError("a battery-electric model has no cylinders")
        if self.powertrain in (Powertrain.ICE, Powertrain.HEV, Powertrain.PHEV) and not self.cylinders:
            raise ValueError(f"a {self.powertrain.value} model needs its number of cylinders")
        return self


class ServiceCentre(Record):
    KIND = "service_centres"
    KEY = "service_centre_id"
    service_centre_id: RecordId
    name: Name
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    skills: Annotated[list[Skill], BeforeValidator(_split_list)] = Field(min_length=1)
    capacity_per_day: int = Field(ge=0, le=10_000, description="Visits it can take per day")
    opening_hours: str = Field(description='e.g. "mon-fri 08:00-18:00; sat 09:00-12:30"')
    time_zone: TimeZone

    @field_validator("skills")
    @classmethod
    def _sorted_skills(cls, skills: list[Skill]) -> list[Skill]:
        return sorted(set(skills))

    @field_validator("opening_hours")
    @classmethod
    def _canonical_hours(cls, text: str) -> str:
        return format_opening_hours(parse_opening_hours(text))

    @property
    def hours(self) -> OpeningHours:
        return parse_opening_hours(self.opening_hours)


class Owner(Record):
    """Personal data: kept in the owners table only."""

    KIND = "owners"
    KEY = "owner_id"
    owner_id: RecordId
    name: Name
    email: str | None = Field(None, pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")
    phone: str | None = Field(None, pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164")
    consent_email: bool = False
    consent_sms: bool = False
    consent_in_car: bool = False
    time_zone: TimeZone
    quiet_hours: str | None = Field(None, description='e.g. "22:00-07:00" in the owner\'s time zone')
    language: str = Field("en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")

    @field_validator("quiet_hours")
    @classmethod
    def _canonical_quiet(cls, text: str | None) -> str | None:
        return None if text is None else format_quiet_hours(*parse_quiet_hours(text))

    @model_validator(mode="after")
    def _consent_needs_a_contact(self) -> Owner:
        if self.consent_email and not self.email:
            raise ValueError("consent_email needs an email address")
        if self.consent_sms and not self.phone:
            raise ValueError("consent_sms needs a phone number")
        return self

    def quiet(self) -> tuple[dt.time, dt.time] | None:
        return None if self.quiet_hours is None else parse_quiet_hours(self.quiet_hours)


class Vehicle(Record):
    KIND = "vehicles"
    KEY = "vehicle_id"
    vehicle_id: RecordId
    vin: str | None = Field(None, description="ISO 3779, 17 characters")
    model_id: RecordId | None = None
    fleet_id: RecordId | None = None
    service_centre_id: RecordId | None = None
    owner_id: RecordId | None = None

    @field_validator("vin")
    @classmethod
    def _iso_3779(cls, vin: str | None) -> str | None:
        if vin is not None and re.fullmatch(VIN_PATTERN, vin) is None:
            raise ValueError(f"{vin!r} is not a VIN: 17 of A-Z and 0-9, never I, O or Q (ISO 3779)")
        return vin

    REFERENCES: ClassVar[dict[str, str]] = {
        "model_id": "models",
        "fleet_id": "fleets",
        "service_centre_id": "service_centres",
        "owner_id": "owners",
    }


KINDS: tuple[type[Record], ...] = (Fleet, VehicleModel, ServiceCentre, Owner, Vehicle)  # import order
BY_KIND: dict[str, type[Record]] = {k.KIND: k for k in KINDS}
