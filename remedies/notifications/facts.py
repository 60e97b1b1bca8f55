"""What a notification is written from: the fault and the remedy, as the remedy engine knows them.

Owns the validated shape of the `facts` that `outbox.enqueue` takes and stores (as JSON in
`notifications.facts`): the fault (kind, severity, the detector's explanation) and the remedy,
either an OTA patch (ECU, target version, install time) or a shop visit (centre, start, duration),
or, once an update has a result, what it did (`UpdateResult`: the notice after the update).
The remedy's kind decides the notification's `stage`: one notification per (vehicle, alarm,
remedy) and stage.
No personal data: the owner's name and addresses stay in the registry. The wording is `messages`'.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Stage = Literal["remedy", "update_installed", "update_rolled_back"]
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


class UpdateResult(_Facts):
    """What an OTA update did, after the vehicle's signed report: installed (committed) or
    rolled back to the version it ran before."""

    kind: Literal["update_result"] = "update_result"
    ecu: _Short = Field(description="The control unit updated, e.g. ECM")
    installed: bool = Field(description="True: the new version runs; False: it was rolled back")
    software_version: _Short = Field(description="The version the control unit runs now")
    at: AwareDatetime = Field(description="When the vehicle reported the result")


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
    remedy: Annotated[OtaPatch | ShopVisit | UpdateResult, Field(discriminator="kind")]

    @property
    def stage(self) -> Stage:
        """`remedy` (what will be done), or what an update did."""
        if isinstance(self.remedy, UpdateResult):
            return "update_installed" if self.remedy.installed else "update_rolled_back"
        return "remedy"

    @property
    def critical(self) -> bool:
        """A critical safety message (the alarm's severity): the rate limit does not hold it back."""
        return self.severity == "CRITICAL"

    @property
    def expires_at(self) -> dt.datetime | None:
        """Nothing goes out after this: a visit's message is pointless once the visit has begun."""
        return self.remedy.starts_at if isinstance(self.remedy, ShopVisit) else None
