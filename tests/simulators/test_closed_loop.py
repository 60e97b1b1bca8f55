"""The closed loop inside the simulation: an offer that commits patches the vehicle (its check-in
reports the new version, its firmware bug's code stops), a rolled-back one keeps the bug, and a
booked visit repairs a hardware fault and clears its code unless the owner does not show up."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from contract import topics
from contract.status import parse_status_message
from contract.update import parse_update_report
from ota.offers import new_offer
from simulators.closed_loop import ClosedLoop
from simulators.engine import FleetSimulation
from simulators.feeder import FeedConfig, feed
from simulators.ground_truth import ground_truth
from simulators.roads import city_grid
from simulators.scenario import FaultSpec, OtaSpec, VisitSpec
from tests.simulators.helpers import START_UNIX_S, busy_scenario

OFFER_S = 100.0
QUICK = OtaSpec(
    download_s=(10.0, 40.0),
    install_s=(20.0, 60.0),
    health_check_s=10.0,
    min_parked_s=10.0,
    download_failure_rate=0.0,
    install_failure_rate=0.0,
    rollback_rate=0.0,
)
BUG = FaultSpec("firmware_bug", 8, onset_s=0.0, params={"rate_per_h": 1200.0, "clear_cycles": 1})


class Recorder:
    def __init__(self, sim: FleetSimulation) -> None:
        self.sim = sim
        self.messages: dict[str, list[tuple[float, str, bytes]]] = {}

    def publish(self, batch: object) -> None:  # the telemetry publisher: not under test here
        pass

    def publish_message(self, vehicle_id: str, kind: str, payload: bytes) -> None:
        self.messages.setdefault(kind, []).append((self.sim.t_s, vehicle_id, payload))


def closed_run(ota: OtaSpec, duration_s: float = 1800.0, faults: tuple[FaultSpec, ...] = (BUG,), **sc):  # noqa: ANN003, ANN201
    """Feed a fleet whose buggy vehicles are offered the cure at OFFER_S."""
    scenario = busy_scenario(
        vehicles=60, duration_s=duration_s, faults=faults, ota=ota, mean_parking_s=200.0, **sc
    )
    sim = FleetSimulation(scenario, city_grid(blocks=6), START_UNIX_S)
    loop = ClosedLoop(sim)
    rec = Recorder(sim)
    buggy = np.flatnonzero(sim.faults.kind >= 0).tolist()
    offers = {}

    def on_step(s: FleetSimulation, out: object) -> None:
        if s.t_s == OFFER_S:
            for v in buggy:
                offer = new_offer(
                    ecu="VCU" if s.params.is_ev[v] else "ECM",
                    target="ECM/4.2.1/ecm.bin",
                    version="4.2.1",
                    repository_url="https://ota.example.com/",
                    now_us=int(s.unix_s_at(s.t_s) * 1e6),
                )
                offers[v] = offer
                assert loop.receive_offer(s.vehicle_ids[v], offer)

    feed(
        sim,
        rec,  # type: ignore[arg-type]
        FeedConfig(duration_s, 10.0, speedup=math.inf),
        publish_message=rec.publish_message,
        on_step=on_step,
        closed_loop=loop,
    )
    return sim, loop, rec, offers


def _detections_after(sim: FleetSimulation, v: int, t_s: float) -> list[float]:
    """Times a code was newly stored for vehicle v after t_s."""
    return [t for t, vv, codes in sim.dtc_history if vv == v and codes and t > t_s]


def test_a_committed_patch_stops_the_bug_and_the_vehicle_checks_in_with_it() -> None:
    sim, loop, rec, offers = closed_run(QUICK)
    truth = ground_truth(sim, loop.truth())
    finals = {o["offer_id"]: o for o in truth["ota"]["offers"]}
    committed = [
        v for v, offer in offers.items() if finals.get(offer.offer_id, {}).get("state") == "committed"
    ]
    assert len(committed) >= 6, finals  # parked long enough in 30 minutes
    patched = {f["vehicle_id"]: f["patched_at_s"] for f in truth["faults"]}
    for v in committed:
        vid = sim.vehicle_ids[v]
        assert str(sim.firmware_versions()[v]) == "4.2.1"
        at = patched[vid]
        assert at is not None and at > OFFER_S
        assert not _detections_after(sim, v, at)  # the bug's code never comes back
        checkins = [parse_status_message(p) for t, i, p in rec.messages[topics.STATUS] if i == vid]
        versions = [e.version for c in checkins for e in c.software if e.ecu in ("ECM", "VCU")]
        assert versions[0] == "4.2.0" and versions[-1] == "4.2.1"
        states = [parse_update_report(p).state for _, i, p in rec.messages[topics.UPDATE] if i == vid]
        assert states == ["downloading", "verified", "installed", "committed"]
    healed = [v for v in committed if not sim.dtcs.stored[v]]
    assert healed  # after a clean drive cycle on the new version the code clears
    for v in set(offers) - set(committed):  # not installed (yet): still buggy
        assert str(sim.firmware_versions()[v]) == "4.2.0"
    assert {c["source"] for c in truth["software_changes"]} == {
        f"ota:{offers[v].offer_id}" for v in committed
    }


def test_a_rolled_back_install_keeps_the_old_version_and_the_bug() -> None:
    sim, loop, rec, offers = closed_run(dataclasses.replace(QUICK, rollback_rate=1.0))
    finals = [parse_update_report(p) for _, _, p in rec.messages[topics.UPDATE]]
    rolled = [r for r in finals if r.state == "rolled_back"]
    assert rolled and all(r.after.version == "4.2.0" and r.reason == "health_check_failed" for r in rolled)
    assert not sim.software.changes and loop.stats.committed == 0
    index = {vid: i for i, vid in enumerate(sim.vehicle_ids)}
    for v in {index[r.vehicle_id] for r in rolled}:  # the bug goes on: its code stays stored
        assert sim.dtcs.stored[v] and str(sim.firmware_versions()[v]) == "4.2.0"
    assert all(f["patched_at_s"] is None for f in ground_truth(sim)["faults"])


REPAIRABLE = (
    FaultSpec("misfire", 4, onset_s=0.0, params={"rate_per_h": 3600.0}),
    FaultSpec("brake_pad_wear", 3, onset_s=0.0, params={"start_mm": 1.9}),
    FaultSpec("firmware_bug", 3, onset_s=0.0, params={"rate_per_h": 1200.0}),
)
VISIT_S = 400.0


@pytest.mark.parametrize("no_show", [0.0, 1.0])
def test_a_visit_repairs_hardware_faults_and_clears_codes_unless_the_owner_stays_away(no_show: float) -> None:
    sc = busy_scenario(vehicles=60, duration_s=900.0, faults=REPAIRABLE, visits=VisitSpec(no_show))
    sim = FleetSimulation(sc, city_grid(blocks=6), START_UNIX_S)
    loop = ClosedLoop(sim)
    faulty = np.flatnonzero(sim.faults.kind >= 0).tolist()
    for v in faulty:
        loop.book_visit(sim.vehicle_ids[v], sim.unix_s_at(VISIT_S))
    with pytest.raises(KeyError):
        loop.book_visit("SIM-9999-99999", sim.unix_s_at(VISIT_S))
    pads = []
    for _ in range(900):
        out = sim.step()
        loop.step(out, np.zeros(sim.n_vehicles, dtype=bool))
        pads.append(sim.powertrain.pad_mm[:2].min(axis=0))
    truth = ground_truth(sim, loop.truth())
    assert len(truth["visits"]) == len(faulty) and loop.stats.visits_booked == len(faulty)
    kinds = {f["vehicle_id"]: f for f in truth["faults"]}
    for visit in truth["visits"]:
        vid, v = visit["vehicle_id"], sim.vehicle_ids.index(visit["vehicle_id"])
        fault = kinds[vid]
        assert visit["t_s"] == VISIT_S and visit["showed_up"] is (no_show == 0.0)
        timeline = [(t, c) for t, vv, c in sim.dtc_history if vv == v]
        stored_before = [c for t, c in timeline if t < VISIT_S]
        assert stored_before and stored_before[-1]  # every fault had its code stored by then
        if not visit["showed_up"]:
            assert visit["repaired"] is None and fault["repaired_by"] is None
            assert timeline[-1][1]  # still stored at the end
            continue
        assert (VISIT_S, ()) in timeline  # the scan tool cleared it at the visit
        assert visit["codes_cleared"] == list(stored_before[-1])
        if fault["kind"] == "firmware_bug":  # software: a visit does not cure it, the code returns
            assert visit["repaired"] is None and _detections_after(sim, v, VISIT_S)
            continue
        assert visit["repaired"] == fault["kind"] and fault["repaired_by"] == "visit"
        assert fault["repaired_at_s"] == VISIT_S
        assert not _detections_after(sim, v, VISIT_S)  # the repaired fault stops
        if fault["kind"] == "brake_pad_wear":
            assert pads[int(VISIT_S)][v] > 10.0  # new pads


def test_offers_to_offline_vehicles_wait_until_they_are_back() -> None:
    sc = busy_scenario(vehicles=10, duration_s=60.0, ota=QUICK)
    sim = FleetSimulation(sc, city_grid(blocks=6), START_UNIX_S)
    loop = ClosedLoop(sim)
    offer = new_offer(
        ecu="BCM",
        target="BCM/1.8.0/bcm.bin",
        version="1.8.0",
        repository_url="https://ota.example.com/",
        now_us=1,
    )
    assert loop.receive_offer(sim.vehicle_ids[3], offer)
    assert not loop.receive_offer("SIM-9999-99999", offer) and loop.stats.offers_unknown_vehicle == 1
    offline = np.zeros(sim.n_vehicles, dtype=bool)
    offline[3] = True
    assert loop.step(sim.step(), offline) == [] and loop.truth()["held_for_offline_vehicles"] == 1
    (sent,) = loop.step(sim.step(), np.zeros(sim.n_vehicles, dtype=bool))
    assert sent[0] == 3 and sent[1] == topics.UPDATE
    assert parse_update_report(sent[2]).state == "downloading" and loop.stats.offers_received == 1


def test_owners_keep_their_time_zones() -> None:
    """Simulated owners live in several real IANA zones (an offer's maintenance window and the
    notification quiet hours are read in them)."""
    from zoneinfo import ZoneInfo

    from simulators.fleet_registry import build_registry

    sim = FleetSimulation(busy_scenario(vehicles=200), city_grid(blocks=6), START_UNIX_S)
    zones = {o.time_zone for o in build_registry(sim).owners}
    assert len(zones) >= 3
    for zone in zones:
        ZoneInfo(zone)
