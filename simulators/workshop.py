"""Booked shop visits of the simulated fleet: when they are due, whether the owner shows up, and
what the workshop does.

Owns: the visits booked (by the fleet layer through `FleetSimulation.schedule_visit`), the
no-show draw (`VisitSpec.no_show_probability`, from the seed, per vehicle and its visit number, so
a run repeats), and each visit's record for the ground truth. A visit the owner keeps repairs the
hardware fault (`simulators.faults.repair`) and clears the stored codes (the engine applies the
mask with `simulators.dtcs.clear_dtcs`). Pure: no I/O.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from simulators import faults as fault_mod
from simulators.scenario import VisitSpec


class Workshop:
    def __init__(self, n_vehicles: int, seed: int, spec: VisitSpec) -> None:
        self._seed = seed
        self._spec = spec
        self._due: list[tuple[float, int, int]] = []  # heap: (at_s, order, vehicle)
        self._order = 0
        self._booked = np.zeros(n_vehicles, dtype=np.int64)
        self.visits: list[dict[str, Any]] = []  # each visit's outcome, for the ground truth

    def book(self, vehicle: int, at_s: float) -> None:
        """A visit of `vehicle` at `at_s`. Raises ValueError for a vehicle index out of range."""
        if not 0 <= vehicle < self._booked.shape[0]:
            raise ValueError(f"no vehicle {vehicle}")
        self._order += 1
        heapq.heappush(self._due, (float(at_s), self._order, vehicle))

    def cancel(self, vehicle: int, at_s: float) -> bool:
        """Withdraw `vehicle`'s visit booked at `at_s` (within half a second), if it is still to come:
        whether one was."""
        for i, (booked_s, _, v) in enumerate(self._due):
            if v == vehicle and abs(booked_s - at_s) < 0.5:
                self._due.pop(i)
                heapq.heapify(self._due)
                return True
        return False

    def visit_due(self, t_s: float, plan: fault_mod.FaultPlan, stored: np.ndarray) -> np.ndarray:
        """Hold the visits due at `t_s`: repairs what the kept ones find (`plan` changes) and
        returns the mask of vehicles whose stored codes (`stored`, before this step) are cleared."""
        cleared = np.zeros(self._booked.shape[0], dtype=bool)
        while self._due and self._due[0][0] <= t_s:
            booked_s, _, v = heapq.heappop(self._due)
            k = int(self._booked[v])
            self._booked[v] += 1
            u = np.random.default_rng([self._seed, 0x715, v, k]).random()
            showed = bool(u >= self._spec.no_show_probability)
            codes = [str(plan.dtc_code[v])] if stored[v] else []
            repaired = fault_mod.repair(plan, v, t_s) if showed else None
            cleared[v] |= showed
            self.visits.append(
                {
                    "vehicle_index": v,
                    "booked_at_s": booked_s,
                    "t_s": t_s,
                    "showed_up": showed,
                    "repaired": repaired,
                    "codes_cleared": codes if showed else [],
                }
            )
        return cleared
