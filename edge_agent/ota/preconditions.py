"""Whether an update may be installed now: pure functions over a snapshot of the vehicle.

Owns the four preconditions of issue 12 and UNECE R156: the vehicle is parked (speed 0 for a
while, engine off), it has enough power (12 V battery voltage, or the traction battery's state of
charge), the vehicle's local time is inside the offer's maintenance window, and the owner gave
consent when the offer asks for it. Each refusal names the precondition that failed, for the
report. Building the snapshot from signals is the agent's job; the terms come from the offer.
A reading that is missing, NaN or infinite proves nothing, so it refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time

PARKED = "parked"
POWER = "power"
MAINTENANCE_WINDOW = "maintenance_window"
CONSENT = "consent"


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Local wall-clock times of the vehicle, [start, end); a window whose end is before its
    start crosses midnight (22:00-05:00). Raises ValueError for an empty window (start == end)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("a maintenance window needs start != end")

    def contains(self, local: time) -> bool:
        t = local.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True, slots=True)
class OfferTerms:
    """What the offer asks of the vehicle: its id (which reports carry), a maintenance window
    (None: any time) and whether the owner's consent is needed."""

    offer_id: str = ""
    window: MaintenanceWindow | None = None
    consent_required: bool = False


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The agent's limits: parked for at least `min_parked_s` at speed 0 with the engine off, and
    at least `min_battery_v` on the 12 V battery or `min_traction_soc_pct` in the traction battery."""

    min_parked_s: float = 60.0
    min_battery_v: float = 12.2
    min_traction_soc_pct: float = 30.0


@dataclass(frozen=True, slots=True)
class VehicleConditions:
    """A snapshot of the vehicle when the install would start; None where the agent has no reading.
    `parked_s` is how long the speed has been 0."""

    speed_kmh: float | None = None
    parked_s: float | None = None
    engine_running: bool | None = None
    battery_v: float | None = None
    traction_soc_pct: float | None = None
    local_time: time | None = None
    consent_given: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    """A precondition that failed (one of PARKED, POWER, MAINTENANCE_WINDOW, CONSENT, or the
    installer's own: see edge_agent.ota.install) and why, in words for the report."""

    precondition: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"precondition": self.precondition, "detail": self.detail}


def _number(value: float | None) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None  # NaN or infinite: a broken reading


def check_parked(c: VehicleConditions, th: Thresholds) -> Refusal | None:
    speed, parked_s = _number(c.speed_kmh), _number(c.parked_s)
    if speed is None or parked_s is None or c.engine_running is None:
        return Refusal(PARKED, "speed, time parked or engine state unknown")
    if speed != 0.0:
        return Refusal(PARKED, f"moving at {speed:g} km/h")
    if c.engine_running:
        return Refusal(PARKED, "engine running")
    if parked_s < th.min_parked_s:
        return Refusal(PARKED, f"parked for {parked_s:g} s, less than {th.min_parked_s:g} s")
    return None


def check_power(c: VehicleConditions, th: Thresholds) -> Refusal | None:
    volts, soc = _number(c.battery_v), _number(c.traction_soc_pct)
    if volts is None and soc is None:
        return Refusal(POWER, "battery voltage and traction state of charge unknown")
    if volts is not None and volts >= th.min_battery_v:
        return None
    if soc is not None and soc >= th.min_traction_soc_pct:
        return None
    seen = []
    if volts is not None:
        seen.append(f"12 V battery at {volts:.2f} V < {th.min_battery_v:g} V")
    if soc is not None:
        seen.append(f"traction battery at {soc:g} % < {th.min_traction_soc_pct:g} %")
    return Refusal(POWER, "; ".join(seen))


def check_window(c: VehicleConditions, terms: OfferTerms) -> Refusal | None:
    if terms.window is None:
        return None
    if c.local_time is None:
        return Refusal(MAINTENANCE_WINDOW, "the vehicle's local time is unknown")
    if not terms.window.contains(c.local_time):
        w = terms.window
        return Refusal(
            MAINTENANCE_WINDOW,
            f"local time {c.local_time:%H:%M} outside {w.start:%H:%M}-{w.end:%H:%M}",
        )
    return None


def check_consent(c: VehicleConditions, terms: OfferTerms) -> Refusal | None:
    if terms.consent_required and c.consent_given is not True:
        return Refusal(CONSENT, "the offer needs the owner's consent, which was not given")
    return None


def check_preconditions(c: VehicleConditions, terms: OfferTerms, th: Thresholds) -> tuple[Refusal, ...]:
    """Every precondition that fails, in a fixed order; empty when the install may start."""
    found = (check_parked(c, th), check_power(c, th), check_window(c, terms), check_consent(c, terms))
    return tuple(r for r in found if r is not None)
