"""The hazard map's thresholds: versioned configuration, one place, explained in docs/hazards.md.

Sources (../shared/REFERENCE.md): Pothole Patrol's filters (speed gate, z-peak, x–z ratio, a
z threshold that grows with speed); harsh braking at 0.25–0.45 g in use by insurers; GPS error of
3–5 m in towns (the pothole radius), more on fast roads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

G_MS2 = 9.80665
POTHOLE, SLIPPERY, JUNCTION = "pothole", "slippery", "junction"
KINDS = (POTHOLE, SLIPPERY, JUNCTION)


@dataclass(frozen=True)
class KindRules:
    """How sites of one kind are built and judged."""

    link_m: float  # events closer than this belong to one site (single linkage)
    merge_m: float  # sites whose shapes come this close are one place
    pass_radius_m: float  # a vehicle this close to the site's shape passes over it
    aligned_deg: float | None  # a pass must travel along the site's axis within this; None: any way
    pass_min_speed_ms: float  # slower passes could not have produced an event: they are not evidence
    min_event_rate: float  # the share of passes with an event that makes a hazard (lower bound)
    along_m: float = 0.0  # a stretch also links events this far apart along one road (collinear)


@dataclass(frozen=True)
class HazardThresholds:
    version: str = "hazards-1"
    # Potholes (Pothole Patrol): a vertical peak above max(z_min, z0 + z_per_speed * v), at speed,
    # a local maximum of |z|, and not a longitudinal jolt (|x| < xz_ratio * |z|).
    pothole_min_speed_ms: float = 15 / 3.6
    pothole_z_min_ms2: float = 2.0
    pothole_z0_ms2: float = 0.8
    pothole_z_per_speed_s: float = 0.16  # m/s² of threshold per m/s of speed: the noise grows with speed
    pothole_xz_ratio: float = 1.0
    # Slippery road: ABS intervening under braking a dry road takes without it, or traction control.
    abs_low_mu_decel_ms2: float = 0.45 * G_MS2
    slip_min_speed_ms: float = 2.0
    # Dangerous junctions: braking at 0.4 g or harder, one event per excursion.
    harsh_brake_ms2: float = 0.40 * G_MS2
    harsh_min_speed_ms: float = 20 / 3.6
    # Clustering and evidence.
    min_vehicles: int = 3  # K: distinct vehicles before a hazard is confirmed
    prior_present: float = 0.999  # belief a confirmed hazard is still there before any clean pass
    retract_below: float = 0.5  # confidence under which a confirmed hazard is withdrawn
    min_quiet_s: float = 15 * 60.0  # ... but never before this long without an event
    rate_window_passes: int = 40  # the event rate is judged on this many most recent passes
    rate_z: float = 1.645  # one-sided 95% Wilson lower bound of that rate
    half_life_s: float = 14 * 86400.0  # evidence weight halves every two weeks
    expire_after_s: float = 60 * 86400.0  # a site with no event for this long is dropped
    max_interval_s: float = 5.0  # consecutive samples further apart are not one interval
    pothole: KindRules = KindRules(15.0, 15.0, 15.0, 30.0, 15 / 3.6, 0.3)
    # A slippery stretch is as long as the road piece: few passes leave gaps of more than the link
    # distance between its events, so events on one line (within the pass radius of each other's
    # axis, travelling along it) also link up to `along_m` apart.
    slippery: KindRules = KindRules(30.0, 30.0, 15.0, 30.0, 2.0, 0.3, along_m=120.0)
    # Harsh brakes spread over the last 40 m of every approach: events on two arms of one junction
    # are up to 60 m apart, and so are the first sites seen on two arms before the rest links them.
    junction: KindRules = KindRules(50.0, 60.0, 40.0, None, 20 / 3.6, 0.08)

    def rules(self, kind: str) -> KindRules:
        return {POTHOLE: self.pothole, SLIPPERY: self.slippery, JUNCTION: self.junction}[kind]

    def per_kind(self, field: str) -> np.ndarray:
        """One `KindRules` field for every kind, indexed by kind code (None reads as infinity)."""
        values = [getattr(self.rules(k), field) for k in KINDS]
        return np.array([np.inf if v is None else v for v in values], dtype=float)


DEFAULT = HazardThresholds()
