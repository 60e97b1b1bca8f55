"""What a notification is written from: the fault and the remedy, as the remedy engine knows them.

Owns the validated shape of the `facts` that `outbox.enqueue` takes and stores (as JSON in
`notifications.facts`): the fault (kind, severity, the detector's explanation) and the remedy,
either an OTA patch (ECU, target version, install time) or a shop visit (centre, start, duration).
No personal data: the owner's name and addresses stay in the registry. The wording is `messages`'.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Severity = Literal["CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE"]
_Short = Annotated[str, Field(min_length=1, max_length=100)]


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class OtaPatch(_Facts):
    """A software update over the air that cures the fault."""

    kind: Literal["ota_patch"] = "ota_patch"
    ecu: _Short = Field(description="The control unit updated, e.g. ECM")
    software_version: _Short = Field(description="The version it is updated to")
    duration_min: int = Field(ge=1, le=24 * 60, description="How long the installation takes")
    needs_consent: bool = Field(False, description="The owner must accept it on the car's screen")


class ShopVisit(_Facts):
    """A booked visit to a service centre."""

    kind: Literal["shop_visit"] = "shop_visit"
    centre_name: _Short
    centre_address: str = Field("", max_length=200)
    starts_at: AwareDatetime
    duration_min: int = Field(ge=1, le=14 * 24 * 60, description="How long the car stays there")


class NoticeFacts(_Facts):
    """The facts of one notification. `fault` is the alarm's fault kind (`battery_12v_failing`,
    `dtc:P0217`, `sensor_stuck:<signal>`, ...; docs/faults.md); `explanation` is the detector's own
    sentence, shown as the technical detail of an e-mail."""

    fault: _Short
    severity: Severity = "MAJOR"
    explanation: str = Field("", max_length=1000)
    vehicle_label: str = Field("", max_length=100, description='How to name the car, e.g. "your Golf"')
    remedy: Annotated[OtaPatch | ShopVisit, Field(discriminator="kind")]

    @property
    def critical(self) -> bool:
        """A critical safety message (the alarm's severity): the rate limit does not hold it back."""
        return self.severity == "CRITICAL"

    @property
    def expires_at(self) -> dt.datetime | None:
        """Nothing goes out after this: a visit's message is pointless once the visit has begun."""
        return self.remedy.starts_at if isinstance(self.remedy, ShopVisit) else None
