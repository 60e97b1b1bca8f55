"""Harsh events: the hold is counted in time, each sample standing for its own sampling period, so
the same manoeuvre is one event at 1 Hz and at 10 Hz; hysteresis makes one event per excursion;
a gap in the data ends an excursion."""

from __future__ import annotations

import numpy as np

from analytics.driving.config import EventRule
from analytics.driving.events import harsh_events, sample_periods_s

S = 1_000_000_000
RULE = EventRule(enter_g=0.35, exit_g=0.25, min_hold_s=0.1)


def _events(values: list[float], hz: float = 1.0, rule: EventRule = RULE, vehicle: list[int] | None = None):
    n = len(values)
    ts = np.round(np.arange(n) / hz * S).astype(np.int64)
    v = np.zeros(n, dtype=np.int32) if vehicle is None else np.asarray(vehicle, dtype=np.int32)
    return harsh_events(v, ts, np.asarray(values, dtype=float), rule).tolist()


def test_one_sample_above_at_1_hz_has_held_a_second() -> None:
    assert _events([0.0, 0.1, 0.5, 0.1, 0.0]) == [2]
    assert _events([0.0, 0.3, 0.3, 0.0]) == []  # above exit, never above enter


def test_at_10_hz_the_hold_is_counted_in_samples() -> None:
    rule = EventRule(enter_g=0.35, exit_g=0.25, min_hold_s=0.3)
    assert _events([0.0] * 5 + [0.5] * 2 + [0.0] * 5, hz=10, rule=rule) == []
    assert _events([0.0] * 5 + [0.5] * 3 + [0.0] * 5, hz=10, rule=rule) == [5]
    assert _events([0.0, 0.5, 0.0], hz=1, rule=rule) == [1]


def test_hysteresis_one_event_per_excursion() -> None:
    dithering = [0.0, 0.4, 0.3, 0.4, 0.28, 0.36, 0.0]
    assert _events(dithering) == [1]
    two = [0.0, 0.4, 0.2, 0.4, 0.0]  # fell below exit in between
    assert _events(two) == [1, 3]


def test_a_gap_or_another_vehicle_ends_an_excursion() -> None:
    ts = np.array([0, 1, 5, 6], dtype=np.int64) * S
    v = np.zeros(4, dtype=np.int32)
    assert harsh_events(v, ts, np.array([0.4, 0.4, 0.4, 0.4]), RULE).tolist() == [0, 2]
    assert _events([0.4, 0.4, 0.4, 0.4], vehicle=[0, 0, 1, 1]) == [0, 2]


def test_nan_is_below_every_threshold() -> None:
    assert _events([np.nan, 0.5, np.nan, 0.5]) == [1, 3]


def test_sample_periods_are_the_shorter_neighbour_gap_capped() -> None:
    ts = np.array([0, 100, 200, 5000, 0], dtype=np.int64) * 1_000_000
    v = np.array([0, 0, 0, 0, 1], dtype=np.int32)
    assert sample_periods_s(v, ts, 1.0).tolist() == [0.1, 0.1, 0.1, 1.0, 1.0]
