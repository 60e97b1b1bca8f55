"""The remedy catalogue: which remedy a fault gets, by fault type, vehicle model, powertrain and
the software the vehicle runs.

Owns: the catalogue's records (`OtaPatch`, `ShopVisit`, `CatalogueEntry`), reading it from TOML
(the shipped `catalogue.toml`, or an operator's file), and matching. A fault matches an entry when
every field the entry sets fits: `fault` is a glob over the alarm's fault (`sensor_stuck:*`,
`dtc:P0*`), and `model_id`, `powertrain`, `ecu` and `software_version` must equal the vehicle's
when set. The most specific entry wins (the most fields set), then the earliest in the file. So a
model's own entry overrides the general one, and a known software fault overrides a generic DTC
diagnosis. An OTA entry without `to_version` takes the cure from the fleet firmware test
(`software_issues.cure_version`). Pure: no I/O beyond reading the file given.
"""

from __future__ import annotations

import enum
import fnmatch
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

SKILLS = ("tyres", "brakes", "electrical", "engine", "high_voltage", "diagnostics", "body")


class Urgency(enum.StrEnum):
    """How soon a shop visit must happen; the deadline follows from the alarm's severity unless the
    entry fixes it."""

    CRITICAL = "critical"  # within 24 hours
    HIGH = "high"  # within 3 days
    NORMAL = "normal"  # within 14 days
    LOW = "low"  # within 30 days


DEADLINE_H = {Urgency.CRITICAL: 24.0, Urgency.HIGH: 72.0, Urgency.NORMAL: 336.0, Urgency.LOW: 720.0}
URGENCY_OF_SEVERITY = {
    "CRITICAL": Urgency.CRITICAL,
    "MAJOR": Urgency.HIGH,
    "MINOR": Urgency.NORMAL,
    "WARNING": Urgency.LOW,
    "INDETERMINATE": Urgency.LOW,
}


@dataclass(frozen=True)
class OtaPatch:
    """Install `to_version` on `ecu` (None: the fleet firmware test's cure for the running version)."""

    ecu: str
    to_version: str | None = None
    duration_min: float = 20.0  # the install, while the vehicle is parked

    kind = "ota_patch"


@dataclass(frozen=True)
class ShopVisit:
    """A workshop visit: the skill it needs, its urgency (None: from the alarm's severity), how long
    it takes and the parts to have ready."""

    skill: str
    duration_min: float
    urgency: Urgency | None = None
    parts: tuple[str, ...] = ()

    kind = "shop_visit"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    fault: str  # glob over the alarm's fault
    remedy: OtaPatch | ShopVisit
    model_id: str | None = None
    powertrain: str | None = None
    ecu: str | None = None  # set with software_version: the vehicle runs that version on this ECU
    software_version: str | None = None
    why: str = ""  # for the decision record

    @property
    def specificity(self) -> int:
        exact_fault = not any(c in self.fault for c in "*?[")
        fields = (self.model_id, self.powertrain, self.ecu, self.software_version)
        return 2 * sum(f is not None for f in fields) + int(exact_fault)


@dataclass(frozen=True)
class VehicleFacts:
    """What matching needs to know about the vehicle."""

    model_id: str | None = None
    powertrain: str | None = None
    software: Mapping[str, str] = field(default_factory=dict)  # ECU -> running version


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[CatalogueEntry, ...]

    def match(self, fault: str, vehicle: VehicleFacts) -> CatalogueEntry | None:
        """The most specific entry that fits, or None."""
        best: CatalogueEntry | None = None
        for entry in self.entries:
            if _fits(entry, fault, vehicle) and (best is None or entry.specificity > best.specificity):
                best = entry
        return best


