"""`fleet bench inflation`: ingest's peak memory under flushes of maximally inflating frames.

Owns: building the frames that cost ingest the most memory per wire byte, running the real
`fleet ingest` process on them, and reading its peak resident memory (the kernel's VmHWM). One run,
against a private Mosquitto and a real PostgreSQL (FLEET_DATABASE_URL, or a fresh embedded one):
the frames are pre-published to ingest's persistent session while it is down, then ingest drains
them. Three kinds, interleaved:
- bombs: ~4 KiB zlib frames whose body inflates past the limit; each makes ingest inflate the
  limit (1 MiB) before it rejects the frame (`oversized`);
- sparse wide frames: valid, ~3 KiB on the wire, a body just under 1 MiB (allowed at any ratio)
  of 74,000 rows with one of 46 signals present per row: the most decoded data a valid frame can
  buy per wire byte (~100 MB by ingest's flush-memory estimate, 75 MB measured);
- largest frames: valid, MAX_ROWS rows cycling through all 50 signals with random values, ~450 KiB
  on the wire (a 1.5 MB body at ~3:1): the largest flush one frame can make (140 MB estimated);
- ordinary frames (600 rows x 12 signals), which must all be stored.
It checks that every valid row is stored and every bomb dead-lettered, and reports the peak RSS
against the bound documented in docs/scaling.md.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psutil
import psycopg

from benchmarks.ingest.fleetdata import FramePublisher, frames_of, make_batches, open_persistent_session
from benchmarks.ingest.harness import (
    delete_vehicles,
    start_ingest,
    start_servers,
    stop_process,
    wait_for_metrics,
)
from benchmarks.ingest.prom import scrape_all
from contract import TelemetryBatch, topics, wire_v1
from contract.signals import SIGNALS, WireType
from ingest.pipeline import flush_memory_bytes
from localservers.embedded import free_port

WIDE_SIGNALS = tuple(s for s in SIGNALS if s.wire_type is not WireType.BOOL)
WIDE_ROWS = 74_000  # with one value per row, as many rows as fit a 1 MiB body


@dataclass(frozen=True)
class InflationConfig:
    database_url: str | None = None
    bombs: int = 1_000
    wide: int = 60
    largest: int = 6
    ordinary: int = 200
    max_flush_memory_mib: int = 64
    mosquitto: str | None = None


def bomb_frame(vehicle: str, seq: int, now_us: int) -> bytes:
    """A valid-looking header, then zeros: inflates past max(1 MiB, 64x) and is rejected."""
    head = bytes([len(vehicle)]) + vehicle.encode() + wire_v1.BODY_FIXED.pack(seq, 1, 0)
    body = head + now_us.to_bytes(8, "little", signed=True) + b"\x00" * (4 << 20)
    packed = zlib.compress(body, 9)
    return wire_v1.HEADER.pack(wire_v1.MAGIC, wire_v1.VERSION, wire_v1.FLAG_ZLIB, len(packed)) + packed


def wide_batch(vehicle: str, seq: int, start_us: int) -> TelemetryBatch:
    """As many rows as fit a 1 MiB body, each with one of the non-boolean signals present."""
    n_rows = WIDE_ROWS
    row = np.arange(n_rows)
    columns = {}
    for k, signal in enumerate(WIDE_SIGNALS):
        values = np.full(n_rows, np.nan)
        values[row % len(WIDE_SIGNALS) == k] = (signal.min_value + signal.max_value) / 2
        columns[signal.vss_path] = values
    ts_ns = (start_us + row.astype(np.int64) * 1000) * 1000
    return TelemetryBatch(vehicle, seq, ts_ns, columns)


def largest_batch(vehicle: str, seq: int, start_us: int, seed: int) -> TelemetryBatch:
    """MAX_ROWS rows, one value per row cycling through every signal of the catalogue."""
    rng = np.random.default_rng(seed)
    n_rows = wire_v1.MAX_ROWS
    row = np.arange(n_rows)
    columns = {}
    for k, signal in enumerate(SIGNALS):
        values = np.full(n_rows, np.nan)
        mine = row % len(SIGNALS) == k
        if signal.wire_type is WireType.BOOL:
            values[mine] = rng.integers(0, 2, int(mine.sum()))
        else:
            values[mine] = rng.uniform(signal.min_value, signal.max_value, int(mine.sum()))
        columns[signal.vss_path] = values
    ts_ns = (start_us + row.astype(np.int64) * 1000) * 1000
    return TelemetryBatch(vehicle, seq, ts_ns, columns)


def run_inflation_bench(cfg: InflationConfig) -> dict:
    """Run the drain and return the report. Raises RuntimeError when ingest cannot finish."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-bench-inflation-")))
        db_url, broker, _ = start_servers(stack, tmp, cfg.database_url, cfg.mosquitto)
        run = f"I{time.time_ns() // 1000 % 10**7:07d}"
        stack.callback(_delete_run, db_url, run)
        now_us = time.time_ns() // 1000
        wide = [wide_batch(f"{run}-W{i:04d}", 1, now_us - 600_000_000) for i in range(cfg.wide)]
        wide_frames = frames_of(wide)
        largest = [largest_batch(f"{run}-L{i:03d}", 1, now_us - 900_000_000, i) for i in range(cfg.largest)]
        largest_frames = frames_of(largest)
        bombs = [
            (topics.topic_for(f"{run}-B{i:05d}", topics.TELEMETRY), bomb_frame(f"{run}-B{i:05d}", 1, now_us))
            for i in range(cfg.bombs)
        ]
        ordinary = frames_of(
            make_batches(f"{run}-O", cfg.ordinary, 600, cfg.ordinary, end_ts_ns=now_us * 1000 - 60 * 10**9)
        )
        frames = _interleave(bombs, wide_frames, ordinary, largest_frames)
        client_id = f"fleet-ingest-bench-inflation-{run}"  # in ingest's namespace (contract.accounts)
        open_persistent_session(broker.url, client_id)
        publisher = FramePublisher(broker.url, f"fleet-simulator-bench-{run}")
        stack.callback(publisher.close)
        publisher.publish_all(frames)
        if not publisher.wait_acked(300):
            raise RuntimeError("the broker did not acknowledge the pre-published frames")

        port = free_port()
        proc = start_ingest(
            db_url,
            broker.url,
            client_id,
            port,
            tmp / "ingest.log",
            FLEET_INGEST_MAX_FLUSH_MEMORY_MIB=str(cfg.max_flush_memory_mib),
        )
        stack.callback(stop_process, proc)
        wait_for_metrics(lambda m: True, [port], 60, 0.05)  # the metrics server answers: imports are done
        baseline = psutil.Process(proc.pid).memory_info().rss
        sampler = _RssSampler(proc.pid)
        sampler.start()
        started = time.monotonic()
        wait_for_metrics(lambda m: m.get("fleet_ingest_messages_total", 0) >= len(frames), [port], 900, 0.25)
        expected_rows = sum(b.n_rows for b in [*wide, *largest]) + cfg.ordinary * 600
        wait_for_metrics(
            lambda m: m.get("fleet_ingest_rows_total", 0) >= expected_rows
            and _dead_total(m) >= cfg.bombs,
            [port],
            900,
            0.25,
        )
        drain_s = time.monotonic() - started
        peak_hwm = _vm_hwm(proc.pid)
        sampler.stop()
        metrics = scrape_all([port])
        rows, dead = _outcome(db_url, run)
        cap = cfg.max_flush_memory_mib << 20
        biggest_frame = max(
            [flush_memory_bytes(b.n_rows, len(b.columns)) for b in [*wide, *largest]], default=0
        )
        wide_estimate = flush_memory_bytes(WIDE_ROWS, len(WIDE_SIGNALS))
        return {
            "config": asdict(cfg) | {"database_url": "(given)" if cfg.database_url else "(embedded)"},
            "frames": len(frames),
            "wire_bytes": sum(len(p) for _, p in frames),
            "bomb_wire_bytes": len(bombs[0][1]) if bombs else 0,
            "wide_frame_wire_bytes": len(wide_frames[0][1]) if wide_frames else 0,
            "wide_frame_memory_estimate_mb": round(wide_estimate / 2**20, 1),
            "largest_frame_wire_bytes": len(largest_frames[0][1]) if largest_frames else 0,
            "largest_frame_memory_estimate_mb": round(biggest_frame / 2**20, 1),
            "drain_s": round(drain_s, 2),
            "flushes": int(metrics.get("fleet_ingest_flush_seconds_count", 0)),
            "baseline_rss_mb": round(baseline / 2**20, 1),
            "peak_rss_mb": round(max(peak_hwm, sampler.peak) / 2**20, 1),
            "peak_rss_sampled_mb": round(sampler.peak / 2**20, 1),
            "documented_bound_mb": round(memory_bound_bytes(cap, biggest_frame, baseline) / 2**20, 1),
            "rows_stored": rows,
            "rows_expected": expected_rows,
            "dead_letters_by_reason": dead,
        }
    raise AssertionError("unreachable")


