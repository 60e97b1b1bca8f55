"""Feeding a simulated fleet through the real agent path: FleetBatcher -> wire v1 -> MQTT.

Owns: pacing (real time, `speedup` times faster, or as fast as possible), cutting each vehicle's
batch every `batch_interval_s` (staggered across the fleet, as real uploads are), and acting
out the connectivity plan: an offline vehicle's batches and DTCs wait in its backlog and go out
when it is back online, some batches are delivered twice (same seq, same content), and every
vehicle stamps samples with its own skewed clock. A vehicle sends a DTC message (its whole current
set of stored codes, empty when cleared) whenever that set changes. Publishing
itself is `simulators.runner.VehiclePublishers` (edge_agent.fleet_publishing.MqttPublisher
underneath).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from contract.batch import TelemetryBatch
from contract.dtc import dtc_message
from edge_agent.fleet_publishing import FleetBatcher, SequenceCounter
from simulators.engine import FleetSimulation, StepOutput
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
    max_lag_s: float = 0.0  # the furthest behind the pacing schedule a step finished (0 = kept up)


@dataclass
class _Backlog:
    batches: dict[int, list[TelemetryBatch]] = field(default_factory=dict)
    dtcs: dict[int, list[tuple[str, bytes]]] = field(default_factory=dict)


def feed(
    sim: FleetSimulation,
    publishers: VehiclePublishers,
    config: FeedConfig,
    *,
    publish_dtc: Callable[[str, bytes], None] | None = None,
    on_step: Callable[[FleetSimulation, StepOutput], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FeedStats:
    """Run the simulation for `config.duration_s` simulated seconds and publish everything.
    Raises PublishError (edge_agent.fleet_publishing) when the broker refuses a publish."""
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
        if out.dtc_vehicles.size and publish_dtc is not None:
            _queue_dtcs(sim, out, backlog, conn.offline(out.t_s), publish_dtc, stats)
        due = (i + 1) % steps_per_batch  # one group cuts per step: uploads are spread evenly
        if due < len(groups):
            offline = conn.offline(out.t_s)
            _drain_returned(publishers, offline, backlog, publish_dtc, stats)  # oldest first
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
    _drain_returned(publishers, nobody_offline, backlog, publish_dtc, stats)
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
    publish_dtc: Callable[[str, bytes], None] | None,
    stats: FeedStats,
) -> None:
    """Send the backlog of every vehicle that is online again, oldest first."""
    for v in [v for v in backlog.batches if not offline[v]]:
        for batch in backlog.batches.pop(v):
            publishers.publish(batch)
    if publish_dtc is None:
        return
    for v in [v for v in backlog.dtcs if not offline[v]]:
        for vid, payload in backlog.dtcs.pop(v):
            publish_dtc(vid, payload)
            stats.dtc_messages += 1


def _queue_dtcs(
    sim: FleetSimulation,
    out: StepOutput,
    backlog: _Backlog,
    offline: np.ndarray,
    publish_dtc: Callable[[str, bytes], None],
    stats: FeedStats,
) -> None:
    firmware = sim.firmware_versions(out.t_s)
    skew = sim.connectivity.clock_skew_ns
    for v, codes in zip(out.dtc_vehicles.tolist(), out.dtc_sets, strict=True):
        vid = sim.vehicle_ids[v]
        payload = dtc_message(
            vid, (out.ts_ns + int(skew[v])) // 1000, codes, software={"ECM": str(firmware[v])}
        )
        if offline[v]:
            backlog.dtcs.setdefault(v, []).append((vid, payload))
        else:
            publish_dtc(vid, payload)
            stats.dtc_messages += 1
