"""When each TUF role's metadata expires, and which roles a periodic refresh must re-sign.

Owns: the lifetimes (a short one for the timestamp, so that a frozen repository or a mirror that
replays old metadata is noticed within a day) and the re-signing decision. Pure: the caller passes
the time. Leaves reading and writing metadata to `ota.repository`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

DAY_S = 86_400


@dataclass(frozen=True)
class ExpiryPolicy:
    """How long each role's metadata stays valid after it is signed."""

    root_s: int = 365 * DAY_S
    targets_s: int = 90 * DAY_S
    snapshot_s: int = 7 * DAY_S
    timestamp_s: int = 1 * DAY_S

    def lifetime_s(self, role: str) -> int:
        """Raises ValueError for a role that is not a top-level TUF role."""
        lifetimes = {
            "root": self.root_s,
            "targets": self.targets_s,
            "snapshot": self.snapshot_s,
            "timestamp": self.timestamp_s,
        }
        if role not in lifetimes:
            raise ValueError(f"unknown role {role!r}")
        return lifetimes[role]

    def expires(self, role: str, now: dt.datetime) -> dt.datetime:
        """The expiry of `role` signed at `now`, in whole seconds (TUF's JSON has no fractions)."""
        return (now + dt.timedelta(seconds=self.lifetime_s(role))).replace(microsecond=0)


def due(expires: dt.datetime, now: dt.datetime, lifetime_s: int) -> bool:
    """A role is due for re-signing once less than half its lifetime is left."""
    return (expires - now).total_seconds() < lifetime_s / 2


def refresh_plan(expiries: dict[str, dt.datetime], now: dt.datetime, policy: ExpiryPolicy) -> tuple[str, ...]:
    """The roles a refresh re-signs, in signing order: targets when due; snapshot when due or when
    targets changed (it lists the targets version); the timestamp always (it lists the snapshot,
    and is the short-lived proof that the repository is alive). Root is never in the plan: its keys
    are offline (`root_expiring` warns)."""
    plan = []
    if due(expiries["targets"], now, policy.targets_s):
        plan.append("targets")
    if plan or due(expiries["snapshot"], now, policy.snapshot_s):
        plan.append("snapshot")
    plan.append("timestamp")
    return tuple(plan)


def root_expiring(root_expires: dt.datetime, now: dt.datetime, warn_s: int = 30 * DAY_S) -> bool:
    """Whether root expires within `warn_s`: time to sign a new root with the offline keys."""
    return (root_expires - now).total_seconds() < warn_s
