"""Micro-benchmark of ingest's CPU half: decoding, checking and preparing one flush of small messages.

Owns: `fleet bench ingest-prepare`'s measurement (issue 14): N messages of R rows (12 FLOAT32 signals,
as `fleet bench ingest` sends, zlib as the encoder chooses) from V vehicles go through
`ingest.preparation.prepare_isolated` with `ingest.flush.prepare_flush`, best of a few repeats, with
the decode (`triage`) and the last-known state (`latest_signals`) also timed apart. No broker, no
database: what the service does in its worker thread for one flush.
"""

from __future__ import annotations

import time

from benchmarks.ingest.fleetdata import frames_of, make_batches
from ingest.flush import latest_signals, prepare_flush
from ingest.pipeline import Envelope, triage
from ingest.preparation import prepare_isolated


def run_prepare_micro(messages: int = 2000, rows: int = 10, vehicles: int = 2000, repeats: int = 5) -> dict:
    """Seconds (best of `repeats`) to prepare one flush of `messages` frames, and its parts."""
    now_ns = time.time_ns()
    batches = make_batches("MICRO", messages, rows, vehicles, end_ts_ns=now_ns - 1_000_000_000)
    envelopes = [Envelope(topic, payload, now_ns) for topic, payload in frames_of(batches)]
    best = {"prepare_s": float("inf"), "triage_s": float("inf"), "latest_signals_s": float("inf")}
    for _ in range(repeats):
        t0 = time.perf_counter()
        prepared, consumed = prepare_isolated(envelopes, prepare_flush)
        t1 = time.perf_counter()
        triage(envelopes)
        t2 = time.perf_counter()
        latest_signals(prepared)
        t3 = time.perf_counter()
        assert consumed == messages and len(prepared.accepted) == messages, "every message must be accepted"
        best["prepare_s"] = min(best["prepare_s"], t1 - t0)
        best["triage_s"] = min(best["triage_s"], t2 - t1)
        best["latest_signals_s"] = min(best["latest_signals_s"], t3 - t2)
    return {
        "messages": messages,
        "rows_per_message": rows,
        "vehicles": vehicles,
        **{k: round(v, 4) for k, v in best.items()},
        "us_per_message": round(best["prepare_s"] / messages * 1e6, 1),
    }


if __name__ == "__main__":
    import json
    import sys

    args = [int(a) for a in sys.argv[1:]]
    print(json.dumps(run_prepare_micro(*args)))
