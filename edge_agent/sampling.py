"""Periodic sampling with deadband and change-only filtering, on numpy columns.

Owns: deciding which full-rate samples of one signal are sent by the periodic path of a campaign.
Pure functions over arrays plus a small frozen state carried from one flush to the next, so a
flush boundary never changes the result (tests check that splitting the input does not matter).

Periods are aligned to the clock: a signal with `period_ms = 1000` is sent at most once per whole
second (`ts_ns // period_ns`), using the first present sample of that second. Deadband: a candidate
is sent only when it differs from the last *sent* value by more than `deadband`; change-only is
the same with "differs at all". The first sample ever is always sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NEVER_BUCKET = -(2**62)


@dataclass(frozen=True, slots=True)
class SamplerState:
    """Carried between flushes: the last period considered and the last value sent."""

    last_bucket: int = NEVER_BUCKET
    last_sent: float = math.nan


def select_samples(
    ts_ns: np.ndarray,
    values: np.ndarray,
    *,
    period_ns: int,
    deadband: float = 0.0,
    change_only: bool = False,
    state: SamplerState = SamplerState(),  # noqa: B008 - frozen, immutable default
) -> tuple[np.ndarray, SamplerState]:
    """Boolean mask of the rows to send, and the state for the next call.
    `ts_ns` must increase; NaN values are absent samples and are never sent."""
    mask = np.zeros(values.shape[0], dtype=bool)
    present_idx = np.flatnonzero(~np.isnan(values))
    if present_idx.size == 0:
        return mask, state
    buckets = np.asarray(ts_ns, dtype=np.int64)[present_idx] // period_ns
    previous = np.concatenate(([state.last_bucket], buckets[:-1]))
    first_of_bucket = (buckets != previous) & (buckets > state.last_bucket)
    candidates = present_idx[first_of_bucket]
    if candidates.size == 0:
        return mask, state
    last_bucket = int(buckets[first_of_bucket][-1])
    if deadband <= 0.0 and not change_only:
        mask[candidates] = True
        return mask, SamplerState(last_bucket, float(values[candidates[-1]]))
    last_sent = state.last_sent
    for row in candidates.tolist():
        value = float(values[row])
        if math.isnan(last_sent) or _moved(value, last_sent, deadband):
            mask[row] = True
            last_sent = value
    return mask, SamplerState(last_bucket, last_sent)


def _moved(value: float, last_sent: float, deadband: float) -> bool:
    """Deadband > 0: moved by more than it; otherwise (change-only): differs at all."""
    return abs(value - last_sent) > deadband if deadband > 0.0 else value != last_sent
