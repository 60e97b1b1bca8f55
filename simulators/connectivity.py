"""Network realism: per-vehicle outages, duplicated deliveries and clock skew.

Owns: drawing who is offline when (tunnels, parking garages), each vehicle's clock offset, and the
probability that a batch is delivered twice. The publishing shell (`simulators.feeder`) acts on
them: it holds an offline vehicle's batches and sends the backlog when coverage returns,
publishes a duplicate with the same seq and content, and stamps samples with the skewed clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.scenario import NetworkSpec


@dataclass(frozen=True)
class ConnectivityPlan:
    outage_from_s: np.ndarray  # (n,) +inf when the vehicle has no outage
    outage_until_s: np.ndarray
    clock_skew_ns: np.ndarray  # int64 (n,): added to every timestamp the vehicle sends
    duplicate_probability: float

    def offline(self, t_s: float) -> np.ndarray:
        return (self.outage_from_s <= t_s) & (t_s < self.outage_until_s)


def draw_connectivity(
    rng: np.random.Generator, n: int, spec: NetworkSpec, duration_s: float
) -> ConnectivityPlan:
    """One outage for a share of the vehicles, somewhere within the run; skew for every vehicle."""
    has_outage = rng.random(n) < spec.outage_vehicle_share
    lo, hi = spec.outage_duration_s
    length = rng.uniform(lo, hi, n)
    start = rng.uniform(0.0, max(duration_s - lo, 1.0), n)
    skew_s = rng.normal(0.0, spec.clock_skew_sd_s, n)
    large = rng.random(n) < spec.large_clock_skew_share
    skew_s = np.where(large, rng.choice([-1.0, 1.0], n) * spec.large_clock_skew_s, skew_s)
    return ConnectivityPlan(
        outage_from_s=np.where(has_outage, start, np.inf),
        outage_until_s=np.where(has_outage, start + length, np.inf),
        clock_skew_ns=np.round(skew_s * 1e9).astype(np.int64),
        duplicate_probability=spec.duplicate_batch_probability,
    )
