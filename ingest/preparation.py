"""Turn a cut of received messages into one prepared flush, so that no message can cost another.

Owns: the isolation of failures while preparing. `ingest.pipeline.classify` already turns every
per-message failure into a dead letter; what remains is the flush-level, vectorised preparation
(`ingest.flush.prepare_flush`), where one hostile message could make the whole flush raise. Then
each message is prepared alone to find the culprit, which becomes an `internal_error` dead letter
with its bytes; every other outcome (telemetry, DTC, status, dead letter, duplicate) is kept
through `Triage.add`, the one way outcomes enter a flush. A flush always accounts for every
message it consumed: `PreparedFlush.n_envelopes == consumed`.

Pure apart from logging: the service runs it in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from contract.errors import DeadLetterReason
from ingest.flush import PreparedFlush
from ingest.pipeline import Envelope, Triage, dead_letter, triage

log = logging.getLogger(__name__)

Prepare = Callable[[Triage], PreparedFlush]


def prepare_isolated(
    envelopes: Sequence[Envelope], prepare: Prepare, max_memory_bytes: int | None = None
) -> tuple[PreparedFlush, int]:
    """The prepared flush of the first `consumed` envelopes, and `consumed` (the rest did not fit
    under `max_memory_bytes` and belong to a later flush). Raises nothing for bad input."""
    triaged = triage(envelopes, max_memory_bytes=max_memory_bytes)
    consumed = triaged.consumed
    try:
        return prepare(triaged), consumed
    except Exception:  # a bug on some input must not stop ingest: find it, keep its bytes
        log.exception("preparing a flush of %d messages failed; retrying message by message", consumed)
    return _prepare_one_by_one(envelopes[:consumed], prepare), consumed


def _prepare_one_by_one(envelopes: Sequence[Envelope], prepare: Prepare) -> PreparedFlush:
    out = Triage()
    for envelope in envelopes:
        one = triage([envelope])
        try:
            prepare(one)
        except Exception as exc:  # noqa: BLE001  # dead-lettered with its payload, never lost
            out.add(
                dead_letter(envelope, DeadLetterReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500])
            )
            continue
        for outcome in one.outcomes():
            out.add(outcome)
    try:
        return prepare(out)
    except Exception as exc:  # every message passed alone but not together: keep them all as bytes
        log.exception("preparing the isolated messages together failed; dead-lettering them")
        detail = f"flush preparation failed: {type(exc).__name__}: {exc}"[:500]
        return prepare(_all_dead(envelopes, detail))


def _all_dead(envelopes: Sequence[Envelope], detail: str) -> Triage:
    out = Triage()
    for envelope in envelopes:
        out.add(dead_letter(envelope, DeadLetterReason.INTERNAL_ERROR, detail))
    return out
