"""The rollout rules of an OTA campaign (hawkBit's model, stricter), as pure functions.

Owns:
- The campaign's life as one transition table (`TRANSITIONS`): proposed -approve-> approved
  -start-> running; running -pause-> paused -resume-> running; running -finish-> finished; and
  -cancel-> cancelled from any open state. Anything else is refused with `TransitionError`.
- Waves: every vehicle gets a wave by a random draw that depends only on the campaign and the
  vehicle (a keyed hash), so the assignment is random across the fleet, stable across restarts
  and needs no stored random state. Wave k takes the vehicles whose draw is below the k-th
  cumulative share (default 1% -> 10% -> 50% -> 100%). A vehicle that joins once the campaign
  runs has its wave by the same draw, but never the open wave or one already closed: it joins the
  next wave (the last one when the last is open), so a wave's gate judges the vehicles it began
  with.
- The gate of the current wave, decided from its vehicles' states and times:
  - a vehicle succeeds once it reported `committed` and then stayed `soak_s` without a new alarm;
    a new alarm within the soak is a failure (the health gate);
  - failed and rolled-back installs are failures;
  - the campaign PAUSES when the failures reach `error_threshold` of the wave, or `max_failures`
    over the whole campaign, whichever comes first;
  - the wave is done, and the next one opens, when the successes reach `success_threshold` of
    the wave and nothing in it is still in progress beyond that; an empty wave counts as done;
  - after the last wave, the campaign finishes.
- Silent vehicles (`offer_timed_out`): an offer that no report answered within `offer_timeout_s`
  times out, and the member is `timed_out`: neither a success nor a failure, it leaves the count
  that both thresholds are shares of (a lost, sold or dead vehicle says nothing about the update),
  and the summary counts it on its own. A wave is never passed on no evidence: when every member
  of a non-empty wave timed out, the campaign PAUSES for a person (resuming accepts the timeouts).
  A late report moves the member again, the vehicle's report being the truth.
Leaves reading reports, sending offers and writing state to the controller shell.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_WAVES_PCT = (1.0, 10.0, 50.0, 100.0)
DEFAULT_OFFER_TIMEOUT_S = 3 * 86400.0  # a car parked over a long weekend still answers in time


class Status(enum.StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class Event(enum.StrEnum):
    APPROVE = "approve"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    FINISH = "finish"
    CANCEL = "cancel"


TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (Status.PROPOSED, Event.APPROVE): Status.APPROVED,
    (Status.APPROVED, Event.START): Status.RUNNING,
    (Status.RUNNING, Event.PAUSE): Status.PAUSED,
    (Status.PAUSED, Event.RESUME): Status.RUNNING,
    (Status.RUNNING, Event.FINISH): Status.FINISHED,
    (Status.PROPOSED, Event.CANCEL): Status.CANCELLED,
    (Status.APPROVED, Event.CANCEL): Status.CANCELLED,
    (Status.RUNNING, Event.CANCEL): Status.CANCELLED,
    (Status.PAUSED, Event.CANCEL): Status.CANCELLED,
}


class TransitionError(ValueError):
    """The event is not allowed in the campaign's status."""


def transition(status: Status, event: Event) -> Status:
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise TransitionError(f"a {status.value} campaign cannot {event.value}") from None


class VehicleState(enum.StrEnum):
    PENDING = "pending"  # in the campaign, not offered yet (its wave has not opened)
    OFFERED = "offered"
    DOWNLOADING = "downloading"
    INSTALLED = "installed"  # written and switched, not yet committed
    COMMITTED = "committed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    EXCLUDED = "excluded"  # left the campaign (its alarm cleared, or removed by a person)
    TIMED_OUT = "timed_out"  # offered, and no report within the campaign's offer_timeout_s


IN_PROGRESS = frozenset({VehicleState.OFFERED, VehicleState.DOWNLOADING, VehicleState.INSTALLED})
FAILURES = frozenset({VehicleState.FAILED, VehicleState.ROLLED_BACK})


@dataclass(frozen=True)
class Policy:
    waves_pct: tuple[float, ...] = DEFAULT_WAVES_PCT  # cumulative shares of the fleet, ending at 100
    success_threshold: float = 0.95  # of the wave's vehicles
    error_threshold: float = 0.05  # of the wave's vehicles
    max_failures: int = 20  # over the whole campaign
    soak_s: float = 3600.0
    offer_timeout_s: float = DEFAULT_OFFER_TIMEOUT_S

    def __post_init__(self) -> None:
        w = self.waves_pct
        if not w or any(b <= a for a, b in zip(w, w[1:], strict=False)) or w[0] <= 0 or w[-1] != 100.0:
            raise ValueError("waves_pct must rise strictly from above 0 to 100")
        if not (0 < self.success_threshold <= 1 and 0 < self.error_threshold <= 1 and self.max_failures >= 1):
            raise ValueError("thresholds are shares in (0, 1] and max_failures at least 1")
        if self.soak_s < 0:
            raise ValueError("soak_s must not be negative")
        if not self.offer_timeout_s > 0:
            raise ValueError("offer_timeout_s must be positive")