def _fits(entry: CatalogueEntry, fault: str, vehicle: VehicleFacts) -> bool:
    if not fnmatch.fnmatchcase(fault, entry.fault):
        return False
    if entry.model_id is not None and entry.model_id != vehicle.model_id:
        return False
    if entry.powertrain is not None and entry.powertrain != vehicle.powertrain:
        return False
    if entry.ecu is not None:
        running = vehicle.software.get(entry.ecu)
        if running is None or (entry.software_version is not None and running != entry.software_version):
            return False
    return True


def parse_catalogue(data: Mapping[str, Any]) -> Catalogue:
    """The catalogue from a parsed TOML document (`[[remedy]]` tables). Raises ValueError naming
    the entry and the field it cannot use."""
    raw = data.get("remedy")
    if not isinstance(raw, list) or not raw:
        raise ValueError("a catalogue needs at least one [[remedy]] table")
    entries = [_entry(i, item) for i, item in enumerate(raw)]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("catalogue entry names must be unique")
    return Catalogue(tuple(entries))


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue in `path`, or the shipped one. Raises OSError or ValueError."""
    if path is None:
        text = resources.files("remedies").joinpath("catalogue.toml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    try:
        return parse_catalogue(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path or 'the shipped catalogue'}: {exc}") from None


_KNOWN = {
    "name", "fault", "kind", "model_id", "powertrain", "ecu", "software_version", "why",
    "to_version", "duration_min", "skill", "urgency", "parts",
}  # fmt: skip


def _entry(i: int, item: Any) -> CatalogueEntry:
    if not isinstance(item, dict):
        raise ValueError(f"remedy #{i + 1} is not a table")
    where = f"remedy {item.get('name', f'#{i + 1}')!r}"
    unknown = set(item) - _KNOWN
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    for key in ("name", "fault", "kind"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise ValueError(f"{where}: {key} is required (text)")
    duration = item.get("duration_min")
    if duration is not None and (not isinstance(duration, int | float) or not 0 < duration <= 10_080):
        raise ValueError(f"{where}: duration_min must be minutes between 0 and a week")
    if "software_version" in item and not isinstance(item.get("ecu"), str):
        raise ValueError(f"{where}: software_version needs the ecu that runs it")
    remedy: OtaPatch | ShopVisit
    if item["kind"] == "ota_patch":
        if not isinstance(item.get("ecu"), str):
            raise ValueError(f"{where}: an ota_patch names its ecu")
        remedy = OtaPatch(item["ecu"], _text(item, "to_version", where), float(duration or 20.0))
    elif item["kind"] == "shop_visit":
        skill = item.get("skill")
        if skill not in SKILLS:
            raise ValueError(f"{where}: skill must be one of {', '.join(SKILLS)}")
        urgency = item.get("urgency")
        try:
            parsed = None if urgency is None else Urgency(urgency)
        except ValueError:
            raise ValueError(
                f"{where}: urgency must be one of {', '.join(u.value for u in Urgency)}"
            ) from None
        parts = item.get("parts", [])
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise ValueError(f"{where}: parts is a list of text")
        if duration is None:
            raise ValueError(f"{where}: a shop_visit needs duration_min")
        remedy = ShopVisit(skill, float(duration), parsed, tuple(parts))
    else:
        raise ValueError(f"{where}: kind must be ota_patch or shop_visit")
    return CatalogueEntry(
        name=item["name"],
        fault=item["fault"],
        remedy=remedy,
        model_id=_text(item, "model_id", where),
        powertrain=_text(item, "powertrain", where),
        ecu=_text(item, "ecu", where) if "software_version" in item else None,
        software_version=_text(item, "software_version", where),
        why=_text(item, "why", where) or "",
    )


def _text(item: Mapping[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be text")
    return value


def entries_for(catalogue: Catalogue, faults: Sequence[str]) -> dict[str, list[str]]:
    """Per fault, the names of the entries whose glob matches it (for `fleet remedies catalogue`)."""
    return {f: [e.name for e in catalogue.entries if fnmatch.fnmatchcase(f, e.fault)] for f in faults}
