"""The simulator's side of the closed loop: update offers in, signed reports out, installs that
commit and booked visits applied to the fleet.

Owns: the hand-over between threads and sim time. Offers (from `simulators.ota_link`, the MQTT
shell, or a test) and booked visits (from the fleet layer) may arrive from any thread; they wait
in an inbox until the feeding thread's next step, where an offer reaches its vehicle (only while
the vehicle is online: an offline vehicle gets it when it is back, as a persistent MQTT session
would deliver it) and the responder (`simulators.ota_responder`) advances every install under way.
A `committed` install changes the vehicle's software in the engine (`FleetSimulation.
install_software`: its check-in with the new version goes out at the next step, and a firmware
bug stops on the patched version); a rolled-back one changes nothing. Visits go to
`FleetSimulation.schedule_visit`, and cancelled ones (a booking cancelled or rescheduled) to
`FleetSimulation.cancel_visit`. `simulators.feeder.feed(closed_loop=...)` calls `step` once per
step and publishes the reports on each vehicle's `update` topic through its backlog (an offline
vehicle's reports wait, as the agent's spool keeps them). Leaves MQTT to `simulators.ota_link`.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract import topics
from contract.update import UpdateOffer
from simulators.engine import FleetSimulation, StepOutput
from simulators.ota_responder import OtaResponder
from simulators.report_keys import SimulatedKeys


@dataclass
class LoopStats:
    offers_received: int = 0  # offers handed to a vehicle of the fleet
    offers_unknown_vehicle: int = 0  # offers for a vehicle id that is not in this fleet: ignored
    reports: int = 0
    committed: int = 0
    rolled_back: int = 0
    failed: int = 0
    visits_booked: int = 0
    visits_cancelled: int = 0  # booked visits withdrawn before they were held


class ClosedLoop:
    """One simulated fleet's OTA answers and visits. `receive_offer` and `book_visit` are
    thread-safe; `step` runs in the feeding thread."""

    def __init__(self, sim: FleetSimulation) -> None:
        self.sim = sim
        self.responder = OtaResponder(
            sim.scenario.ota,
            sim.scenario.seed,
            sim.vehicle_ids,
            sim.start_unix_s,
            sim.connectivity.clock_skew_ns,
            SimulatedKeys(sim.scenario.seed, sim.vehicle_ids),
        )
        self.stats = LoopStats()
        self._index = {vid: i for i, vid in enumerate(sim.vehicle_ids)}
        self._inbox: queue.SimpleQueue[tuple[str, int, Any]] = queue.SimpleQueue()
        self._held: list[tuple[int, UpdateOffer]] = []  # offers waiting for their vehicle to be online

    @property
    def keys(self) -> SimulatedKeys:
        """The vehicles' report keys: register `keys.public_keys()` (ota.vehicle_keys) before offering."""
        return self.responder.keys

    def receive_offer(self, vehicle_id: str, offer: UpdateOffer) -> bool:
        """An offer arrived for `vehicle_id` (thread-safe); it reaches the vehicle at the next step.
        False (and ignored) when the vehicle is not in this fleet."""
        v = self._index.get(vehicle_id)
        if v is None:
            self.stats.offers_unknown_vehicle += 1
            return False
        self._inbox.put(("offer", v, offer))
        return True

    def book_visit(self, vehicle_id: str, at_unix_s: float) -> None:
        """A shop visit booked for `vehicle_id` at the true Unix time `at_unix_s` (thread-safe): at
        that sim time the owner shows up or not (`scenario.visits.no_show_probability`) and the
        workshop repairs the hardware fault and clears the stored codes. A time already passed
        applies at the next step. Raises KeyError for a vehicle not in this fleet."""
        self._inbox.put(("visit", self._index[vehicle_id], float(at_unix_s)))

    def cancel_visit(self, vehicle_id: str, at_unix_s: float) -> None:
        """Withdraw the visit booked for `vehicle_id` at `at_unix_s` (thread-safe; applied at the next
        step, if it has not been held by then). Raises KeyError for a vehicle not in this fleet."""
        self._inbox.put(("cancel", self._index[vehicle_id], float(at_unix_s)))

    def step(self, out: StepOutput, offline: np.ndarray) -> list[tuple[int, str, bytes]]:
        """After the engine's step `out`: hand over what arrived, advance the installs, apply what
        committed. Returns the reports to publish as (vehicle index, topic kind, payload)."""
        sim, t_s = self.sim, out.t_s
        offers, self._held = self._held, []
        while True:
            try:
                what, v, item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if what == "visit":
                sim.schedule_visit(v, sim.t_s_at(item))
                self.stats.visits_booked += 1
            elif what == "cancel":
                self.stats.visits_cancelled += sim.cancel_visit(v, sim.t_s_at(item))
            else:
                offers.append((v, item))
        reports = []
        for v, offer in offers:
            if offline[v]:
                self._held.append((v, offer))
                continue
            self.stats.offers_received += 1
            reports += self.responder.offer(v, offer, sim.software.version(v, offer.ecu), t_s)
        reports += self.responder.step(t_s, sim.parked_s, sim.power_ok())
        for r in reports:
            state = r.report.state
            if state == "committed":
                self.stats.committed += 1
                sim.install_software(
                    r.vehicle, r.report.ecu, r.report.after.version, t_s, f"ota:{r.report.offer_id}"
                )
            elif state == "rolled_back":
                self.stats.rolled_back += 1
            elif state == "failed":
                self.stats.failed += 1
        self.stats.reports += len(reports)
        return [(r.vehicle, topics.UPDATE, r.payload) for r in reports]

    def truth(self) -> dict[str, Any]:
        """For the ground truth: every offer that ended (its final state and reason) and those
        still under way."""
        return {
            "offers": list(self.responder.finished),
            "under_way": [
                {
                    "vehicle_id": self.sim.vehicle_ids[v],
                    "offer_id": job.offer.offer_id,
                    "phase": job.phase,
                    "received_s": job.received_s,
                }
                for v, job in sorted(self.responder.jobs.items())
            ],
            "held_for_offline_vehicles": len(self._held),
        }
