"""Who the simulated fleet is: its registry (models, fleets, service centres, owners, vehicles) and
the ECU software each vehicle runs, drawn from the scenario's seed.

Owns: a registry a real operator would have for the run: fleets of different kinds, owners in
several time zones with their consents and quiet hours, and service centres placed on the road
network with different skills and capacities. Each vehicle's home centre is the one nearest its
home (a road node where it is kept) that can work on its powertrain (engine for combustion, high
voltage for electric). The result is pure
data (`registry.records`); `fleet.pipeline_run` imports it, the ground truth lists it, and each
vehicle reports its software in its check-in (`checkin_messages`), as a real agent does.
Deterministic: the same scenario and network give the same registry at any point of the run, and
it draws from its own random stream, so it does not change the traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from contract.software import EcuSoftware
from registry.records import Fleet, Owner, Record, ServiceCentre, Skill, Vehicle, VehicleModel
from simulators.engine import FleetSimulation
from simulators.models import MODELS, powertrain_ecu

SIM_MAKE = "Simulated"
AGENT_VERSION = "simulator"
# Fleet kinds: (id suffix, name, operator, share of the vehicles). Private cars have an owner each;
# an operator's vehicles share the operator's fleet desk as owner.
FLEET_KINDS = (
    ("private", "Private cars", "", 0.5),
    ("rental", "Rental fleet", "Simulated Rentals", 0.3),
    ("delivery", "Delivery vans", "Simulated Logistics", 0.2),
)
OWNER_ZONES = ("America/New_York", "Europe/London", "Europe/Helsinki", "Asia/Tokyo")  # besides the city's
QUIET_HOURS = (None, "22:00-07:00", "21:30-06:30", "23:00-08:00")
OPENING_HOURS = ("mon-fri 07:30-18:00; sat 09:00-13:00", "mon-fri 08:00-17:00", "mon-sat 08:00-20:00")
# Centre profiles, each a set of skills, used in turn: a general garage, a full-service centre and an
# EV centre (each the home of some vehicles), then a tyre shop (home of none: visits only).
CENTRE_SKILLS = (
    (Skill.ENGINE, Skill.BRAKES, Skill.TYRES, Skill.ELECTRICAL, Skill.DIAGNOSTICS),
    (Skill.ENGINE, Skill.HIGH_VOLTAGE, Skill.ELECTRICAL, Skill.BRAKES, Skill.TYRES, Skill.BODY),
    (Skill.HIGH_VOLTAGE, Skill.ELECTRICAL, Skill.TYRES, Skill.BRAKES, Skill.DIAGNOSTICS),
    (Skill.TYRES, Skill.BRAKES),
)


@dataclass(frozen=True)
class SimulatedRegistry:
    """The registry rows of one run, and each vehicle's home centre by vehicle index."""

    fleets: tuple[Fleet, ...]
    models: tuple[VehicleModel, ...]
    service_centres: tuple[ServiceCentre, ...]
    owners: tuple[Owner, ...]
    vehicles: tuple[Vehicle, ...]

    @property
    def records(self) -> tuple[Record, ...]:
        """Every row, in import order."""
        return (*self.fleets, *self.models, *self.service_centres, *self.owners, *self.vehicles)


def model_id(index: int) -> str:
    return "sim-" + "".join(c if c.isalnum() else "-" for c in MODELS[index].name.lower()).strip("-")


def city_time_zone(utc_offset_h: float) -> str:
    """An IANA zone for the scenario's fixed UTC offset (`Etc/GMT-1` is UTC+1: POSIX signs)."""
    hours = int(round(utc_offset_h))
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"


def build_registry(sim: FleetSimulation) -> SimulatedRegistry:
    sc = sim.scenario
    rng = np.random.default_rng([sc.seed, 0x5E6])
    prefix = f"sim{sc.seed % 10_000:04d}"
    n = sim.n_vehicles
    zone = city_time_zone(sc.utc_offset_h)

    models = tuple(_model(i) for i in sorted(set(sim.params.model_index.tolist())))
    fleets = tuple(
        Fleet(fleet_id=f"{prefix}-{kind}", name=f"{name} ({sc.name})", operator=operator)
        for kind, name, operator, _ in FLEET_KINDS
    )
    fleet_of = rng.choice(len(FLEET_KINDS), n, p=[share for *_, share in FLEET_KINDS])

    centres, centre_xy = _centres(rng, sim, prefix, zone)
    home = rng.integers(0, sim.network.n_nodes, n)  # where each vehicle is kept overnight
    home_x, home_y = sim.network.node_x_m[home], sim.network.node_y_m[home]
    centre_of = _nearest_capable(home_x, home_y, centre_xy, [c.skills for c in centres], sim.params.is_ev)

    owner_zone = np.where(rng.random(n) < 0.7, zone, rng.choice(OWNER_ZONES, n))
    owners: list[Owner] = []
    owner_of: list[str] = []
    for v in range(n):
        kind = FLEET_KINDS[int(fleet_of[v])][0]
        if kind != "private":
            owner_of.append(f"{prefix}-desk-{kind}")
            continue
        owner_of.append(f"{prefix}-own-{v:05d}")
        owners.append(_private_owner(rng, owner_of[-1], v, str(owner_zone[v])))
    for kind, _, operator, _ in FLEET_KINDS[1:]:
        owners.append(
            Owner(
                owner_id=f"{prefix}-desk-{kind}",
                name=f"{operator} fleet desk",
                email=f"fleet-desk-{kind}@example.com",
                consent_email=True,
                consent_in_car=True,
                time_zone=zone,
                quiet_hours="20:00-06:00",
            )
        )
    vehicles = tuple(
        Vehicle(
            vehicle_id=vid,
            vin=_vin(sc.seed, v),
            model_id=model_id(int(sim.params.model_index[v])),
            fleet_id=fleets[int(fleet_of[v])].fleet_id,
            service_centre_id=centres[int(centre_of[v])].service_centre_id,
            owner_id=owner_of[v],
        )
        for v, vid in enumerate(sim.vehicle_ids)
    )
    return SimulatedRegistry(fleets, models, tuple(centres), tuple(owners), vehicles)


