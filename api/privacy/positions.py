"""What a role may not see exactly: positions for roles that need no exact place.

Owns: the coarsening of positions (pure). An engineer looks at faults and the fleet, not at where a
car is parked, so the positions it reads are rounded to `COARSE_POSITION_DECIMALS` decimal degrees
(0.01 degree: about 1.1 km of latitude, at most 1.1 km of longitude). Leaves which role gets what
to `api.auth.Principal` and the routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COARSE_POSITION_DECIMALS = 2
POSITION_PATHS = frozenset({"Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"})


def coarsen_position(degrees: float) -> float:
    """A latitude or longitude rounded to COARSE_POSITION_DECIMALS decimals."""
    return round(degrees, COARSE_POSITION_DECIMALS)


def coarsen_signals(signals: Mapping[str, Any]) -> dict[str, Any]:
    """Latest-state signals (VSS path -> {"value", "ts"}) with the position coarsened; the rest as is."""
    return {
        path: {**sample, "value": coarsen_position(float(sample["value"]))}
        if path in POSITION_PATHS
        else sample
        for path, sample in signals.items()
    }
