"""The driving score's versioned configuration: how trips are cut, what counts as a harsh event,
speeding and night, and the weights of the score. One frozen dataclass; change a value, change
`DRIVING_THRESHOLDS_VERSION`, and every stored trip says which version scored it.

Why each value is what it is: docs/driving-score.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

G_MS2 = 9.80665
DRIVING_THRESHOLDS_VERSION = "driving-1"


@dataclass(frozen=True)
class TripRules:
    """A trip is a run of moving rows; a stop of `park_s` or more (stationary or no data), or a
    stop of `engine_off_stop_s` or more with the engine seen off, ends it."""

    moving_kmh: float = 3.0
    park_s: float = 120.0
    engine_off_stop_s: float = 30.0
    min_distance_km: float = 0.1  # shorter "trips" (moving the car in the drive) are not scored


@dataclass(frozen=True)
class EventRule:
    """A harsh event: the value rises to `enter_g`, stays at or above `enter_g` for `min_hold_s`
    (each sample stands for its sampling period, at most `max_sample_period_s`), and ends when it
    falls below `exit_g` (hysteresis) or the data has a gap longer than `max_sample_period_s`."""

    enter_g: float
    exit_g: float
    min_hold_s: float = 0.1
    max_sample_period_s: float = 1.0


@dataclass(frozen=True)
class ScoreWeights:
    """Points (of 100) each behaviour can cost a trip, and the rate at which it costs them all."""

    braking: float = 25.0
    acceleration: float = 15.0
    cornering: float = 15.0
    speeding: float = 30.0
    high_risk_time: float = 10.0
    night: float = 5.0
    full_braking_per_100km: float = 20.0
    full_acceleration_per_100km: float = 20.0
    full_cornering_per_100km: float = 20.0
    full_speeding_share: float = 0.3  # 30% of the time with a known limit spent over it
    full_high_risk_share: float = 1.0
    full_night_share: float = 1.0


@dataclass(frozen=True)
class DrivingThresholds:
    version: str = DRIVING_THRESHOLDS_VERSION
    trips: TripRules = field(default_factory=TripRules)
    braking: EventRule = field(default_factory=lambda: EventRule(0.35, 0.25))
    acceleration: EventRule = field(default_factory=lambda: EventRule(0.35, 0.25))
    cornering: EventRule = field(default_factory=lambda: EventRule(0.40, 0.30))
    speeding_tolerance_kmh: float = 5.0  # over the limit by more than max(this, the share below)
    speeding_tolerance_share: float = 0.05
    high_risk_hours: tuple[float, float] = (0.0, 4.0)  # local time, [from, to)
    night_hours: tuple[float, float] = (22.0, 5.0)  # local time, wraps midnight
    weights: ScoreWeights = field(default_factory=ScoreWeights)
