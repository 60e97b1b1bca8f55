"""`fleet bench ingest`: ingest throughput against the raw COPY rate, and latency at half load.

Owns: the benchmark's orchestration, in one run against a private Mosquitto and a real PostgreSQL
(FLEET_DATABASE_URL, or a fresh embedded one):
1. raw: the same kind of rows, encoded once, written by binary COPY in flush-sized transactions on
   one connection -- the ceiling for this database on this machine. It runs twice, before and
   after the drain, and the ceiling is the mean of the two: a COPY into a fuller table is slower,
   so running it only before would favour the raw side and only after would favour ingest. Each
   phase starts after a CHECKPOINT, so that no phase pays for the previous one's WAL;
2. drain: N batches are published to ingest's persistent session while ingest is down; then
   `fleet ingest` starts as its own process and the time from its first received message to its
   last commit is measured. The first message is caught by polling its Prometheus counter every
   2 ms (ingest is idle then); the end is ingest's own last-commit timestamp gauge, so the end can
   be polled slowly and the scraping does not steal CPU from the drain it measures;
3. half load: batches are published at half the drain rate, each stamped with its publish time,
   and the commit-minus-sample-time histogram gives p50/p99 sample-to-row latency.
During the drain, the CPU seconds of ingest (all its processes), PostgreSQL (the server and its
backends) and Mosquitto (`cpu`), the seconds per statement of ingest's transactions and the load
average, which together say what the drain was waiting on.
Before the drain, the broker's own QoS 1 rate on the same messages (`broker_baseline`): plain paho
subscribers with manual ack and no processing, one per worker, whose persistent sessions were
opened with ingest's before publishing, so the broker queued the same messages for both.
It checks that every published row is stored exactly once. Reported, not asserted: the
targets ratio = samples_per_s / raw_copy_samples_per_s >= 0.7, and broker_ratio = ingest's
messages/s / the baseline's >= 0.7 with one worker, >= 0.9 with more (issue 14).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from benchmarks.ingest import broker_baseline, cpu
from benchmarks.ingest.fleetdata import (
    BENCH_SIGNALS,
    FramePublisher,
    frames_of,
    make_batches,
    open_persistent_session,
    paced_batches,
    stampable_frames,
)
from benchmarks.ingest.harness import (
    delete_vehicles,
    start_ingest,
    start_servers,
    stop_process,
    wait_for_metrics,
)
from benchmarks.ingest.prom import histogram_buckets, quantile, scrape_all
from contract import accounts
from ingest.copy_binary import encode_copy_binary, rows_from_batches
from ingest.service import IngestConfig
from ingest.store import COPY_SQL
from localservers.embedded import free_port


@dataclass(frozen=True)
class BenchConfig:
    database_url: str | None = None
    batches: int = 2_000
    rows_per_batch: int = 600  # 10 Hz for a minute, 12 signals: one upload of a FleetWise-like agent
    vehicles: int = 1_000
    workers: int = 1
    flush_messages: int | None = None  # None: what ingest's default byte cap gives for these frames
    half_load_s: float = 5.0
    mosquitto: str | None = None
    metrics_port: int = 0  # 0 = pick free ports
    keep_data: bool = False


def run_ingest_bench(cfg: BenchConfig) -> dict:
    """Run the three phases and return the report. Raises RuntimeError when a phase cannot finish."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-bench-")))
        db_url, broker, migrated = start_servers(stack, tmp, cfg.database_url, cfg.mosquitto)
        mode = migrated.mode.value
        with psycopg.connect(db_url) as conn:
            server_version = conn.execute("SHOW server_version").fetchone()
        run = f"{time.time_ns() // 1000 % 10**7:07d}"
        if not cfg.keep_data:
            stack.callback(_delete_run, db_url, run)
        samples_per_batch = cfg.rows_per_batch * len(BENCH_SIGNALS)
        expected = cfg.batches * samples_per_batch
        end_ns = time.time_ns() - 60 * 10**9

        frames = frames_of(
            make_batches(f"D{run}", cfg.batches, cfg.rows_per_batch, cfg.vehicles, end_ts_ns=end_ns, seed=2)
        )
        per_flush = cfg.flush_messages or _messages_per_flush(frames)
        checkpoints = _checkpoint(db_url)
        raw_before_s = _raw_copy(
            db_url,
            make_batches(f"R{run}", cfg.batches, cfg.rows_per_batch, cfg.vehicles, end_ts_ns=end_ns),
            per_flush,
        )

        client_id = f"{accounts.INGEST}-bench-{run}"  # in ingest's namespace (contract.accounts)
        group = "bench" if cfg.workers > 1 else None
        ids = [accounts.worker_login(client_id, i) for i in range(cfg.workers)] if group else [client_id]
        baseline_ids = [f"{client_id}-broker-baseline-{i}" for i in range(cfg.workers)]
        # Each side has its own share group: in one group the broker would split the messages
        # between ingest's workers and the baseline's subscribers, and neither would get them all.
        baseline_group = f"{group}-baseline" if group else None
        for session in ids:  # both queue the same messages from here on
            open_persistent_session(broker.url, session, group)
        for session in baseline_ids:
            open_persistent_session(broker.url, session, baseline_group)
        publisher = FramePublisher(broker.url, f"{accounts.SIMULATOR}-bench-{run}")
        stack.callback(publisher.close)
        publisher.publish_all(frames)
        if not publisher.wait_acked(300):
            raise RuntimeError("the broker did not acknowledge the pre-published batches")

        baseline = broker_baseline.measure(
            broker.url, baseline_ids, baseline_group, cfg.batches, timeout_s=600
        )

        base = cfg.metrics_port or free_port()
        ports = [base + i for i in range(cfg.workers)]  # `fleet ingest` gives worker i port base + i
        checkpoints &= _checkpoint(db_url)
        options = ["--max-buffer-messages", str(per_flush), "--workers", str(cfg.workers)]
        options += ["--share-group", group] if group else []
        ingest = start_ingest(db_url, broker.url, client_id, ports[0], tmp / "ingest.log", *options)
        stack.callback(stop_process, ingest)
        processes = {
            "ingest": ingest.pid,
            "postgres": cpu.postgres_server_pid(db_url),
            "mosquitto": broker.pid,
        }
        first = wait_for_metrics(
            lambda m: m.get("fleet_ingest_messages_total", 0) > 0, ports, 120, poll_s=0.002
        )
        cpu_first = cpu.snapshot(processes)
        load_first = _load_average()
        wait_for_metrics(
            lambda m: m.get("fleet_ingest_samples_total", 0) >= expected, ports, 600, poll_s=0.25
        )
        drain_cpu = cpu.spent(cpu_first, cpu.snapshot(processes))
        at_drain = scrape_all(ports)
        drain_s = at_drain.get("fleet_ingest_last_commit_timestamp_seconds", 0.0) - first
        rate = expected / drain_s

        stored, distinct = _count_rows(db_url, f"D{run}-%")
        checkpoints &= _checkpoint(db_url)
        raw_after_s = _raw_copy(
            db_url,
            make_batches(f"A{run}", cfg.batches, cfg.rows_per_batch, cfg.vehicles, end_ts_ns=end_ns),
            per_flush,
        )
        raw_s = (raw_before_s + raw_after_s) / 2
        raw_rate = expected / raw_s
        half = _half_load(broker.url, run, cfg, ports, rate / 2, publisher)
        duplicates = scrape_all(ports).get("fleet_ingest_duplicate_batches_total", 0.0)
        return {
            "config": asdict(cfg) | {"database_url": "(given)" if cfg.database_url else "(embedded)"},
            "storage_mode": mode,
            "postgres": server_version[0] if server_version else "?",
            "signals_per_row": len(BENCH_SIGNALS),
            "samples": expected,
            "raw_copy_s": round(raw_s, 3),
            "raw_copy_before_s": round(raw_before_s, 3),
            "raw_copy_after_s": round(raw_after_s, 3),
            "checkpoint_before_each_phase": checkpoints,
            "raw_copy_samples_per_s": round(raw_rate),
            "raw_copy_rows_per_s": round(raw_rate / len(BENCH_SIGNALS)),
            "drain_s": round(drain_s, 3),
            "samples_per_s": round(rate),
            "rows_per_s": round(rate / len(BENCH_SIGNALS)),
            "ratio": round(rate / raw_rate, 3),
            "ratio_vs_raw_before": round(rate / (expected / raw_before_s), 3),
            "target_ratio": 0.7,
            "messages": cfg.batches,
            "messages_per_s": round(cfg.batches / drain_s),
            "broker_baseline": baseline,
            "broker_ratio": round(cfg.batches / drain_s / baseline["messages_per_s"], 3),
            "target_broker_ratio": 0.7 if cfg.workers == 1 else 0.9,
            "drain_cpu_s": drain_cpu,
            "load_average_at_drain": load_first,
            "drain_statement_s": {
                key.removeprefix(_STATEMENT_SUM).removesuffix("}"): round(value, 3)
                for key, value in at_drain.items()
                if key.startswith(_STATEMENT_SUM)
            },
            "drain_flushes": int(at_drain.get("fleet_ingest_flush_seconds_count", 0)),
            "drain_prepare_s": round(at_drain.get("fleet_ingest_prepare_seconds_sum", 0), 3),
            "drain_store_s": round(at_drain.get("fleet_ingest_flush_seconds_sum", 0), 3),
            "messages_per_flush": per_flush,
            "half_load": half,
            "drain_rows_stored": stored,
            "drain_rows_expected": cfg.batches * cfg.rows_per_batch,
            "drain_rows_distinct": distinct,
            "duplicate_batches": int(duplicates),
        }
    raise AssertionError("unreachable")


