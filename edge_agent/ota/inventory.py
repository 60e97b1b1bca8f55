"""The software inventory the agent reports in its check-in, from what the slots hold (pure).

Owns one rule: an ECU with slots reports the manifest of the slot it runs (so after a rollback the
old version, as hawkBit's users ask); an ECU without slots reports what the agent's configuration
says; an ECU whose boot marker is unreadable is left out (unknown) rather than guessed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from contract.software import EcuSoftware
from edge_agent.ota.artifact import Manifest


def running_inventory(
    configured: Iterable[EcuSoftware],
    running: Mapping[str, Manifest],
    unknown: Collection[str] = (),
) -> tuple[EcuSoftware, ...]:
    """One entry per ECU, sorted: the running slot's manifest where there is one (its hardware id,
    or the configured one when the manifest has none), else the configured entry."""
    by_ecu = {e.ecu: e for e in configured}
    for ecu, manifest in running.items():
        hardware_id = manifest.hardware_id or (by_ecu[ecu].hardware_id if ecu in by_ecu else "")
        by_ecu[ecu] = EcuSoftware(ecu, manifest.version, hardware_id)
    return tuple(sorted(e for ecu, e in by_ecu.items() if ecu not in unknown))
