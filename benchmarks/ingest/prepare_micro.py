"""Micro-benchmark of ingest's CPU half: decoding, checking and preparing one flush of small messages.

Owns: `fleet bench ingest-prepare`'s measurement (issue 14): N messages of R rows (12 FLOAT32 signals,
as `fleet bench ingest` sends, zlib as the encoder chooses) from V vehicles go through
`ingest.preparation.prepare_isolated` with `ingest.flush.prepare_flush`, best of a few repeats
(wall and CPU time: the machine is shared), with
the decode (`triage`) and the last-known state (`latest_state`, with the JSON text the store
sends) also timed apart. No broker, no database: what the service does in its worker thread for
one flush.
"""

from __future__ import annotations

import time

from benchmarks.ingest.fleetdata import frames_of, make_batches
from ingest.flush import prepare_flush
from ingest.latest_state import latest_state
from ingest.pipeline import Envelope, triage
from ingest.preparation import prepare_isolated


def run_prepare_micro(messages: int = 2000, rows: int = 10, vehicles: int = 2000, repeats: int = 5) -> dict:
    """Seconds (best of `repeats`) to prepare one flush of `messages` frames, and its parts."""
    now_ns = time.time_ns()
    batches = make_batches("MICRO", messages, rows, vehicles, end_ts_ns=now_ns - 1_000_000_000)
    envelopes = [Envelope(topic, payload, now_ns) for topic, payload in frames_of(batches)]
    names = ("prepare_s", "prepare_cpu_s", "triage_cpu_s", "latest_state_cpu_s")
    best = dict.fromkeys(names, float("inf"))
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        prepared, consumed = prepare_isolated(envelopes, prepare_flush)
        t1, c1 = time.perf_counter(), time.process_time()
        triage(envelopes)
        c2 = time.process_time()
        latest_state(prepared).documents()
        c3 = time.process_time()
        if consumed != messages or len(prepared.accepted) != messages:
            raise RuntimeError("every message of the micro-benchmark must be accepted")
        for name, took in zip(names, (t1 - t0, c1 - c0, c2 - c1, c3 - c2), strict=True):
            best[name] = min(best[name], took)
    return {
        "messages": messages,
        "rows_per_message": rows,
        "vehicles": vehicles,
        **{k: round(v, 4) for k, v in best.items()},
        "cpu_us_per_message": round(best["prepare_cpu_s"] / messages * 1e6, 1),
    }
