"""Feeding a simulated fleet through the real agent path: FleetBatcher -> wire v1 -> MQTT.

Owns: pacing (real time, `speedup` times faster, or as fast as possible), cutting each vehicle's
batch every `batch_interval_s` (staggered across the fleet, as real uploads are), and acting
out the connectivity plan: an offline vehicle's batches and DTCs wait in its backlog and go out
when it is back online, some batches are delivered twice (same seq, same content), and every
vehicle stamps samples with its own skewed clock. A vehicle sends a DTC message (its whole current
set of stored codes, empty when cleared) whenever that set changes, a check-in with its ECU
software when the run starts and when its software changes (`simulators.fleet_registry`), and,
with a closed loop (`simulators.closed_loop`), its signed OTA update reports. Publishing
itself is `simulators.runner.VehiclePublishers` (edge_agent.fleet_publishing.MqttPublisher
underneath).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from contract import topics
from contract.batch import TelemetryBatch
from contract.dtc import dtc_message
from edge_agent.fleet_publishing import FleetBatcher, SequenceCounter
from simulators.closed_loop import ClosedLoop
from simulators.engine import FleetSimulation, StepOutput
from simulators.fleet_registry import checkin_messages
from simulators.models import powertrain_ecu
from simulators.runner import VehiclePublishers


@dataclass(frozen=True)
class FeedConfig:
    duration_s: float
    batch_interval_s: float = 10.0
    speedup: float = 1.0  # math.inf: as fast as possible


@dataclass
class FeedStats:
    steps: int = 0
    first_ts_ns: int = 0
    last_ts_ns: int = 0
    batches: int = 0
    duplicates: int = 0
    duplicate_samples: int = 0
    backlogged_batches: int = 0
    dtc_messages: int = 0
    checkins: int = 0  # status check-ins (online, with the vehicle's software)
    update_reports: int = 0  # signed OTA update reports (`simulators.closed_loop`)
    max_lag_s: float = 0.0  # the furthest behind the pacing schedule a step finished (0 = kept up)


@dataclass
class _Backlog:
    batches: dict[int, list[TelemetryBatch]] = field(default_factory=dict)
    messages: dict[int, list[tuple[str, str, bytes]]] = field(default_factory=dict)  # (id, kind, payload)


def feed(
    sim: FleetSimulation,
    publishers: VehiclePublishers,
    config: FeedConfig,
    *,
    publish_message: Callable[[str, str, bytes], None] | None = None,
    on_step: Callable[[FleetSimulation, StepOutput], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    closed_loop: ClosedLoop | None = None,
) -> FeedStats:
    """Run the simulation for `config.duration_s` simulated seconds and publish everything:
    batches through `publishers`, DTC messages, check-ins and (with `closed_loop`) OTA update
    reports through `publish_message(vehicle_id, topic kind, payload)` (none are sent without it).
    `closed_loop.step` runs after each engine step. Raises PublishError
    (edge_agent.fleet_publishing) when the broker refuses a publish, ValueError for a closed loop
    without `publish_message`."""
    if closed_loop is not None and publish_message is None:
        raise ValueError("the closed loop's reports need publish_message (the simulator's gateway)")
    conn = sim.connectivity
    steps_per_batch = max(1, int(round(config.batch_interval_s / sim.dt_s)))
    groups = _staggered_batchers(sim, steps_per_batch)
    index_of = {vid: i for i, vid in enumerate(sim.vehicle_ids)}
    dup_rng = np.random.default_rng([sim.scenario.seed, 7])
    backlog = _Backlog()
    stats = FeedStats()
    n_steps = max(1, int(round(config.duration_s / sim.dt_s)))
    wall0 = time.monotonic()
    out: StepOutput | None = None
    for i in range(n_steps):
        if should_stop is not None and should_stop():
            break
        out = sim.step()
        if i == 0:
            stats.first_ts_ns = out.ts_ns
        for rows, batcher in groups:
            batcher.add(out.ts_ns, {path: col[rows] for path, col in out.signals.items()})
        if publish_message is not None:
            offline_now = conn.offline(out.t_s)
            reports = closed_loop.step(out, offline_now) if closed_loop is not None else []
            _queue_messages(sim, out, i == 0, backlog, offline_now, publish_message, stats, reports)
        due = (i + 1) % steps_per_batch  # one group cuts per step: uploads are spread evenly
        if due < len(groups):
            offline = conn.offline(out.t_s)
            _drain_returned(publishers, offline, backlog, publish_message, stats)  # oldest first
            _publish_cut(
                groups[due][1].cut(),
                publishers,
                offline,
                index_of,
                backlog,
                dup_rng,
                conn.duplicate_probability,
                stats,
            )
        if on_step is not None:
            on_step(sim, out)
        stats.steps = i + 1
        if math.isfinite(config.speedup):
            wake = wall0 + (i + 1) * sim.dt_s / config.speedup
            delay = wake - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stats.max_lag_s = max(stats.max_lag_s, -delay)
    if out is not None:
        stats.last_ts_ns = out.ts_ns
    nobody_offline = np.zeros(sim.n_vehicles, dtype=bool)  # the run ends: everyone is back
    _drain_returned(publishers, nobody_offline, backlog, publish_message, stats)
    for _, batcher in groups:
        _publish_cut(
            batcher.cut(),
            publishers,
            nobody_offline,
            index_of,
            backlog,
            dup_rng,
            conn.duplicate_probability,
            stats,
        )
    return stats


def _staggered_batchers(sim: FleetSimulation, steps_per_batch: int) -> list[tuple[slice, FleetBatcher]]:
    """Split the fleet into up to `steps_per_batch` groups of consecutive vehicles, each with its own
    batcher, so that group g uploads at steps g, g + steps_per_batch, ...: real vehicles do not all
    upload in the same second, and the publishing work is spread over the interval."""
    n = sim.n_vehicles
    k = min(steps_per_batch, n)
    bounds = np.linspace(0, n, k + 1).astype(int)
    sequence = SequenceCounter()
    skew = sim.connectivity.clock_skew_ns
    return [
        (slice(a, b), FleetBatcher(sim.vehicle_ids[a:b], sequence, clock_offsets_ns=skew[a:b]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _publish_cut(
    batches: list[TelemetryBatch],
    publishers: VehiclePublishers,
    offline: np.ndarray,
    index_of: dict[str, int],
    backlog: _Backlog,
    dup_rng: np.random.Generator,
    dup_probability: float,
    stats: FeedStats,
) -> None:
    dup = dup_rng.random(len(batches))
    for batch, u in zip(batches, dup.tolist(), strict=True):
        v = index_of[batch.vehicle_id]
        stats.batches += 1
        if offline[v]:
            backlog.batches.setdefault(v, []).append(batch)
            stats.backlogged_batches += 1
            continue
        publishers.publish(batch)
        if u < dup_probability:
            publishers.publish(batch)  # a redelivery: same seq, same bytes
            stats.duplicates += 1
            stats.duplicate_samples += batch.n_samples


def _drain_returned(
    publishers: VehiclePublishers,
    offline: np.ndarray,
    backlog: _Backlog,
    publish_message: Callable[[str, str, bytes], None] | None,
    stats: FeedStats,
) -> None:
    """Send the backlog of every vehicle that is online again, oldest first."""
    for v in [v for v in backlog.batches if not offline[v]]:
        for batch in backlog.batches.pop(v):
            publishers.publish(batch)
    if publish_message is None:
        return
    for v in [v for v in backlog.messages if not offline[v]]:
        for vid, kind, payload in backlog.messages.pop(v):
            _send(publish_message, vid, kind, payload, stats)


def _queue_messages(
    sim: FleetSimulation,
    out: StepOutput,
    first_step: bool,
    backlog: _Backlog,
    offline: np.ndarray,
    publish_message: Callable[[str, str, bytes], None],
    stats: FeedStats,
    extra: list[tuple[int, str, bytes]],
) -> None:
    """This step's check-ins (every vehicle at the start; then each one whose software changed),
    DTC messages (each vehicle whose set changed) and `extra` messages (update reports), sent now
    or kept until the vehicle is back online."""
    software_changed = np.arange(sim.n_vehicles) if first_step else out.software_vehicles
    messages = [(v, topics.STATUS, m) for v, m in checkin_messages(sim, software_changed)]
    if out.dtc_vehicles.size:
        firmware = sim.firmware_versions()
        skew = sim.connectivity.clock_skew_ns
        for v, codes in zip(out.dtc_vehicles.tolist(), out.dtc_sets, strict=True):
            software = {powertrain_ecu(bool(sim.params.is_ev[v])): str(firmware[v])}
            ts_us = (out.ts_ns + int(skew[v])) // 1000
            messages.append((v, topics.DTC, dtc_message(sim.vehicle_ids[v], ts_us, codes, software=software)))
    messages += extra
    for v, kind, payload in messages:
        vid = sim.vehicle_ids[v]
        if offline[v]:
            backlog.messages.setdefault(v, []).append((vid, kind, payload))
        else:
            _send(publish_message, vid, kind, payload, stats)


def _send(
    publish_message: Callable[[str, str, bytes], None], vid: str, kind: str, payload: bytes, stats: FeedStats
) -> None:
    publish_message(vid, kind, payload)
    if kind == topics.DTC:
        stats.dtc_messages += 1
    elif kind == topics.UPDATE:
        stats.update_reports += 1
    else:
        stats.checkins += 1