def memory_bound_bytes(max_flush_memory_bytes: int, largest_frame_bytes: int, baseline_bytes: int) -> int:
    """The bound documented in docs/scaling.md: the process at rest, plus three flushes (one being
    written, one prepared and queued, one being prepared), each at most the flush-memory cap or, when
    one frame alone is bigger, that frame; plus one body being inflated (at most 16 MiB) and what the
    broker has in flight to ingest (`max_inflight_bytes`, 64 MiB in our Mosquitto configuration)."""
    per_flush = max(max_flush_memory_bytes, largest_frame_bytes)
    return baseline_bytes + 3 * per_flush + (16 << 20) + (64 << 20)


def _interleave(*lists: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    longest = max(len(x) for x in lists)
    for i in range(longest):
        for x in lists:
            step = max(1, longest // max(len(x), 1))
            if i % step == 0 and i // step < len(x):
                out.append(x[i // step])
    return out


def _dead_total(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("fleet_ingest_dead_letters_total"))


class _RssSampler(threading.Thread):
    """Samples the process's resident memory every 20 ms (a cross-check of the kernel's VmHWM)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._process = psutil.Process(pid)
        self._stop_event = threading.Event()
        self.peak = 0

    def run(self) -> None:
        while not self._stop_event.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop_event.wait(0.02)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)


def _vm_hwm(pid: int) -> int:
    """The kernel's peak resident set of the process (bytes), 0 if it cannot be read."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _outcome(db_url: str, run: str) -> tuple[int, dict[str, int]]:
    pattern = (f"{run}-%",)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT count(*) FROM telemetry WHERE vehicle_id LIKE %s", pattern).fetchone()
        dead = conn.execute(
            "SELECT reason, count(*) FROM dead_letters WHERE vehicle_id LIKE %s GROUP BY 1", pattern
        ).fetchall()
    return (int(rows[0]) if rows else 0), {str(k): int(v) for k, v in dead}


def _delete_run(db_url: str, run: str) -> None:
    tables = ("telemetry", "ingest_batches", "vehicle_latest", "dead_letters", "vehicles")
    delete_vehicles(db_url, (f"{run}-%",), tables)
