"""The publishing shell acts out the connectivity plan: backlogs, duplicates and clock skew."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from contract import topics, wire_v1
from contract.batch import TelemetryBatch
from contract.status import parse_status_message
from simulators.engine import FleetSimulation
from simulators.feeder import FeedConfig, feed
from simulators.ground_truth import ground_truth, write_ground_truth
from simulators.roads import city_grid
from simulators.scenario import FaultSpec, NetworkSpec
from tests.simulators.helpers import START_UNIX_S, busy_scenario, schedule_patches


class RecordingPublishers:
    """Stands in for VehiclePublishers: remembers what was published and at which simulated step."""

    def __init__(self, sim: FleetSimulation) -> None:
        self.sim = sim
        self.published: list[tuple[int, TelemetryBatch]] = []

    def publish(self, batch: TelemetryBatch) -> None:
        wire_v1.encode(batch)  # everything published must be a valid frame
        self.published.append((self.sim.step_index, batch))


def _feed(
    network: NetworkSpec, patch_at_s: float | None = None, **overrides
) -> tuple[FleetSimulation, RecordingPublishers, dict, object]:  # noqa: ANN003
    """The run, its batches, its other messages by topic kind (step, vehicle, payload), its stats;
    with `patch_at_s`, the firmware bugs are patched then."""
    sc = busy_scenario(vehicles=40, duration_s=240.0, network=network, **overrides)
    sim = FleetSimulation(sc, city_grid(blocks=6), START_UNIX_S)
    if patch_at_s is not None:
        schedule_patches(sim, patch_at_s)
    pubs = RecordingPublishers(sim)
    sent: dict[str, list[tuple[int, str, bytes]]] = {topics.DTC: [], topics.STATUS: []}
    stats = feed(
        sim,
        pubs,
        FeedConfig(sc.duration_s, 10.0, speedup=math.inf),  # type: ignore[arg-type]
        publish_message=lambda vid, kind, payload: sent[kind].append((sim.step_index, vid, payload)),
    )
    return sim, pubs, sent, stats


def test_offline_vehicles_send_their_backlog_when_back() -> None:
    net = NetworkSpec(
        outage_vehicle_share=0.5,
        outage_duration_s=(40.0, 80.0),
        duplicate_batch_probability=0.0,
        clock_skew_sd_s=0.0,
        large_clock_skew_share=0.0,
    )
    sim, pubs, _, stats = _feed(net)
    conn = sim.connectivity
    assert stats.backlogged_batches > 0
    index = {vid: i for i, vid in enumerate(sim.vehicle_ids)}
    for step, batch in pubs.published:
        v = index[batch.vehicle_id]
        t_published = step * sim.dt_s
        assert not conn.offline(t_published)[v] or step == sim.step_index  # the final flush sends all
    # Every sample instant of every vehicle arrives exactly once, in the end.
    per_vehicle: dict[str, list[int]] = {}
    for _, b in pubs.published:
        per_vehicle.setdefault(b.vehicle_id, []).extend(b.ts_ns.tolist())
    for ts in per_vehicle.values():
        assert len(ts) == len(set(ts)) == 240
        assert ts == sorted(ts)  # the backlog goes out before newer batches


def test_duplicates_repeat_seq_and_content_and_skew_shifts_timestamps() -> None:
    net = NetworkSpec(
        outage_vehicle_share=0.0,
        duplicate_batch_probability=0.2,
        clock_skew_sd_s=2.0,
        large_clock_skew_share=0.0,
    )
    sim, pubs, _, stats = _feed(net)
    keys = [(b.vehicle_id, b.seq) for _, b in pubs.published]
    assert len(keys) - len(set(keys)) == stats.duplicates > 0
    first: dict[tuple[str, int], bytes] = {}
    for _, b in pubs.published:
        frame = wire_v1.encode(b)
        assert first.setdefault((b.vehicle_id, b.seq), frame) == frame
    skew = dict(zip(sim.vehicle_ids, sim.connectivity.clock_skew_ns.tolist(), strict=True))
    start_ns = int(START_UNIX_S * 1e9)
    for _, b in pubs.published:
        true_ts = b.ts_ns - skew[b.vehicle_id]
        assert ((true_ts - start_ns) % 1_000_000_000 == 0).all()


def test_dtc_messages_are_json_on_the_vehicle_clock(tmp_path) -> None:  # noqa: ANN001
    net = NetworkSpec(outage_vehicle_share=0.0, duplicate_batch_probability=0.0, clock_skew_sd_s=1.0)
    faults = (
        FaultSpec("misfire", 3, onset_s=20.0, params={"rate_per_h": 3600.0}),
        FaultSpec("misfire", 1, onset_s=20.0, repaired_at_s=120.0, params={"rate_per_h": 3600.0}),
    )
    sim, _, messages, stats = _feed(net, faults=faults)
    dtcs = messages[topics.DTC]
    assert dtcs and stats.dtc_messages == len(dtcs)
    # One message per change of a vehicle's set, sent in the step it changed, with the whole set.
    sent = [(step, vid, json.loads(payload)["codes"]) for step, vid, payload in dtcs]
    changes = [(round(t / sim.dt_s), sim.vehicle_ids[v], list(codes)) for t, v, codes in sim.dtc_history]
    assert sent == changes
    truth = ground_truth(sim)
    expected = {f["vehicle_id"]: f["params"]["dtc"] for f in truth["faults"]}
    assert {vid: codes for _, vid, codes in sent} == {
        f["vehicle_id"]: [] if f["repaired_at_s"] else [expected[f["vehicle_id"]]] for f in truth["faults"]
    }
    for step, vid, payload in dtcs:
        msg = json.loads(payload)
        assert msg["schema"] == "fleetpulse.dtc.v2" and msg["vehicle_id"] == vid
        assert set(msg["software"]) <= {"ECM", "VCU"}  # the ECU software, never in the agent's version field
        assert msg["codes"] in ([expected[vid]], [])
        skew_ns = sim.connectivity.clock_skew_ns[sim.vehicle_ids.index(vid)]
        assert msg["ts_us"] == (int(START_UNIX_S * 1e9) + step * 10**9 + int(skew_ns)) // 1000
    path = write_ground_truth(sim, tmp_path / "gt.json")
    loaded = json.loads(path.read_text())
    assert loaded["schema"] == "fleetpulse.ground_truth.v1" and len(loaded["vehicles"]) == 40
    assert np.isclose(loaded["clock_skew_s"][vid], skew_ns / 1e9, atol=1e-3)
    assert loaded["dtc_sets"] == truth["dtc_sets"]


def test_vehicles_check_in_with_their_software_at_the_start_and_after_a_patch() -> None:
    """Each vehicle reports its ECU software as a real agent does: in its first check-in, and again
    when the OTA patch changes its powertrain controller's version."""
    net = NetworkSpec(outage_vehicle_share=0.3, duplicate_batch_probability=0.0, clock_skew_sd_s=0.0)
    bug = {"version": "4.2.0", "fixed_version": "4.2.1", "rate_per_h": 60.0}
    faults = (FaultSpec("firmware_bug", 3, onset_s=0.0, params=bug),)
    sim, _, messages, stats = _feed(net, patch_at_s=100.0, faults=faults)
    checkins = [(step, vid, parse_status_message(payload)) for step, vid, payload in messages[topics.STATUS]]
    assert stats.checkins == len(checkins)
    first = {}
    for step, vid, report in checkins:
        first.setdefault(vid, (step, report))
        assert report.vehicle_id == vid and report.agent_version == "simulator"
    assert set(first) == set(sim.vehicle_ids)  # everyone checks in (late if it starts offline)
    patched = {sim.vehicle_ids[c.vehicle] for c in sim.software.changes}
    assert len(patched) == 3
    for vid in patched:
        mine = [r.software for _, v, r in checkins if v == vid]
        versions = [e.version for software in mine for e in software if e.ecu in ("ECM", "VCU")]
        assert versions[0] == "4.2.0" and versions[-1] == "4.2.1"
    for vid in set(sim.vehicle_ids) - patched:
        assert len([1 for _, v, _ in checkins if v == vid]) == 1


