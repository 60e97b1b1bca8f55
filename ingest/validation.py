"""Plausibility checks on decoded telemetry, done on whole flushes at once (numpy, no per-sample loop).

Owns: the time window a batch must fall in and the catalogue ranges its values must respect.
Pure: "now" is each message's receive time, passed in; nothing here reads a clock or a database.

Policy (documented in docs/scaling.md):
- A batch whose time stamps lie too far in the future or the past is rejected whole
  (`timestamp_in_future`, `timestamp_too_old`): a wrong clock makes every row of it suspect.
- A value outside its signal's catalogue range (`contract.signals.Signal.min_value/max_value`) is
  stored as NULL; the rest of the batch is stored. A sensor glitch on one signal must not throw away
  the position and speed recorded next to it. The raw payload still goes to the dead letters with
  reason `out_of_range` and which signals were affected, so the original bytes are never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.errors import DeadLetterReason
from contract.signals import SIGNALS


@dataclass(frozen=True)
class ValidationPolicy:
    """How far sample times may lie from the moment ingest received them."""

    max_future_s: float = 300.0
    max_past_s: float = 30 * 86_400.0


def time_window_violations(
    first_ts_ns: np.ndarray, last_ts_ns: np.ndarray, received_ns: np.ndarray, policy: ValidationPolicy
) -> list[tuple[int, DeadLetterReason, str]]:
    """(batch index, reason, detail) for every batch outside the allowed window."""
    future = last_ts_ns - received_ns > int(policy.max_future_s * 1e9)
    old = received_ns - first_ts_ns > int(policy.max_past_s * 1e9)
    out: list[tuple[int, DeadLetterReason, str]] = []
    for i in np.flatnonzero(future).tolist():
        ahead_s = (int(last_ts_ns[i]) - int(received_ns[i])) / 1e9
        out.append(
            (i, DeadLetterReason.TIMESTAMP_IN_FUTURE, f"last sample {ahead_s:.0f} s ahead of ingest's clock")
        )
    for i in np.flatnonzero(old & ~future).tolist():
        age_s = (int(received_ns[i]) - int(first_ts_ns[i])) / 1e9
        out.append(
            (
                i,
                DeadLetterReason.TIMESTAMP_TOO_OLD,
                f"first sample {age_s:.0f} s old (limit {policy.max_past_s:.0f} s)",
            )
        )
    return out


def null_out_of_range(values: dict[str, np.ndarray], row_batch: np.ndarray) -> dict[int, str]:
    """Replace out-of-range values by NaN, in place. Returns batch index -> which signals were hit."""
    hits: dict[int, list[str]] = {}
    for signal in SIGNALS:
        column = values.get(signal.vss_path)
        if column is None:
            continue
        bad = (column < signal.min_value) | (column > signal.max_value)  # NaN compares False
        if not bad.any():
            continue
        batches, counts = np.unique(row_batch[bad], return_counts=True)
        for b, n in zip(batches.tolist(), counts.tolist(), strict=True):
            hits.setdefault(b, []).append(
                f"{signal.column}: {n} value(s) outside {signal.min_value:g}..{signal.max_value:g}"
            )
        column[bad] = np.nan
    return {b: "; ".join(parts) + " (stored as NULL)" for b, parts in hits.items()}