_STATEMENT_SUM = "fleet_ingest_store_statement_seconds_sum{statement="


def _load_average() -> float | None:
    """The 1-minute load average (the machine is shared: a busy one slows every phase)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _messages_per_flush(frames: list[tuple[str, bytes]]) -> int:
    """How many of these frames ingest's default byte cap puts into one flush."""
    average = sum(len(p) for _, p in frames) / max(len(frames), 1)
    return max(1, min(IngestConfig.max_buffer_messages, int(IngestConfig.max_buffer_bytes // average)))


def _raw_copy(db_url: str, batches: list, per_flush: int) -> float:
    chunks = [
        encode_copy_binary(rows_from_batches(batches[i : i + per_flush]))
        for i in range(0, len(batches), per_flush)
    ]
    with psycopg.connect(db_url) as conn:
        started = time.perf_counter()
        for data in chunks:
            with conn.transaction(), conn.cursor().copy(COPY_SQL) as copy:
                copy.write(data)
        return time.perf_counter() - started


def _half_load(
    url: str, run: str, cfg: BenchConfig, ports: list[int], samples_per_s: float, publisher: FramePublisher
) -> dict:
    rate = samples_per_s / (cfg.rows_per_batch * len(BENCH_SIGNALS))
    n = max(1, int(rate * cfg.half_load_s))
    start = time.time() + 1.0
    first_seq = -(-cfg.batches // cfg.vehicles) + 1
    frames = stampable_frames(
        paced_batches(
            f"D{run}",
            n,
            cfg.rows_per_batch,
            cfg.vehicles,
            start_s=start,
            rate_per_s=rate,
            first_seq=first_seq,
        )
    )
    before = scrape_all(ports)
    lateness = publisher.publish_stamped(frames, start, rate)
    publisher.wait_acked(60)
    target = before.get("fleet_ingest_samples_total", 0) + n * cfg.rows_per_batch * len(BENCH_SIGNALS)
    wait_for_metrics(lambda m: m.get("fleet_ingest_samples_total", 0) >= target, ports, 120, poll_s=0.05)
    after = scrape_all(ports)
    b, a = (
        histogram_buckets(before, "fleet_ingest_lag_seconds"),
        histogram_buckets(after, "fleet_ingest_lag_seconds"),
    )
    p50, p99 = quantile(b, a, 0.5), quantile(b, a, 0.99)
    return {
        "samples_per_s": round(samples_per_s),
        "batches_per_s": round(rate, 1),
        "batches": n,
        "p50_latency_ms": round(p50 * 1000, 1) if p50 is not None else None,
        "p99_latency_ms": round(p99 * 1000, 1) if p99 is not None else None,
        "publisher_worst_lateness_ms": round(lateness * 1000, 1),
        "latency": "commit time minus the newest sample of each batch, stamped when it was published; "
        "interpolated in fleet_ingest_lag_seconds buckets",
    }


def _checkpoint(db_url: str) -> bool:
    """Flush dirty pages and start a fresh WAL segment, so that a checkpoint forced by the previous
    phase's WAL does not land inside the next one. False when not allowed (needs pg_checkpoint)."""
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        return True
    except psycopg.Error:
        return False


def _count_rows(db_url: str, pattern: str) -> tuple[int, int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (vehicle_id, ts)) FROM telemetry WHERE vehicle_id LIKE %s",
            (pattern,),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _delete_run(db_url: str, run: str) -> None:
    prefixes = tuple(f"{kind}{run}-%" for kind in "RADH")
    delete_vehicles(db_url, prefixes, ("telemetry", "ingest_batches", "vehicles"))
