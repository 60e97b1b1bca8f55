"""Scenario configuration: what to simulate, as frozen dataclasses, and the TOML loader.

Owns: the names and defaults of every knob (units in the names) and reading a scenario file.
Leaves to others: drawing the random fleet, faults, hazards and outages from it (`simulators.models`,
`simulators.faults`, `simulators.hazards`, `simulators.connectivity`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAULT_KINDS = (
    "battery_12v_failing",
    "charging_fault",
    "thermostat_stuck",
    "tyre_slow_leak",
    "brake_pad_wear",
    "sensor_stuck",
    "sensor_dropout",
    "misfire",
    "firmware_bug",
)
HAZARD_KINDS = ("pothole", "slippery", "junction")


@dataclass(frozen=True)
class FaultSpec:
    """`vehicles` vehicles get fault `kind`, starting at `onset_s` seconds into the run (or
    uniformly within `onset_range_s`), until the workshop repairs it at `repaired_at_s` (None: never;
    the repair clears the fault's stored code). `params` are kind-specific, including when codes
    clear on their own (see docs in `simulators.faults`)."""

    kind: str
    vehicles: int = 1
    onset_s: float | None = None
    onset_range_s: tuple[float, float] | None = None
    repaired_at_s: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HazardSpec:
    """`count` hazards of `kind`, active from `active_from_s` until `repaired_at_s` (None: never repaired)."""

    kind: str
    count: int = 1
    active_from_s: float = 0.0
    repaired_at_s: float | None = None
    severity: float = 1.0


@dataclass(frozen=True)
class NetworkSpec:
    """Connectivity realism: outages (tunnels, garages), duplicated deliveries and clock skew."""

    outage_vehicle_share: float = 0.05
    outage_duration_s: tuple[float, float] = (60.0, 600.0)
    duplicate_batch_probability: float = 0.01
    clock_skew_sd_s: float = 0.5
    large_clock_skew_share: float = 0.01
    large_clock_skew_s: float = 120.0


@dataclass(frozen=True)
class CitySpec:
    """The generated city: a grid of `blocks` x `blocks` blocks around the origin. An OpenStreetMap
    file (`fleet simulate --osm FILE`) replaces it."""

    origin_lat_deg: float = 48.137
    origin_lon_deg: float = 11.575
    blocks: int = 16
    block_m: float = 200.0


@dataclass(frozen=True)
class OtaSpec:
    """How the simulated vehicles answer OTA update offers (`simulators.ota_responder`;
    docs/simulator-ota.md). Durations are drawn uniformly within their (low, high) range per offer;
    each failure happens with its probability per offer. `min_parked_s`: an install starts only
    after this long parked (the agent's `Thresholds.min_parked_s`); `give_up_after_s`: an offer
    still not installed this long after it arrived ends `failed` with reason `expired`, so every
    offer ends."""

    download_s: tuple[float, float] = (60.0, 600.0)
    install_s: tuple[float, float] = (120.0, 600.0)
    health_check_s: float = 60.0
    download_failure_rate: float = 0.02  # the download breaks off or fails verification: `failed`
    install_failure_rate: float = 0.02  # writing the inactive slot fails before the switch: `failed`
    rollback_rate: float = 0.01  # the new slot fails its health check after the switch: `rolled_back`
    consent_probability: float = 0.9  # an owner asked for consent gives it (else declines: the offer waits)
    consent_delay_s: tuple[float, float] = (60.0, 3600.0)  # how long the owner takes to answer
    min_parked_s: float = 60.0
    give_up_after_s: float = 7 * 86_400.0

    def __post_init__(self) -> None:
        for name in ("download_failure_rate", "install_failure_rate", "rollback_rate", "consent_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ota.{name} must be a probability (0 to 1)")
        for name in ("download_s", "install_s", "consent_delay_s"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high:
                raise ValueError(f"ota.{name} must be [low, high] with 0 <= low <= high")
        if self.health_check_s < 0 or self.min_parked_s < 0 or self.give_up_after_s <= 0:
            raise ValueError("ota durations must not be negative (give_up_after_s above 0)")


@dataclass(frozen=True)
class VisitSpec:
    """Booked shop visits: the owner misses one with `no_show_probability` (then nothing is repaired)."""

    no_show_probability: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.no_show_probability <= 1.0:
            raise ValueError("visits.no_show_probability must be a probability (0 to 1)")


@dataclass(frozen=True)
class Scenario:
    name: str = "default"
    seed: int = 0
    vehicles: int = 500
    duration_s: float = 600.0
    speedup: float = 1.0
    start_unix_s: float | None = None  # None: the wall clock at launch (the shell decides)
    # An accelerated run (speedup > 1) without start_unix_s starts at this local hour, on the latest
    # day that keeps every stamp in the past, so its traffic (and what its faults can show) does not
    # depend on when it is launched; None: as late as possible.
    start_local_hour: float | None = 9.0
    utc_offset_h: float = 1.0
    ambient_c: float = 12.0
    ev_share: float = 0.3
    sample_interval_s: float = 1.0
    batch_interval_s: float = 10.0
    parked_sample_interval_s: float = 30.0
    initially_driving_share: float = 0.7
    mean_parking_s: float = 900.0
    trip_length_m: tuple[float, float] = (1_500.0, 13_500.0)
    city: CitySpec = field(default_factory=CitySpec)
    faults: tuple[FaultSpec, ...] = ()
    hazards: tuple[HazardSpec, ...] = ()
    network: NetworkSpec = field(default_factory=NetworkSpec)
    ota: OtaSpec = field(default_factory=OtaSpec)
    visits: VisitSpec = field(default_factory=VisitSpec)
    # A run through ingest closes the loop: the backend (analysis, remedies, OTA campaigns, reports,
    # owner notifications) runs every this many simulated seconds on the run's clock; 0: never.
    backend_every_s: float = 600.0

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with the given top-level fields replaced; None values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def parse_scenario(data: Mapping[str, Any]) -> Scenario:
    """Build a Scenario from parsed TOML. Raises ValueError for unknown keys, fault or hazard kinds,
    and out-of-range `[ota]` or `[visits]` values."""
    data = dict(data)
    try:
        city = CitySpec(**data.pop("city", {}))
        network = _network(data.pop("network", {}))
        ota = _ota(data.pop("ota", {}))
        visits = VisitSpec(**data.pop("visits", {}))
        faults = tuple(_fault(f) for f in data.pop("faults", []))
        hazards = tuple(HazardSpec(**h) for h in data.pop("hazards", []))
        if "trip_length_m" in data:
            data["trip_length_m"] = tuple(data["trip_length_m"])
        scenario = Scenario(
            **data, city=city, network=network, faults=faults, hazards=hazards, ota=ota, visits=visits
        )
    except TypeError as exc:
        raise ValueError(f"bad scenario: {exc}") from None
    if not scenario.backend_every_s >= 0:
        raise ValueError("backend_every_s must be 0 (no backend loop) or more")
    for f in scenario.faults:
        if f.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {f.kind!r}; known: {', '.join(FAULT_KINDS)}")
    for h in scenario.hazards:
        if h.kind not in HAZARD_KINDS:
            raise ValueError(f"unknown hazard kind {h.kind!r}; known: {', '.join(HAZARD_KINDS)}")
    return scenario


def load_scenario(path: Path) -> Scenario:
    """Read a TOML scenario file. Raises OSError, tomllib.TOMLDecodeError or ValueError."""
    with path.open("rb") as fh:
        return parse_scenario(tomllib.load(fh))


def builtin_scenario_path(name: str) -> Path:
    """Path of a scenario shipped in simulators/scenarios (name without .toml)."""
    return Path(__file__).with_name("scenarios") / f"{name}.toml"


def _network(raw: Mapping[str, Any]) -> NetworkSpec:
    raw = dict(raw)
    if "outage_duration_s" in raw:
        raw["outage_duration_s"] = tuple(raw["outage_duration_s"])
    return NetworkSpec(**raw)


def _ota(raw: Mapping[str, Any]) -> OtaSpec:
    raw = dict(raw)
    for name in ("download_s", "install_s", "consent_delay_s"):
        if name in raw:
            raw[name] = tuple(raw[name])
    return OtaSpec(**raw)


def _fault(raw: Mapping[str, Any]) -> FaultSpec:
    raw = dict(raw)
    if "onset_range_s" in raw:
        raw["onset_range_s"] = tuple(raw["onset_range_s"])
    return FaultSpec(**raw)
