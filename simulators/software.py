"""The ECU software each simulated vehicle runs, and its changes (OTA installs that committed).

Owns: one version array per ECU across the fleet (the powertrain controller, ECM for combustion
and VCU for electric vehicles, plus the ECUs every car has: `OTHER_ECUS`), the installs scheduled
at a sim time and applied by the engine's step, and the record of every change (the ground
truth's `software_changes`). Pure numpy, no I/O. Leaves to others: deciding that an install
commits (`simulators.ota_responder`), what a version does to a fault (`simulators.faults`), and
reporting the software in check-ins (`simulators.fleet_registry`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from contract.software import ECU_NAME

POWERTRAIN_ECUS = ("ECM", "VCU")  # combustion, electric: `simulators.models.powertrain_ecu`
# ECUs besides the powertrain controller, the same in every car: (name, version at the start).
OTHER_ECUS = (("BCM", "1.7.0"), ("TCU", "2.3.0"))


@dataclass(frozen=True)
class SoftwareChange:
    """One ECU of one vehicle switched to another version at `t_s` (seconds into the run)."""

    t_s: float
    vehicle: int
    ecu: str
    before: str
    after: str
    source: str  # what changed it: "ota:<offer id>", or "workshop"


class FleetSoftware:
    """Every vehicle's ECU versions. `schedule` an install; the engine's step calls `apply_due`."""

    def __init__(self, is_ev: np.ndarray, powertrain_versions: np.ndarray) -> None:
        n = is_ev.shape[0]
        self.is_ev = is_ev.astype(bool)
        self.versions: dict[str, np.ndarray] = {
            "ECM": np.where(self.is_ev, "", powertrain_versions).astype(object),
            "VCU": np.where(self.is_ev, powertrain_versions, "").astype(object),
            **{name: np.full(n, version, dtype=object) for name, version in OTHER_ECUS},
        }
        self.changes: list[SoftwareChange] = []
        self._due: list[tuple[float, int, int, str, str, str]] = []  # heap: (at_s, order, v, ecu, ...)
        self._order = 0

    def powertrain(self) -> np.ndarray:
        """Each vehicle's powertrain controller version (ECM, or VCU in an EV), as an object array."""
        return np.where(self.is_ev, self.versions["VCU"], self.versions["ECM"])

    def version(self, vehicle: int, ecu: str) -> str | None:
        """What `ecu` of `vehicle` runs, or None when the vehicle has no such ECU."""
        column = self.versions.get(ecu)
        if column is None:
            return None
        value = str(column[vehicle])
        return value or None

    def inventory(self, vehicle: int) -> dict[str, str]:
        """The vehicle's ECUs and versions (what its check-in reports)."""
        return {ecu: str(col[vehicle]) for ecu, col in self.versions.items() if col[vehicle]}

    def schedule(self, vehicle: int, ecu: str, version: str, at_s: float, source: str) -> None:
        """Switch `ecu` of `vehicle` to `version` at the first step at or after `at_s`. Raises
        ValueError for a vehicle index out of range, an ECU the vehicle does not have, or a version
        that is not printable text of 1 to 64 characters."""
        if not 0 <= vehicle < self.is_ev.shape[0]:
            raise ValueError(f"no vehicle {vehicle}")
        if ECU_NAME.fullmatch(ecu) is None or self.version(vehicle, ecu) is None:
            raise ValueError(f"vehicle {vehicle} has no ECU {ecu!r}")
        if not version or len(version) > 64 or not version.isprintable():
            raise ValueError("a version is printable text of 1 to 64 characters")
        self._order += 1
        heapq.heappush(self._due, (float(at_s), self._order, vehicle, ecu, version, source))

    def apply_due(self, t_s: float) -> list[SoftwareChange]:
        """Apply every install scheduled at or before `t_s`, in order; the changes (an install of
        the version already running changes nothing and is not listed)."""
        applied = []
        while self._due and self._due[0][0] <= t_s:
            _, _, v, ecu, version, source = heapq.heappop(self._due)
            before = str(self.versions[ecu][v])
            if before == version:
                continue
            self.versions[ecu][v] = version
            change = SoftwareChange(t_s, v, ecu, before, version, source)
            self.changes.append(change)
            applied.append(change)
        return applied