def _model(index: int) -> VehicleModel:
    m = MODELS[index]
    return VehicleModel(
        model_id=model_id(index),
        make=SIM_MAKE,
        model=m.name,
        powertrain="bev" if m.is_ev else "ice",
        cylinders=m.cylinders,
        tyre_placard_kpa=m.tyre_placard_kpa,
        tank_l=m.tank_l or None,
        battery_kwh=m.battery_kwh or None,
        params={"idle_rpm": m.idle_rpm} if not m.is_ev else {"kwh_per_km": m.kwh_per_km},
    )


def _centres(
    rng: np.random.Generator, sim: FleetSimulation, prefix: str, zone: str
) -> tuple[list[ServiceCentre], np.ndarray]:
    """One centre per ~25 vehicles (3 to 12), on road nodes spread over the city (farthest-point
    sampling from a random node), with the profiles of CENTRE_SKILLS in turn."""
    net = sim.network
    k = int(np.clip(round(sim.n_vehicles / 25), 3, 12))
    nodes_xy = np.column_stack([net.node_x_m, net.node_y_m])
    chosen = [int(rng.integers(net.n_nodes))]
    gap = np.hypot(*(nodes_xy - nodes_xy[chosen[0]]).T)
    while len(chosen) < min(k, net.n_nodes):
        chosen.append(int(np.argmax(gap)))
        gap = np.minimum(gap, np.hypot(*(nodes_xy - nodes_xy[chosen[-1]]).T))
    lat, lon = net.to_latlon(nodes_xy[chosen, 0], nodes_xy[chosen, 1])
    capacity = rng.integers(6, 41, len(chosen))
    centres = [
        ServiceCentre(
            service_centre_id=f"{prefix}-sc-{i + 1:02d}",
            name=f"Service centre {i + 1} ({sim.scenario.name})",
            lat=round(float(lat[i]), 6),
            lon=round(float(lon[i]), 6),
            skills=list(CENTRE_SKILLS[i % len(CENTRE_SKILLS)]),
            capacity_per_day=int(capacity[i]),
            opening_hours=OPENING_HOURS[i % len(OPENING_HOURS)],
            time_zone=zone,
        )
        for i in range(len(chosen))
    ]
    return centres, nodes_xy[chosen]


def _nearest_capable(
    x_m: np.ndarray, y_m: np.ndarray, centre_xy: np.ndarray, skills: list[list[Skill]], is_ev: np.ndarray
) -> np.ndarray:
    """Per vehicle, the index of the nearest centre that can work on its powertrain."""
    distance = np.hypot(x_m[:, None] - centre_xy[None, :, 0], y_m[:, None] - centre_xy[None, :, 1])
    hv = np.array([Skill.HIGH_VOLTAGE in s for s in skills])
    engine = np.array([Skill.ENGINE in s for s in skills])
    capable = np.where(is_ev[:, None], hv[None, :], engine[None, :])
    return np.argmin(np.where(capable, distance, np.inf), axis=1)


def _private_owner(rng: np.random.Generator, owner_id: str, v: int, zone: str) -> Owner:
    has_phone = bool(rng.random() < 0.8)
    return Owner(
        owner_id=owner_id,
        name=f"Simulated owner {v:05d}",
        email=f"owner-{v:05d}@example.com",
        phone=f"+155501{v:05d}" if has_phone else None,
        consent_email=bool(rng.random() < 0.85),
        consent_sms=has_phone and bool(rng.random() < 0.5),
        consent_in_car=bool(rng.random() < 0.9),
        time_zone=zone,
        quiet_hours=QUIET_HOURS[int(rng.integers(len(QUIET_HOURS)))],
    )


def _vin(seed: int, v: int) -> str:
    """A 17-character ISO 3779 VIN, unique per (seed, vehicle), with `FPS` as its maker code (a
    VIN never holds I, O or Q, so not `SIM`)."""
    return f"FPS{seed % 10_000:04d}{v:010d}"


def checkin_messages(sim: FleetSimulation, vehicles: np.ndarray) -> list[tuple[int, bytes]]:
    """The check-ins (contract.status) that `vehicles` send now: online, with the ECU software they
    run (`sim.software`: it changes when an OTA install commits)."""
    out = []
    for v in vehicles.tolist():
        own = powertrain_ecu(bool(sim.params.is_ev[v]))
        hardware = {own: f"{own.lower()}-{model_id(int(sim.params.model_index[v]))}"}
        software = sorted(
            EcuSoftware(ecu, version, hardware.get(ecu, f"{ecu.lower()}-sim"))
            for ecu, version in sim.software.inventory(v).items()
        )
        doc = {
            "state": "online",
            "vehicle_id": sim.vehicle_ids[v],
            "agent_version": AGENT_VERSION,
            "software": [e.as_json() for e in software],
        }
        out.append((v, json.dumps(doc, separators=(",", ":")).encode()))
    return out
