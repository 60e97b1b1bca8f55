"""Recording a few vehicles' true state over a run, for the report's pictures and for tests.

Owns: choosing which vehicles to follow (every faulty vehicle, up to a limit, plus a few healthy
ones) and keeping their signals step by step in memory (a few hundred vehicles at most).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulators.engine import FleetSimulation, StepOutput
from simulators.sampling import BATTERY_12V, COOLANT, SOC, SPEED, TYRES

TRACED = {
    "speed_kmh": SPEED,
    "coolant_c": COOLANT,
    "battery_12v_v": BATTERY_12V,
    "soc_pct": SOC,
    "tyre_fl_kpa": TYRES[0],
}


@dataclass
class TraceRecorder:
    vehicles: np.ndarray  # indices into the fleet
    every_steps: int = 1
    t_s: list[float] = field(default_factory=list)
    x_m: list[np.ndarray] = field(default_factory=list)
    y_m: list[np.ndarray] = field(default_factory=list)
    values: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in TRACED})

    @classmethod
    def for_simulation(cls, sim: FleetSimulation, healthy: int = 6, faulty: int = 24) -> TraceRecorder:
        bad = np.flatnonzero(sim.faults.kind >= 0)[:faulty]
        good = np.setdiff1d(np.arange(sim.n_vehicles), bad)[:healthy]
        every = max(1, int(sim.scenario.duration_s / sim.dt_s) // 4000)
        return cls(vehicles=np.concatenate([good, bad]).astype(np.int64), every_steps=every)

    def record(self, sim: FleetSimulation, out: StepOutput) -> None:
        if sim.step_index % self.every_steps:
            return
        x, y = sim.positions_xy()
        self.t_s.append(out.t_s)
        self.x_m.append(x[self.vehicles])
        self.y_m.append(y[self.vehicles])
        for key, path in TRACED.items():
            self.values[key].append(out.signals[path][self.vehicles])

    def arrays(self) -> dict[str, np.ndarray]:
        """Shape (steps, traced vehicles) per key, plus `t_s` of shape (steps,)."""
        out = {"t_s": np.array(self.t_s), "x_m": np.array(self.x_m), "y_m": np.array(self.y_m)}
        out.update({k: np.array(v) for k, v in self.values.items()})
        return out
