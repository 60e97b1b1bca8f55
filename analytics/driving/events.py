"""Harsh events: braking, acceleration and cornering held above a threshold, with hysteresis.

Owns: finding excursions of one acceleration signal (in g, positive in the direction that counts)
and deciding which are events. An excursion starts when the value reaches the rule's exit
threshold and lasts while it stays there (so a value that dithers around the enter threshold
makes one event, not several); it is an event when its samples at or above the enter threshold
cover `min_hold_s`. Each sample stands for its own sampling period (the shorter of the gaps to its
neighbours, at most `max_sample_period_s`): one 1 Hz sample above the threshold has held for a
second, while at 10 Hz a 100 ms hold needs one sample and a 300 ms hold three. A gap in the data
longer than `max_sample_period_s` ends an excursion. Pure and vectorised.
"""

from __future__ import annotations

import numpy as np

from analytics.driving.config import EventRule

NS_PER_S = 1_000_000_000


def sample_periods_s(vehicle: np.ndarray, ts_ns: np.ndarray, max_period_s: float) -> np.ndarray:
    """Each row's sampling period: the shorter gap to a neighbour of the same vehicle, capped."""
    n = ts_ns.shape[0]
    gap = np.full(n + 1, np.inf)
    if n > 1:
        d = np.diff(ts_ns) / NS_PER_S
        gap[1:-1] = np.where(vehicle[1:] == vehicle[:-1], d, np.inf)
    return np.minimum(np.minimum(gap[:-1], gap[1:]), max_period_s)


def harsh_events(vehicle: np.ndarray, ts_ns: np.ndarray, value_g: np.ndarray, rule: EventRule) -> np.ndarray:
    """Rows where a harsh event begins (its first row at or above the enter threshold), in row order.
    Rows sorted by (vehicle, ts_ns); NaN values are below every threshold."""
    n = ts_ns.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    period = sample_periods_s(vehicle, ts_ns, rule.max_sample_period_s)
    up = value_g >= rule.exit_g
    over = value_g >= rule.enter_g
    rows = np.flatnonzero(up)
    if rows.size == 0:
        return rows.astype(np.int64)
    start = np.ones(rows.size, dtype=bool)
    start[1:] = (
        (rows[1:] != rows[:-1] + 1)
        | (vehicle[rows[1:]] != vehicle[rows[:-1]])
        | ((ts_ns[rows[1:]] - ts_ns[rows[:-1]]) > rule.max_sample_period_s * NS_PER_S)
    )
    run = np.cumsum(start) - 1
    held_s = np.bincount(run, weights=np.where(over[rows], period[rows], 0.0))
    # The first row at or above the enter threshold in each run: the minimum such position.
    pos = np.where(over[rows], np.arange(rows.size), rows.size)
    first = np.minimum.reduceat(pos, np.flatnonzero(start))
    event = held_s >= rule.min_hold_s - 1e-9
    return rows[first[event]].astype(np.int64)
