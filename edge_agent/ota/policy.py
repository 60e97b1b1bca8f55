"""The agent's OTA decisions, pure: what an offer asks now, which install events become which
reports, and when the agent waits and when it gives up.

Owns:
- `terms_of`: the offer's `OfferTerms` at a moment: its maintenance window, and whether consent is
  still needed (an offer asks for consent only while it is not forced: `urgency` `forced`, or
  `forced_after` once `forced_after_us` has passed, installs without waiting for the owner; the
  safety preconditions, parked, power and the window, always hold);
- `report_of`: an `InstallEvent` to the report it becomes (state, reason), or None;
- `after_refusal`: what a refused install means: wait and try again, or give up (a report
  `failed`); `waiting_detail`: the words a waiting report carries;
- `expired`: the offer waited longer than the agent waits for any offer.
The shell that acts on them is `edge_agent.ota.client`; docs/ota.md, section 5, documents them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from contract.update import UpdateOffer
from edge_agent.ota.events import InstallEvent
from edge_agent.ota.install_actions import ALREADY_RUNNING, HARDWARE_ID, UNKNOWN_ECU
from edge_agent.ota.preconditions import MaintenanceWindow, OfferTerms, Refusal
from edge_agent.ota.state import State

# A refusal for these never goes away by waiting: the offer is given up (reason = the name).
PERMANENT_REFUSALS = frozenset({UNKNOWN_ECU, HARDWARE_ID, ALREADY_RUNNING})
# Give-up reasons of the agent's own (besides the verifier's and the permanent refusals).
SUPERSEDED = "superseded"  # a newer offer for the same ECU arrived while this one waited
EXPIRED = "expired"  # waited longer than [ota] give_up_after_s
BAD_WINDOW = "bad_maintenance_window"  # a time zone this vehicle does not know
INTERRUPTED = "interrupted"  # an install interrupted before its switch was committed
# The installer's failure texts (InstallEvent.reason) to report reasons, first match wins.
_FAILURE_REASONS = (
    ("interrupted by a restart", INTERRUPTED),
    ("state loop detected", "state_loop"),
    ("cannot save the install state", "state_unsaved"),
    ("health check failed", "health_check_failed"),
    ("was not confirmed within", "boot_failed"),
    ("boot step failed", "boot_failed"),
    ("writing slot", "write_failed"),
    ("image", "verify_failed"),
    ("manifest", "verify_failed"),
    ("switch of slot", "switch_failed"),
    ("commit of slot", "commit_failed"),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """After a refused install: `give_up` with `reason`, or wait (`waiting_for`: the names)."""

    give_up: bool
    reason: str = ""
    waiting_for: tuple[str, ...] = ()


def is_forced(offer: UpdateOffer, now_us: int) -> bool:
    if offer.urgency == "forced":
        return True
    return offer.forced_after_us is not None and now_us >= offer.forced_after_us


def window_of(offer: UpdateOffer) -> MaintenanceWindow | None:
    """The offer's window as the preconditions take it (its time zone is applied by the caller)."""
    w = offer.maintenance_window
    if w is None:
        return None
    return MaintenanceWindow(dt.time.fromisoformat(w.start), dt.time.fromisoformat(w.end))


def terms_of(offer: UpdateOffer, now_us: int) -> OfferTerms:
    return OfferTerms(
        offer_id=offer.offer_id,
        window=window_of(offer),
        consent_required=offer.consent_required and not is_forced(offer, now_us),
    )


def failure_reason(text: str) -> str:
    """A report reason (`[a-z0-9_]`) for the installer's failure text."""
    for needle, reason in _FAILURE_REASONS:
        if needle in text:
            return reason
    return "install_failed"


def report_of(event: InstallEvent) -> tuple[str, str | None] | None:
    """The report (state, reason) an install event becomes; None for the steps not reported and
    for a refusal (the client decides about those: `after_refusal`)."""
    if event.stalled:
        return None
    if event.state is State.HEALTH_CHECK:  # written, verified, switched to and booted: on trial
        return "installed", None
    if event.state is State.INSTALLED:
        return "committed", None
    if event.state is State.ROLLED_BACK:
        return "rolled_back", failure_reason(event.reason)
    if event.state is State.FAILED:
        return "failed", failure_reason(event.reason)
    return None


def after_refusal(refusals: Sequence[Refusal]) -> Outcome:
    """Give up on the first permanent refusal; otherwise wait for the preconditions named."""
    for refusal in refusals:
        if refusal.precondition in PERMANENT_REFUSALS:
            return Outcome(True, reason=refusal.precondition)
    return Outcome(False, waiting_for=tuple(r.precondition for r in refusals))


def waiting_detail(refusals: Sequence[Refusal]) -> str:
    """The detail of a waiting report: `waiting: parked (moving at 50 km/h); power (...)`."""
    return ("waiting: " + "; ".join(f"{r.precondition} ({r.detail})" for r in refusals))[:500]


def expired(received_at_us: int, now_us: int, give_up_after_s: float) -> bool:
    return now_us - received_at_us > give_up_after_s * 1e6
