"""The health check after the switch: is the new slot fit to commit?

Owns the check's interface and the default. A check takes a `HealthContext` and returns None when
healthy, or the reason it is not (which the report carries). The default checks the new slot's
manifest against the artifact (ECU, version, SHA-256, length) and its image's size, and the
agent's own start-up from there: its state directory, which holds the spool, the campaign and
these slots, still takes a durable write. An ECU-specific hook (e.g. ask the ECU over UDS which
version it runs) is given to `Installer(ecu_checks=...)` and runs after it. It does not hash the
image again: VERIFY did, just before the switch. A check that raises counts as unhealthy.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.ota.artifact import Manifest
from edge_agent.ota.durable import fsync_dir

PROBE_NAME = ".health-probe"


@dataclass(frozen=True, slots=True)
class HealthContext:
    ecu: str
    slot: str
    slot_dir: Path
    image: Path
    manifest: Manifest | None  # the new slot's, as read from disk; None when unreadable
    expected: Manifest  # the artifact's
    state_dir: Path


HealthCheck = Callable[[HealthContext], str | None]


def check_slot(ctx: HealthContext) -> str | None:
    if ctx.manifest is None:
        return f"slot {ctx.slot} has no readable manifest"
    if ctx.manifest != ctx.expected:
        return f"slot {ctx.slot} manifest {ctx.manifest} differs from the artifact's {ctx.expected}"
    try:
        size = os.stat(ctx.image).st_size
    except OSError as exc:
        return f"slot {ctx.slot} image unreadable: {exc.strerror}"
    if size != ctx.expected.length_bytes:
        return f"slot {ctx.slot} image holds {size} bytes, not {ctx.expected.length_bytes}"
    return None


def check_agent_startup(ctx: HealthContext) -> str | None:
    """The agent can run: its state directory takes a durable write and removal."""
    probe = ctx.state_dir / "ota" / PROBE_NAME
    try:
        with open(probe, "wb") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
        fsync_dir(probe.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink()
        return f"the agent's state directory is not writable: {exc.strerror or exc}"
    return None


def default_health_check(ctx: HealthContext) -> str | None:
    return check_slot(ctx) or check_agent_startup(ctx)


def run_checks(checks: tuple[HealthCheck, ...], ctx: HealthContext) -> str | None:
    """The first reason any check gives, in order; an exception is a reason too (never raises)."""
    for check in checks:
        try:
            reason = check(ctx)
        except Exception as exc:  # a hook's bug must not leave a tentative slot unresolved
            reason = f"health check {getattr(check, '__name__', check)!s} raised {type(exc).__name__}: {exc}"
        if reason is not None:
            return str(reason)[:500]
    return None
