"""Each vehicle's stored diagnostic trouble codes: detected, kept, and cleared again.

Owns: the per-vehicle DTC state and its step. A fault's monitor detection (`simulators.faults`) stores the
fault's code; the code stays stored until the workshop repairs the fault (`repaired_at_s`; a booked visit
clears the codes with `clear_dtcs`) or, for the kinds that heal (misfire, firmware bug after its patch is
installed), until the vehicle completes `clear_cycles` drive cycles in a row without a detection. Each
vehicle has at most one fault and each fault one code, so a vehicle's current set is that code or nothing:
one boolean per vehicle. Pure: the engine calls `step_dtcs` once per step and reports the vehicles whose set
changed; the contract says a DTC message carries the whole current set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.faults import FaultPlan


@dataclass(frozen=True)
class DtcState:
    stored: np.ndarray  # bool (n,): the fault's code is stored
    dirty_cycle: np.ndarray  # bool (n,): the drive cycle under way is not clean (see step_dtcs)
    clean_cycles: np.ndarray  # int (n,): clean drive cycles in a row since the code was stored


def initial_dtcs(n_vehicles: int) -> DtcState:
    """No stored codes: every run starts with cleared memories."""
    return DtcState(
        stored=np.zeros(n_vehicles, dtype=bool),
        dirty_cycle=np.zeros(n_vehicles, dtype=bool),
        clean_cycles=np.zeros(n_vehicles, dtype=np.int64),
    )


def step_dtcs(
    plan: FaultPlan,
    st: DtcState,
    t_s: float,
    *,
    detected: np.ndarray,
    running: np.ndarray,
    cycle_ended: np.ndarray,
) -> DtcState:
    """Advance the stored codes by one step. `detected`: the monitors that saw their fault in this
    step; `running`: engine on (EV ready); `cycle_ended`: vehicles that parked in this step. A drive
    cycle is clean when it had no detection and ran wholly after `heals_from_s` (e.g. the patch)."""
    dirty = st.dirty_cycle | detected | (running & (t_s < plan.heals_from_s))
    clean_cycles = np.where(cycle_ended, np.where(dirty, 0, st.clean_cycles + 1), st.clean_cycles)
    healed = cycle_ended & (clean_cycles >= plan.clear_cycles)
    repaired = t_s >= plan.repaired_at_s
    stored = (st.stored | detected) & ~healed & ~repaired
    return DtcState(
        stored=stored,
        dirty_cycle=dirty & ~cycle_ended,
        clean_cycles=np.where(stored, clean_cycles, 0),
    )


def clear_dtcs(st: DtcState, vehicles: np.ndarray) -> DtcState:
    """The state after a scan tool cleared the stored codes of the `vehicles` mask (a shop visit)."""
    return DtcState(
        stored=st.stored & ~vehicles,
        dirty_cycle=st.dirty_cycle & ~vehicles,
        clean_cycles=np.where(vehicles, 0, st.clean_cycles),
    )


def changed_sets(
    plan: FaultPlan, before: DtcState, after: DtcState
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """The vehicles whose stored set changed, and each one's new whole set (empty = cleared)."""
    rows = np.flatnonzero(before.stored != after.stored)
    sets: list[tuple[str, ...]] = [
        (str(plan.dtc_code[v]),) if stored else () for v, stored in zip(rows, after.stored[rows], strict=True)
    ]
    return rows, sets
