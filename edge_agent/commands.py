"""The one-off commands a vehicle takes on its downlink `command` topic (contract.topics.COMMAND).

Owns: telling the commands apart and checking them (pure, no I/O). A command is a JSON object with
a `type`; the agent acts on two:

- `update_offer`: an OTA update offer (its shape and checks are `contract.update`'s);
- `consent`: the owner's answer to an offer that needs consent, sent by the backend when the owner
  answers in the app: `{"type": "consent", "offer_id": "...", "given": true|false}`.

Anything else raises CommandError with a short machine-readable `reason` and a detail: `not_handled`
for a known command the agent has no use for (an in-car `notice`: this agent has no screen), else
why it is not a command (not JSON, no `type`, a type nobody sends, a bad offer or consent). The
agent logs and counts it and goes on. What is done with a command belongs to
`edge_agent.ota.client`. docs/ota.md, section 3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from contract.update import OFFER_ID, OFFER_TYPE, OfferError, UpdateOffer, parse_update_offer

CONSENT_TYPE = "consent"
NOTICE_TYPE = "notice"  # an in-car notice for the owner (docs/wire-format.md): for a screen
MAX_COMMAND_BYTES = 8 << 10
# CommandError reasons
NOT_JSON = "not_json"
TOO_LARGE = "too_large"
NO_TYPE = "no_type"
UNKNOWN_TYPE = "unknown_type"
BAD_OFFER = "bad_offer"
BAD_CONSENT = "bad_consent"
NOT_HANDLED = "not_handled"


class CommandError(ValueError):
    """A command the agent does not act on; `reason` is one of the names above."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Consent:
    """The owner's answer to offer `offer_id`."""

    offer_id: str
    given: bool


def parse_command(payload: bytes) -> UpdateOffer | Consent:
    """Decode one command. Raises CommandError (see the module docstring)."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(TOO_LARGE, f"{len(payload)} bytes, at most {MAX_COMMAND_BYTES}")
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(NOT_JSON, str(exc)[:120]) from None
    if not isinstance(doc, dict):
        raise CommandError(NOT_JSON, "a command must be a JSON object")
    kind = doc.get("type")
    if not isinstance(kind, str):
        raise CommandError(NO_TYPE, "a command needs a string field `type`")
    if kind == OFFER_TYPE:
        try:
            return parse_update_offer(payload)
        except OfferError as exc:
            raise CommandError(BAD_OFFER, str(exc)[:200]) from None
    if kind == CONSENT_TYPE:
        offer_id, given = doc.get("offer_id"), doc.get("given")
        if not isinstance(offer_id, str) or OFFER_ID.fullmatch(offer_id) is None:
            raise CommandError(BAD_CONSENT, f"offer_id must match {OFFER_ID.pattern}")
        if not isinstance(given, bool):
            raise CommandError(BAD_CONSENT, "given must be true or false")
        return Consent(offer_id, given)
    if kind == NOTICE_TYPE:
        raise CommandError(
            NOT_HANDLED, f"an in-car notice ({doc.get('notification_id')!r:.40}); this agent has no screen"
        )
    raise CommandError(UNKNOWN_TYPE, f"type {kind[:40]!r} is not one this agent acts on")
