"""When condition-based campaigns fire, and which window of samples a firing covers.

Owns: turning a boolean condition column into firing instants (rising edge or every true row),
honouring a minimum interval between firings across flushes; and the window arithmetic. Pure:
arrays and a frozen state in, arrays and state out. Leaves the condition to `edge_agent.expression`
and the samples to `edge_agent.ring`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEVER_NS = -(2**62)


@dataclass(frozen=True, slots=True)
class TriggerState:
    """Whether the condition held on the last row seen, and when the trigger last fired."""

    was_true: bool = False
    last_fire_ns: int = NEVER_NS


def fire_times(
    ts_ns: np.ndarray,
    condition: np.ndarray,
    *,
    rising_edge: bool,
    min_interval_ns: int,
    state: TriggerState = TriggerState(),  # noqa: B008 - frozen, immutable default
) -> tuple[list[int], TriggerState]:
    """Instants (ns) at which the trigger fires in this chunk, and the state for the next chunk."""
    cond = np.asarray(condition, dtype=bool)
    if cond.size == 0:
        return [], state
    if rising_edge:
        previous = np.concatenate(([state.was_true], cond[:-1]))
        candidates = np.flatnonzero(cond & ~previous)
    else:
        candidates = np.flatnonzero(cond)
    fired: list[int] = []
    last = state.last_fire_ns
    for t in np.asarray(ts_ns, dtype=np.int64)[candidates].tolist():
        if t - last >= min_interval_ns:
            fired.append(t)
            last = t
    return fired, TriggerState(bool(cond[-1]), last)


@dataclass(frozen=True, slots=True)
class CaptureWindow:
    """Samples of `paths` from `start_ns` to `end_ns` inclusive are to be sent at full rate."""

    trigger: str
    fired_ns: int
    start_ns: int
    end_ns: int
    paths: tuple[str, ...]


def window_for(
    trigger: str, fired_ns: int, pre_s: float, post_s: float, paths: tuple[str, ...]
) -> CaptureWindow:
    return CaptureWindow(
        trigger, fired_ns, fired_ns - round(pre_s * 1e9), fired_ns + round(post_s * 1e9), paths
    )