def test_same_seed_publishes_identical_batches() -> None:
    net = NetworkSpec(outage_vehicle_share=0.2, duplicate_batch_probability=0.1, clock_skew_sd_s=1.0)
    runs = [_feed(net)[1].published for _ in range(2)]
    a, b = (
        [
            (step, x.vehicle_id, x.ts_ns.tolist(), {k: v.tolist() for k, v in x.columns.items()})
            for step, x in r
        ]
        for r in runs
    )
    assert a == b  # everything but the sequence numbers, which only ever increase across runs


def test_default_start_keeps_every_stamp_behind_the_wall_clock() -> None:
    from fleet.cli_simulate import default_start_unix_s

    now = 1_800_000_000.0
    for speedup in (1.0, 10.0, 1000.0, math.inf):
        sc = busy_scenario(duration_s=3600.0, speedup=speedup)
        start = default_start_unix_s(sc, now)
        for t in np.linspace(0, 3600, 13):
            sent_at = now + (t / speedup if math.isfinite(speedup) else 0.0)
            assert start + t <= sent_at + 1.0
    assert default_start_unix_s(busy_scenario(speedup=1.0), now) == now


def test_an_accelerated_run_starts_at_its_local_hour_whenever_it_is_launched() -> None:
    from fleet.cli_simulate import default_start_unix_s

    sc = busy_scenario(duration_s=7200.0, speedup=1000.0)
    for now in np.linspace(1_800_000_000.0, 1_800_000_000.0 + 86_400.0, 25):
        start = default_start_unix_s(sc, float(now))
        latest = float(int(now - 7200.0 * (1 - 1 / 1000.0)))
        assert latest - 86_400.0 < start <= latest
        local_hour = ((start + sc.utc_offset_h * 3600.0) % 86_400.0) / 3600.0
        assert local_hour == pytest.approx(sc.start_local_hour)
    late = dataclasses.replace(sc, start_local_hour=None)
    assert default_start_unix_s(late, 1_800_000_000.0) == float(int(1_800_000_000.0 - 7200.0 * 0.999))
