"""The disk queue: bounded bytes with the documented drop policy, sequence numbers that survive
restarts, committed-only reads, and corrupt files moved aside."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from edge_agent.agent import _interleave
from edge_agent.spool import DiskQueue, Entry


def test_entries_survive_reopen_with_their_seq(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", 10_000)
    seqs = [q.next_seq() for _ in range(3)]
    for s in seqs:
        q.put("telemetry", f"batch-{s}".encode(), priority=0, samples=5, seq=s)
    assert q.read(0, None, 10) == []  # not committed yet: never sent
    q.commit()
    q.close()
    q2 = DiskQueue(tmp_path / "q.sqlite", 10_000)
    entries = q2.read(0, None, 10)
    assert [e.seq for e in entries] == seqs
    assert [e.payload for e in entries] == [f"batch-{s}".encode() for s in seqs]
    assert q2.next_seq() > seqs[-1]  # a new batch never reuses a number
    q2.remove([entries[0].id])
    q2.commit()
    assert [e.seq for e in q2.read(0, None, 10)] == seqs[1:]
    assert q2.rows == 2


def test_uncommitted_entries_are_lost_but_numbers_are_not_reused(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", 10_000)
    committed = q.next_seq()
    q.put("telemetry", b"a", priority=0, samples=1, seq=committed)
    q.commit()
    q.put("telemetry", b"b", priority=0, samples=1, seq=q.next_seq())  # a crash before commit
    q._conn.close()  # simulate SIGKILL: no commit, no close
    q2 = DiskQueue(tmp_path / "q.sqlite", 10_000)
    assert [e.payload for e in q2.read(0, None, 10)] == [b"a"]
    assert q2.next_seq() > committed


def test_full_queue_drops_oldest_low_priority_first_and_counts(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", 1000)
    q.put("telemetry", b"H" * 300, priority=1, samples=30)
    q.put("telemetry", b"1" * 300, priority=0, samples=10)
    q.put("telemetry", b"2" * 300, priority=0, samples=20)
    q.put("telemetry", b"3" * 300, priority=0, samples=40)  # drops "1"
    q.commit()
    assert [e.payload[:1] for e in q.read(0, None, 10)] == [b"H", b"2", b"3"]
    assert q.counters["dropped_batches"] == 1 and q.counters["dropped_samples"] == 10
    assert q.put("dtc", b"D" * 600, priority=1, samples=0)  # drops "2" and "3", keeps "H"
    assert not q.put("telemetry", b"4" * 300, priority=0, samples=1)  # only high priority left: dropped
    q.commit()
    assert [e.payload[:1] for e in q.read(0, None, 10)] == [b"H", b"D"]
    assert q.bytes_used == 900 <= q.max_bytes
    assert not q.put("telemetry", b"x" * 2000, priority=1, samples=1)  # bigger than the whole queue
    assert q.counters["dropped_batches"] == 5


def test_corrupt_file_is_moved_aside_and_a_new_queue_starts(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    q = DiskQueue(path, 10_000)
    q.put("telemetry", b"x", priority=0, samples=1, seq=q.next_seq())
    q.commit()
    q.close()
    data = bytearray(path.read_bytes())
    data[0:100] = b"\xff" * 100  # smash the header
    path.write_bytes(bytes(data))
    before_us = time.time_ns() // 1000
    q2 = DiskQueue(path, 10_000)
    assert len(q2.corrupt_files) == 1 and q2.corrupt_files[0].exists()
    assert q2.rows == 0 and q2.read(0, None, 10) == []
    assert q2.next_seq() >= before_us  # still above any number the lost file handed out
    q2.put("telemetry", b"y", priority=0, samples=1)
    q2.commit()


def test_recover_during_use(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", 10_000)
    q.recover(sqlite3.DatabaseError("disk image is malformed"))
    assert q.corrupt_files and q.rows == 0
    q.put("telemetry", b"z", priority=0, samples=1)
    q.commit()


def _e(i: int) -> Entry:
    return Entry(i, "telemetry", 0, i, 1, b"")


def test_sender_alternates_live_and_backlog_keeping_each_in_order() -> None:
    order = _interleave([_e(10), _e(11), _e(12)], [_e(1), _e(2)], 0)
    assert [(e.id, live) for e, live in order] == [(10, True), (1, False), (11, True), (2, False), (12, True)]


def test_staged_chunks_and_their_batch_swap_atomically(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q.sqlite", 10_000)
    q.stage(b"chunk-1", 3)
    q.stage(b"chunk-2", 4)
    q.commit()
    ids = [i for i, _ in q.staged()]
    q.put("telemetry", b"merged", priority=0, samples=7, seq=q.next_seq())
    q.unstage(ids)
    q._conn.close()  # crash before the commit: the chunks are still there, the batch is not
    q2 = DiskQueue(tmp_path / "q.sqlite", 10_000)
    assert [p for _, p in q2.staged()] == [b"chunk-1", b"chunk-2"]
    assert q2.read(0, None, 10) == []
