"""Which TUF target a campaign offers, and whether a vehicle may get it. Pure.

Owns: finding the published target of an (ECU, version) among the repository's targets (custom
metadata `ecu`, `version`, `hardware_ids`; `ota.repository.OtaRepository.list_targets`), and the
compatibility check against the vehicle's last known configuration (UNECE R156 §7.2.2.1.3): the
vehicle must report the ECU, with a hardware id, and that hardware id must be one the target is
built for. The agent checks the same again before it installs (docs/ota.md §2); this check keeps an
update from ever being offered to hardware it was not built for, and its result goes to the audit
register. Reading the repository and the inventory is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TargetInfo:
    """One published target as the offer and the register need it."""

    name: str  # the TUF target name, <ECU>/<version>/<file name>
    ecu: str
    version: str
    sha256: str
    length_bytes: int
    hardware_ids: tuple[str, ...]


def targets_from_listing(listing: Iterable[Mapping[str, Any]]) -> list[TargetInfo]:
    """The targets of `OtaRepository.list_targets()`; entries without ECU or version are left out."""
    out = []
    for t in listing:
        ecu, version = t.get("ecu"), t.get("version")
        if isinstance(ecu, str) and isinstance(version, str) and ecu and version:
            hardware = t.get("hardware_ids") or ()
            out.append(
                TargetInfo(
                    str(t["target"]), ecu, version, str(t.get("sha256") or ""),
                    int(t.get("length_bytes") or 0), tuple(str(h) for h in hardware),
                )
            )  # fmt: skip
    return out


def find_target(targets: Iterable[TargetInfo], ecu: str, version: str) -> TargetInfo | None:
    """The target that installs `version` on `ecu` (the first by name when several do), or None."""
    found = sorted((t for t in targets if t.ecu == ecu and t.version == version), key=lambda t: t.name)
    return found[0] if found else None


@dataclass(frozen=True)
class Compatibility:
    compatible: bool
    hardware_id: str | None  # the ECU's hardware id as the vehicle reported it (None: ECU not reported)
    detail: str  # what was checked and what came out, in words (for the register)


def check_compatibility(target: TargetInfo, inventory: Mapping[str, tuple[str, str]]) -> Compatibility:
    """Whether the vehicle whose inventory is `inventory` (ECU -> (version, hardware id), as it last
    reported it) may be offered `target`."""
    entry = inventory.get(target.ecu)
    allowed = ", ".join(target.hardware_ids) or "none"
    if entry is None:
        return Compatibility(False, None, f"the vehicle reports no ECU {target.ecu}")
    version, hardware_id = entry
    if not hardware_id:
        return Compatibility(
            False, "", f"ECU {target.ecu} reports no hardware id (target built for {allowed})"
        )
    if hardware_id not in target.hardware_ids:
        return Compatibility(
            False,
            hardware_id,
            f"ECU {target.ecu} hardware id {hardware_id} is not among the target's ({allowed})",
        )
    return Compatibility(
        True,
        hardware_id,
        f"ECU {target.ecu} (running {version}) hardware id {hardware_id} is among the target's ({allowed})",
    )