def offer_timed_out(offered_s: float, now_s: float, policy: Policy) -> bool:
    """Whether an offer made (and published) at `offered_s` that no report answered yet has timed
    out at `now_s` (seconds, one clock: the controller's)."""
    return now_s - offered_s >= policy.offer_timeout_s


def draw(campaign_id: int, vehicle_id: str) -> float:
    """The vehicle's random draw in [0, 1) for this campaign (SHA-256 of both)."""
    digest = hashlib.sha256(f"{campaign_id}\x00{vehicle_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def wave_of(campaign_id: int, vehicle_id: str, policy: Policy, earliest: int = 0) -> int:
    """The vehicle's wave: by its draw, but never before `earliest` (nor after the last wave)."""
    share = 100.0 * draw(campaign_id, vehicle_id)
    wave = next(k for k, pct in enumerate(policy.waves_pct) if share < pct)
    return min(max(wave, earliest), len(policy.waves_pct) - 1)


def joiner_wave(campaign_id: int, vehicle_id: str, policy: Policy, open_wave: int | None) -> int:
    """The wave of a vehicle that joins: by its draw before the campaign runs (`open_wave` None),
    else never the open wave or an earlier one (the last wave when the last is open)."""
    earliest = 0 if open_wave is None else open_wave + 1
    return wave_of(campaign_id, vehicle_id, policy, earliest)


@dataclass(frozen=True)
class Member:
    """A vehicle of the current wave as the gate sees it."""

    vehicle_id: str
    state: VehicleState
    committed_s: float | None = None  # when it reported committed (seconds, any epoch)
    alarm_after_commit_s: float | None = None  # its first new alarm after committing, if any


class Verdict(enum.StrEnum):
    WAIT = "wait"
    NEXT_WAVE = "next_wave"
    FINISH = "finish"
    PAUSE = "pause"


@dataclass(frozen=True)
class Gate:
    verdict: Verdict
    successes: int
    failures: int
    in_progress: int
    soaking: int
    reason: str
    timed_out: int = 0


def judge_wave(
    members: Sequence[Member],
    policy: Policy,
    *,
    now_s: float,
    wave: int,
    failures_before: int = 0,
) -> Gate:
    """The verdict on the open wave `wave` from its members (excluded ones left out; timed-out ones
    counted apart, outside the shares)."""
    counted = [m for m in members if m.state is not VehicleState.EXCLUDED]
    successes = failures = in_progress = soaking = timed_out = 0
    for m in counted:
        if m.state in FAILURES:
            failures += 1
        elif m.state is VehicleState.TIMED_OUT:
            timed_out += 1
        elif m.state is VehicleState.COMMITTED and m.committed_s is not None:
            if m.alarm_after_commit_s is not None and m.alarm_after_commit_s - m.committed_s <= policy.soak_s:
                failures += 1  # the health gate: a new alarm within the soak
            elif now_s - m.committed_s >= policy.soak_s:
                successes += 1
            else:
                soaking += 1
        else:
            in_progress += 1
    n = len(counted) - timed_out  # the vehicles that answered, or may still answer
    last = wave == len(policy.waves_pct) - 1

    def gate(verdict: Verdict, why: str) -> Gate:
        silent = f"; {timed_out} timed out without a report" if timed_out else ""
        return Gate(verdict, successes, failures, in_progress, soaking, why + silent, timed_out)

    if failures_before + failures >= policy.max_failures:
        return gate(
            Verdict.PAUSE,
            f"{failures_before + failures} failed installs reach the campaign's cap of {policy.max_failures}",
        )
    if n and failures >= math.ceil(policy.error_threshold * n):
        return gate(
            Verdict.PAUSE, f"{failures} of {n} in wave {wave + 1} failed: at or above the error threshold"
        )
    if timed_out and not n:
        return gate(
            Verdict.PAUSE, f"wave {wave + 1}: no vehicle answered its offer, nothing to judge the update by"
        )
    if n == 0 or successes >= math.ceil(policy.success_threshold * n):
        verdict = Verdict.FINISH if last else Verdict.NEXT_WAVE
        return gate(
            verdict,
            f"wave {wave + 1}: {successes} of {n} succeeded after the soak"
            if n
            else f"wave {wave + 1} is empty",
        )
    return gate(
        Verdict.WAIT,
        f"wave {wave + 1}: {successes} of {n} succeeded, {soaking} soaking, {in_progress} in progress",
    )


def wave_sizes(campaign_id: int, vehicle_ids: Iterable[str], policy: Policy) -> list[int]:
    """How many of the vehicles each wave gets (for a plan shown before approval)."""
    sizes = [0] * len(policy.waves_pct)
    for vid in vehicle_ids:
        sizes[wave_of(campaign_id, vid, policy)] += 1
    return sizes
