"""The disk queue: bounded bytes on disk (database + WAL + shm) with the documented drop policy,
sequence numbers that survive restarts, committed-only reads, a full disk that is not corruption,
corrupt files moved aside under names that never collide, and a too-small bound refused at start."""

from __future__ import annotations

import itertools
import logging
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent import spool_files
from edge_agent.config import ConfigError, load_config
from edge_agent.spool import DiskQueue, Drop
from edge_agent.spool_budget import MIN_MAX_BYTES, SpoolBudget
from edge_agent.spool_errors import classify
from edge_agent.spool_router import Spool
from tests.edge_agent.conftest import fill_up

MIB = 1024 * 1024


def sqlite_error(code: int, name: str, message: str) -> sqlite3.Error:
    """An error as SQLite raises it (Python 3.11+ sets these two attributes)."""
    exc = sqlite3.OperationalError(message) if code == sqlite3.SQLITE_FULL else sqlite3.DatabaseError(message)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    return exc


def corrupt_error() -> sqlite3.Error:
    return sqlite_error(sqlite3.SQLITE_CORRUPT, "SQLITE_CORRUPT", "database disk image is malformed")


def test_entries_survive_reopen_with_their_seq(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", MIB)
    seqs = [q.next_seq() for _ in range(3)]
    for s in seqs:
        q.put("telemetry", f"batch-{s}".encode(), priority=0, samples=5, seq=s)
    assert q.read(0, None, 10) == []  # not committed yet: never sent
    q.commit()
    q.close()
    q2 = DiskQueue(tmp_path / "q.sqlite", MIB)
    entries = q2.read(0, None, 10)
    assert [e.seq for e in entries] == seqs
    assert [e.payload for e in entries] == [f"batch-{s}".encode() for s in seqs]
    assert q2.next_seq() > seqs[-1]  # a new batch never reuses a number
    q2.remove([entries[0].id])
    q2.commit()
    assert [e.seq for e in q2.read(0, None, 10)] == seqs[1:]
    assert q2.rows == 2


def test_uncommitted_entries_are_lost_but_numbers_are_not_reused(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", MIB)
    committed = q.next_seq()
    q.put("telemetry", b"a", priority=0, samples=1, seq=committed)
    q.commit()
    handed_out = [q.next_seq() for _ in range(1000)]  # e.g. batches held in memory, then a crash
    q.put("telemetry", b"b", priority=0, samples=1, seq=handed_out[-1])  # a crash before commit
    q._conn.close()  # simulate SIGKILL: no commit, no close
    q2 = DiskQueue(tmp_path / "q.sqlite", MIB)
    assert [e.payload for e in q2.read(0, None, 10)] == [b"a"]
    assert q2.next_seq() > handed_out[-1]  # covered by the reservation committed with "a"


def _fill(
    q: DiskQueue, priority: int, size: int, drops: list[Drop], until_drop: bool, n: int = 200
) -> list[int]:
    """Put entries of `priority` one transaction each; returns the ids kept. Stops at the first
    drop if `until_drop`."""
    ids = []
    for _ in range(n):
        before = q.next_id
        kept = q.put("telemetry", bytes([priority]) * size, priority=priority, samples=1, seq=q.next_seq())
        q.commit()
        drops.extend(q.last_drops)
        if kept:
            ids.append(before)
        if until_drop and q.last_drops:
            break
    return ids


def test_full_queue_drops_oldest_low_priority_first_and_counts(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", MIN_MAX_BYTES)
    drops: list[Drop] = []
    size = q.budget.max_entry_bytes // 2
    triggers = _fill(q, 1, size, drops, until_drop=False, n=10)
    periodic = _fill(q, 0, size, drops, until_drop=True)
    assert drops and all(d.priority == 0 for d in drops)
    assert [d.id for d in drops] == periodic[: len(drops)]  # the oldest periodic batches first
    _fill(q, 0, size, drops, until_drop=False, n=30)  # sustained: still only periodic data goes
    assert {d.priority for d in drops} == {0}
    dtcs = _fill(q, 2, size, drops, until_drop=False, n=60)  # DTCs push out periodic, then triggers
    held = {e.id: e.priority for e in q.read(0, None, 1000)}
    assert not any(p == 0 for p in held.values())
    trigger_drops = [d.id for d in drops if d.priority == 1]
    assert trigger_drops == triggers[: len(trigger_drops)]  # oldest first
    assert all(i in held for i in dtcs)  # no DTC was dropped while a lower priority was there
    before = len(drops)
    assert not q.put("telemetry", b"x" * size, priority=0, samples=1)  # only higher priorities left
    q.commit()
    assert len(drops) + len(q.last_drops) == before + 1 and q.last_drops[0].id == 0  # itself
    drops.extend(q.last_drops)
    c = q.counters
    assert c["dropped_batches"] == len(drops) and c["dropped_samples"] == len(drops)
    assert c["dropped_bytes"] == size * len(drops)
    assert not q.put("telemetry", b"x" * (q.budget.max_entry_bytes + 1), priority=2, samples=1)
    assert q.file_bytes() <= q.max_bytes


def test_corrupt_file_is_moved_aside_and_a_new_queue_starts(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    q = DiskQueue(path, MIB)
    q.put("telemetry", b"x", priority=0, samples=1, seq=q.next_seq())
    q.commit()
    q.close()
    data = bytearray(path.read_bytes())
    data[0:100] = b"\xff" * 100  # smash the header
    path.write_bytes(bytes(data))
    before_us = time.time_ns() // 1000
    q2 = DiskQueue(path, MIB)
    assert len(q2.corrupt_files) == 1 and q2.corrupt_files[0].exists()
    assert q2.rows == 0 and q2.read(0, None, 10) == []
    assert q2.next_seq() >= before_us  # still above any number the lost file handed out
    q2.put("telemetry", b"y", priority=0, samples=1)
    q2.commit()


def test_recover_during_use_keeps_counters_and_numbers(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", MIB)
    seq = q.next_seq()
    q.put("telemetry", b"z", priority=0, samples=1, seq=seq)
    q.commit()
    q.count_drop(Drop(0, 0, 7, 70, False, "memory"))
    q.commit()
    last_id = q.next_id - 1
    q.recover(corrupt_error())
    assert q.corrupt_files and q.rows == 0
    assert q.counters["dropped_samples"] == 7
    assert q.next_seq() > seq and q.next_id > last_id
    q.put("telemetry", b"z", priority=0, samples=1)
    q.commit()


def test_sqlite_full_is_not_corruption(tmp_path: Path) -> None:
    """A real SQLITE_FULL (the database may not grow: PRAGMA max_page_count) during use: the spool
    keeps its file, holds new batches in memory, publishes them from there, and spills them in
    order with their numbers once the database may grow again. Nothing is moved aside."""
    clock = [0.0]
    spool = Spool(tmp_path / "q.sqlite", MIB, clock=lambda: clock[0])
    put = []
    for i in range(3):
        seq = spool.next_seq()
        spool.put("telemetry", b"d" * 2000, priority=0, samples=i, seq=seq)
        put.append(seq)
    spool.commit()
    assert spool.disk is not None
    (pages,) = spool.disk._conn.execute("PRAGMA page_count").fetchone()
    spool.disk._conn.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(sqlite3.Error) as info:  # what SQLite itself raises now
        spool.disk._conn.execute(
            "INSERT INTO queue (kind, priority, seq, samples, payload) VALUES ('x', 0, 0, 0, ?)",
            (b"x" * 9000,),
        )
    assert classify(info.value) == "full" and info.value.sqlite_errorname == "SQLITE_FULL"
    spool.disk.rollback()
    for i in range(3, 30):  # the free pages it owns take a few, then the database must grow
        seq = spool.next_seq()
        spool.put("telemetry", b"m" * 2000, priority=0, samples=i, seq=seq)
        put.append(seq)
        spool.commit()
        if spool.state != "ok" and spool.memory.rows >= 3:
            break
    assert spool.state == "disk_full" and spool.memory.rows >= 3
    assert spool.corrupt_files == [] and not list(tmp_path.glob("*.corrupt-*"))
    held = spool.read(0, None, 100)
    assert [e.seq for e in held] == put  # disk and memory together, in order
    on_disk = len(put) - spool.memory.rows
    assert [e.in_memory for e in held] == [False] * on_disk + [True] * spool.memory.rows
    acked = [held[0], held[-1]]  # one on disk (kept until it can be deleted), one in memory
    spool.remove([e.id for e in acked])
    left = [s for s in put if s not in {e.seq for e in acked}]
    assert [e.seq for e in spool.read(0, None, 100)] == left
    spool.disk._conn.execute("PRAGMA max_page_count=1073741823")
    spool.commit()  # not due yet: still in memory
    assert spool.state == "disk_full"
    clock[0] += 10
    spool.commit()
    assert spool.state == "ok" and spool.memory.empty
    spool.close()
    reopened = DiskQueue(tmp_path / "q.sqlite", MIB)
    assert [e.seq for e in reopened.read(0, None, 100)] == left  # spilled, with the same seqs
    assert reopened.next_seq() > put[-1]


def test_full_filesystem_is_not_corruption(tmp_path: Path, small_fs: Callable[[int], Path]) -> None:
    """A full disk, on a real 1 MiB filesystem (ENOSPC under SQLite) with the default bound,
    bigger than the filesystem: the spool keeps its file, goes on in memory, and after the filler
    is deleted every entry is on disk, in order, with its seq; nothing is moved aside."""
    fs = small_fs(MIB)
    clock = [0.0]
    spool = Spool(fs / "state" / "queue.sqlite", 64 * MIB, clock=lambda: clock[0])
    put: list[int] = []

    def flush(n: int) -> None:
        for _ in range(n):
            seq = spool.next_seq()
            spool.put("telemetry", random.randbytes(1500), priority=0, samples=1, seq=seq)
            put.append(seq)
            spool.stage(random.randbytes(300), 1)
            spool.commit()

    flush(20)
    assert spool.state == "ok"
    filler = fill_up(fs)
    for _ in range(100):
        flush(1)
        clock[0] += 1
        if spool.state != "ok" and spool.memory.rows >= 5:
            break
    assert spool.state == "disk_full" and spool.disk is not None
    assert spool.corrupt_files == [] and not list(fs.rglob("*.corrupt-*"))
    assert [e.seq for e in spool.read(0, None, 1000)] == put  # disk and memory, nothing unreadable
    clock[0] += 10
    spool.commit()  # the retry finds the disk still full
    assert spool.state == "disk_full"
    filler.unlink()
    clock[0] += 10
    flush(1)
    assert spool.state == "ok" and spool.memory.empty
    staged = len(spool.staged())
    spool.close()
    reopened = DiskQueue(fs / "state" / "queue.sqlite", 64 * MIB)
    assert [e.seq for e in reopened.read(0, None, 1000)] == put
    assert len(reopened.staged()) == staged == len(put)
    assert reopened.counters["dropped_batches"] == reopened.counters["dropped_chunks"] == 0
    reopened.close()


def test_two_corruptions_in_the_same_second_make_two_readable_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_files.time, "time_ns", lambda: 1_800_000_000_000_000_000)  # same instant
    monkeypatch.setattr(spool_files, "_counter", itertools.count())
    decoy = tmp_path / "q.sqlite.corrupt-1800000000000000000-0"  # the first name it would pick
    decoy.write_bytes(b"an earlier file of someone else")
    q = DiskQueue(tmp_path / "q.sqlite", MIB)
    moved = []
    for batch in (b"first", b"second"):
        q.put("telemetry", batch, priority=0, samples=1, seq=q.next_seq())
        q.commit()  # in the WAL: the case that lost data when the WAL was overwritten
        q.recover(corrupt_error())
        moved.append(q.corrupt_files[-1])
    assert len(set(moved)) == 2 and decoy not in moved
    assert decoy.read_bytes() == b"an earlier file of someone else"
    for path, batch in zip(moved, (b"first", b"second"), strict=True):
        with sqlite3.connect(path) as conn:  # readable, with its own WAL moved along
            assert conn.execute("SELECT payload FROM queue").fetchall() == [(batch,)]
    q.close()


def test_wal_and_files_stay_within_max_bytes_under_sustained_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files measured on disk, through the spool the agent uses: at their peak (just before
    each checkpoint, and after each commit) queue.sqlite + -wal + -shm never exceed max_bytes, and
    the WAL never its budget, while the bound is hit again and again."""
    rng = random.Random(5)
    budget = SpoolBudget.of(MIN_MAX_BYTES)
    spool = Spool(tmp_path / "q.sqlite", MIN_MAX_BYTES)
    peaks: list[tuple[int, int]] = []
    real_checkpoint = DiskQueue.checkpoint

    def measured_checkpoint(self: DiskQueue) -> bool:
        peaks.append((self.file_bytes(), self.wal_file_bytes()))
        return real_checkpoint(self)

    monkeypatch.setattr(DiskQueue, "checkpoint", measured_checkpoint)
    drops: list[Drop] = []
    spool.on_drop = drops.append
    for _ in range(500):
        for _ in range(rng.randint(1, 3)):
            size = rng.randint(100, budget.max_entry_bytes)
            prio = rng.choice((0, 0, 0, 1, 2))
            spool.put("telemetry", rng.randbytes(size), priority=prio, samples=1, seq=spool.next_seq())
        spool.stage(rng.randbytes(rng.randint(100, 2000)), 1)
        if rng.random() < 0.2:  # a cut: the staged chunks become one batch
            with spool.atomic():
                staged = spool.staged()
                spool.put(
                    "telemetry", rng.randbytes(3000), priority=0, samples=len(staged), seq=spool.next_seq()
                )
                spool.unstage([i for i, _ in staged])
        if rng.random() < 0.3:  # the broker acknowledged the oldest few
            spool.remove([e.id for e in spool.read(0, None, rng.randint(1, 5))])
        spool.commit()
        peaks.append((spool.file_bytes(), spool.disk.wal_file_bytes() if spool.disk else 0))
    assert spool.state == "ok" and len(drops) > 50  # the bound was reached many times
    assert max(total for total, _ in peaks) <= MIN_MAX_BYTES
    assert max(wal for _, wal in peaks) <= budget.wal_bytes
    print(f"peak on disk: {max(t for t, _ in peaks)} of {MIN_MAX_BYTES}; WAL {max(w for _, w in peaks)}")


def _write_config(tmp_path: Path, queue: str, sampling: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[vehicle]\nid = "V1"\n[broker]\nurl = "mqtt://h:1883"\n[queue]\n{queue}\n{sampling}')
    return path


def test_too_small_max_bytes_is_rejected_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="max_bytes = 100000 is below the minimum"):
        load_config(_write_config(tmp_path, "max_bytes = 100000"), {})
    ten_hz = "[sampling]\nbase_rate_hz = 10.0\ndefault_period_ms = 100\nbatch_interval_s = 60.0"
    with pytest.raises(ConfigError, match="too small for batches"):  # one batch does not fit twice
        load_config(_write_config(tmp_path, "max_bytes = 1048576", ten_hz), {})
    with pytest.raises(ValueError, match="below the minimum"):  # the spool itself refuses it too
        Spool(tmp_path / "q.sqlite", 100_000)
    with caplog.at_level(logging.WARNING, logger="edge_agent.config"):
        barely = load_config(
            _write_config(tmp_path, "max_bytes = 2097152", ten_hz.replace("60.0", "30.0")), {}
        )
    assert barely.queue_max_bytes == 2097152
    assert "holds only about" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge_agent.config"):
        load_config(_write_config(tmp_path, "max_bytes = 67108864", ten_hz), {})
    assert caplog.text == ""
    proc = subprocess.run(  # the service (systemd's entry) refuses to start: exit code 2, and why
        [sys.executable, "-m", "edge_agent", "--config", str(_write_config(tmp_path, "max_bytes = 100000"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "max_bytes = 100000 is below the minimum" in proc.stderr


def test_staged_chunks_and_their_batch_swap_atomically(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", MIB)
    q.stage(b"chunk-1", 3)
    q.stage(b"chunk-2", 4)
    q.commit()
    ids = [i for i, _ in q.staged()]
    q.put("telemetry", b"merged", priority=0, samples=7, seq=q.next_seq())
    q.unstage(ids)
    q._conn.close()  # crash before the commit: the chunks are still there, the batch is not
    q2 = DiskQueue(tmp_path / "q.sqlite", MIB)
    assert [p for _, p in q2.staged()] == [b"chunk-1", b"chunk-2"]
    assert q2.read(0, None, 10) == []
