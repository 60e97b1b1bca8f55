"""Properties of the spool under random operations (hypothesis): the drop order of the memory and
disk queues, and the whole spool through random full-disk events: no seq reused, no entry lost
or changed except counted drops, nothing in flight dropped, the memory and file bounds kept."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_agent.spool import DiskQueue, Drop, Entry
from edge_agent.spool_budget import MIN_MAX_BYTES
from edge_agent.spool_memory import ENTRY_OVERHEAD_BYTES, MemoryQueue
from edge_agent.spool_router import Spool
from tests.edge_agent.test_spool import sqlite_error

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rank(priority: int, chunk: bool) -> int:
    """The documented drop order: periodic batches, staged chunks, trigger windows, DTCs."""
    return 1 if chunk else (0 if priority == 0 else priority + 1)


# -- the memory queue ---------------------------------------------------------------------------
memory_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 2), st.integers(0, 900)),
        st.tuples(st.just("stage"), st.just(0), st.integers(0, 900)),
        st.tuples(st.just("remove"), st.integers(0, 50), st.just(0)),
        st.tuples(st.just("protect"), st.integers(0, 50), st.just(0)),
    ),
    max_size=80,
)


@SETTINGS
@given(memory_ops, st.integers(ENTRY_OVERHEAD_BYTES, 6000))
def test_memory_queue_drops_by_priority_within_its_bound(
    ops: list[tuple[str, int, int]], max_bytes: int
) -> None:
    q = MemoryQueue(max_bytes)
    protected: set[int] = set()
    added, removed, dropped = set(), set(), set()
    for n, (kind, a, size) in enumerate(ops, start=1):
        # items as ("e", id) or ("c", chunk id), with their place in the drop order
        order = {("e", i): (_rank(e.priority, False), i) for i, e in q.entries.items() if i not in protected}
        order |= {("c", c): (_rank(0, True), c) for c in q.chunks}
        if kind == "put":
            item, new_rank = ("e", n), _rank(a, False)
            drops = q.put(Entry(n, "telemetry", a, n, 1, b"x" * size), protected)
        elif kind == "stage":
            item, new_rank = ("c", n), _rank(0, True)
            drops = q.stage(n, 1, b"x" * size, protected)
        else:
            if kind == "remove" and q.remove(a):
                removed.add(("e", a))
            elif kind == "protect" and a in q.entries:
                protected.add(a)
            continue
        added.add(item)
        victims = [("c" if d.chunk else "e", d.id) for d in drops]
        dropped.update(victims)
        held = {("e", i) for i in q.entries} | {("c", c) for c in q.chunks}
        if item in victims:  # the new item itself: then nothing else went
            assert victims == [item]
        else:
            assert item in held
            assert all(v in order for v in victims)  # never one in flight
            if victims:  # the victims come first in drop order; what stays comes after them
                worst = max(order[v] for v in victims)
                assert all(
                    key > worst for other, key in order.items() if other in held and key[0] <= new_rank
                )
        assert q.bytes_held <= max_bytes
    held = {("e", i) for i in q.entries} | {("c", c) for c in q.chunks}
    assert added == held | removed | dropped and not (held & dropped) and not (removed & dropped)


# -- the disk queue -----------------------------------------------------------------------------
disk_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 2), st.integers(500, 8192)),
        st.tuples(st.just("stage"), st.just(0), st.integers(500, 4000)),
        st.tuples(st.just("ack"), st.integers(1, 4), st.just(0)),
        st.tuples(st.just("protect"), st.integers(1, 3), st.just(0)),
    ),
    min_size=30,
    max_size=120,
)


@SETTINGS
@given(disk_ops)
def test_disk_queue_drops_in_the_documented_order(ops: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        q = DiskQueue(Path(tmp) / "q.sqlite", MIN_MAX_BYTES)
        protected: set[int] = set()
        for kind, a, size in ops:
            rows = {e.id: e.priority for e in q.read(0, None, 10_000)}
            chunks = {i for i, _ in q.staged()}
            if kind == "put":
                q.put(
                    "telemetry",
                    b"p" * size,
                    priority=a,
                    samples=1,
                    entry_id=q.next_id,
                    protected=frozenset(protected),
                )
                new_rank = _rank(a, False)
            elif kind == "stage":
                q.stage(b"c" * size, 1, chunk_id=q.next_chunk_id, protected=frozenset(protected))
                new_rank = _rank(0, True)
            elif kind == "ack":
                acked = [i for i in sorted(rows) if i not in protected][:a]
                q.remove(acked)
                q.commit()
                continue
            else:
                protected.update(sorted(set(rows) - protected)[:a])
                continue
            q.commit()
            if q.last_drops:
                event("drops on disk")
            victims = [d for d in q.last_drops if d.id in rows or (d.chunk and d.id in chunks)]
            keys = {(_rank(p, False), i) for i, p in rows.items() if i not in protected}
            keys |= {(_rank(0, True), c) for c in chunks}
            for d in victims:
                assert d.chunk or d.id not in protected
                assert _rank(d.priority, d.chunk) <= new_rank
            if victims:
                worst = max((_rank(d.priority, d.chunk), d.id) for d in victims)
                gone = {(_rank(d.priority, d.chunk), d.id) for d in victims}
                assert all(k > worst for k in keys - gone if k[0] <= new_rank)
            assert q.file_bytes() <= q.max_bytes
        q.close()


# -- the whole spool, with the disk filling up and emptying at random -------------------------
spool_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 2), st.integers(100, 8192)),
        st.tuples(st.just("burst"), st.integers(0, 2), st.integers(5, 40)),  # that many 8 KB entries
        st.tuples(st.just("stage"), st.just(0), st.integers(100, 3000)),
        st.tuples(st.just("cut"), st.just(0), st.just(0)),
        st.tuples(st.just("publish"), st.integers(1, 5), st.just(0)),
        st.tuples(st.just("ack"), st.integers(1, 5), st.just(0)),
        st.tuples(st.just("disconnect"), st.just(0), st.just(0)),
        st.tuples(st.just("commit"), st.just(0), st.just(0)),
        st.tuples(st.just("later"), st.just(0), st.just(0)),
        st.tuples(st.just("full"), st.sampled_from(["pages", "writes", "off"]), st.just(0)),
    ),
    min_size=20,
    max_size=200,
)


@dataclass
class World:
    """The test's model of what happened, and the switch that makes the disk full."""

    clock: float = 0.0
    full: str = "off"  # "pages": the database may not grow; "writes": every commit fails
    put: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # id -> (seq, payload)
    seqs: list[int] = field(default_factory=list)
    in_flight: set[int] = field(default_factory=set)
    acked: set[int] = field(default_factory=set)
    dropped: list[Drop] = field(default_factory=list)
    seq_owner: dict[int, int] = field(default_factory=dict)  # seq -> the one id that carries it
    published_from_memory: set[int] = field(default_factory=set)
    samples_in: int = 0
    samples_acked: int = 0


@contextmanager
def failing_commits(world: World) -> Iterator[None]:
    real_commit = DiskQueue.commit

    def commit(self: DiskQueue) -> None:
        if world.full == "writes":
            raise sqlite_error(sqlite3.SQLITE_FULL, "SQLITE_FULL", "database or disk is full")
        real_commit(self)

    with mock.patch.object(DiskQueue, "commit", commit):
        yield


def _set_page_limit(spool: Spool, world: World) -> None:
    if spool.disk is None:
        return
    conn = spool.disk._conn
    if world.full == "pages":
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count={pages}")
    else:
        conn.execute("PRAGMA max_page_count=1073741823")


def _samples(payload: bytes) -> int:
    return int(payload.split(b":")[1])


@SETTINGS
@given(spool_ops, st.integers(2000, 20_000))
def test_spool_keeps_its_invariants_through_full_disk_events(
    ops: list[tuple[str, int, int]], memory_max_bytes: int
) -> None:
    world = World()
    with tempfile.TemporaryDirectory() as tmp, failing_commits(world):
        spool = Spool(
            Path(tmp) / "q.sqlite",
            MIN_MAX_BYTES,
            memory_max_bytes=memory_max_bytes,
            clock=lambda: world.clock,
        )

        def on_drop(drop: Drop) -> None:
            assert drop.chunk or drop.id not in world.in_flight, "dropped while in flight"
            world.dropped.append(drop)

        spool.on_drop = on_drop
        for n, (kind, a, size) in enumerate(ops):
            for _ in range(size if kind == "burst" else int(kind == "put")):
                seq = spool.next_seq()
                payload = f"E{seq}:{n % 7 + 1}:".encode().ljust(8192 if kind == "burst" else size, b".")
                world.seqs.append(seq)
                world.samples_in += n % 7 + 1
                spool.put("telemetry", payload, priority=a, samples=n % 7 + 1, seq=seq)
            if kind in ("put", "burst"):
                continue
            if kind == "stage":
                world.samples_in += n % 5 + 1
                spool.stage(f"C:{n % 5 + 1}:".encode().ljust(size, b"."), n % 5 + 1)
            elif kind == "cut":
                with spool.atomic():
                    staged = spool.staged()
                    if staged:
                        total = sum(_samples(p) for _, p in staged)
                        seq = spool.next_seq()
                        world.seqs.append(seq)
                        spool.put(
                            "telemetry", f"E{seq}:{total}:".encode(), priority=0, samples=total, seq=seq
                        )
                        spool.unstage([i for i, _ in staged])
            elif kind == "publish":
                for e in [e for e in spool.read(0, None, 10_000) if e.id not in world.in_flight][:a]:
                    if e.in_memory:
                        world.published_from_memory.add(e.id)
                    world.in_flight.add(e.id)
                    spool.protected.add(e.id)
            elif kind == "ack":
                done = sorted(world.in_flight)[:a]
                for e in spool.read(0, None, 10_000):
                    if e.id in done:
                        world.samples_acked += e.samples
                world.in_flight.difference_update(done)
                world.acked.update(done)
                spool.remove(done)
            elif kind == "disconnect":
                world.in_flight.clear()
                spool.protected.clear()
            elif kind == "later":
                world.clock += 10.0
            elif kind == "full":
                world.full = a  # type: ignore[assignment]
                _set_page_limit(spool, world)
            if kind in ("commit", "cut", "later"):
                spool.commit()
                check_visible(spool, world)
                event(f"spool state {spool.state}")
                if spool.memory.rows:
                    event("entries held in memory")
        world.full = "off"
        _set_page_limit(spool, world)
        for _ in range(50):  # space is back: everything held in memory reaches the disk
            world.clock += 10.0
            spool.commit()
            if spool.state == "ok":
                break
        assert spool.state == "ok" and spool.memory.empty
        held = check_visible(spool, world)
        event(f"drops: {sorted({d.store for d in world.dropped})}")
        event(f"published from memory: {bool(world.published_from_memory)}")
        dropped_ids = {d.id for d in world.dropped if not d.chunk}
        assert not (held & world.acked) and not (held & dropped_ids) and not (world.acked & dropped_ids)
        staged_samples = sum(_samples(p) for _, p in spool.staged())
        held_samples = sum(e.samples for e in spool.read(0, None, 10_000))
        dropped_samples = sum(d.samples for d in world.dropped)
        assert world.samples_in == world.samples_acked + dropped_samples + held_samples + staged_samples
        assert set(world.put) == held | world.acked | (dropped_ids & set(world.put))  # nothing vanished
        counters = spool.counters
        assert counters["dropped_samples"] == dropped_samples
        assert counters["dropped_batches"] == len(dropped_ids)
        spool.close()
        reopened = DiskQueue(Path(tmp) / "q.sqlite", MIN_MAX_BYTES)
        assert {e.id for e in reopened.read(0, None, 10_000)} == held  # spilled means on disk
        assert reopened.next_seq() > max(world.seqs, default=0)
        reopened.close()


def check_visible(spool: Spool, world: World) -> set[int]:
    """What `read` shows: ids and seqs unique and in order, every entry exactly as it was put,
    nothing acknowledged; the memory and file bounds kept. Returns the ids."""
    entries = spool.read(0, None, 10_000)
    ids = [e.id for e in entries]
    assert ids == sorted(set(ids))
    seqs = [e.seq for e in entries]
    assert len(seqs) == len(set(seqs)) and set(seqs) <= set(world.seqs)
    for e in entries:
        assert e.id not in world.acked
        assert world.seq_owner.setdefault(e.seq, e.id) == e.id, "a seq reused"
        if e.id in world.put:
            assert world.put[e.id] == (e.seq, e.payload), "an entry changed (renumbered?)"
        world.put[e.id] = (e.seq, e.payload)
        assert e.payload.startswith(f"E{e.seq}:".encode())
    assert spool.memory.bytes_held <= spool.memory.max_bytes
    assert spool.file_bytes() <= spool.max_bytes
    return set(ids)


# -- the other failure paths --------------------------------------------------------------------
def _entries(spool: Spool, n: int) -> list[int]:
    seqs = []
    for _ in range(n):
        seqs.append(spool.next_seq())
        spool.put("telemetry", f"E{seqs[-1]}:1:".encode(), priority=0, samples=1, seq=seqs[-1])
    return seqs


def test_an_io_error_closes_the_file_and_reopens_it_later(tmp_path: Path) -> None:
    clock = [0.0]
    spool = Spool(tmp_path / "q.sqlite", MIN_MAX_BYTES, clock=lambda: clock[0])
    seqs = _entries(spool, 3)
    spool.commit()
    generation = spool.generation
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE  # type: ignore[attr-defined]
    with mock.patch.object(DiskQueue, "commit", side_effect=exc):
        seqs += _entries(spool, 2)
        spool.commit()
    assert spool.state == "memory_only" and spool.disk is None and spool.corrupt_files == []
    assert [e.seq for e in spool.read(0, None, 100)] == seqs[3:]  # the file's rows wait for the reopen
    clock[0] += 10
    spool.commit()
    assert spool.state == "ok" and spool.generation != generation  # the sender starts over
    assert [e.seq for e in spool.read(0, None, 100)] == seqs
    spool.close()


def test_starts_without_a_usable_file_and_uses_one_when_it_can(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    clock = [0.0]
    spool = Spool(blocker / "queue.sqlite", MIN_MAX_BYTES, clock=lambda: clock[0])
    assert spool.state == "memory_only"
    seqs = _entries(spool, 3)
    spool.commit()
    assert [e.seq for e in spool.read(0, None, 100)] == seqs  # published from memory meanwhile
    blocker.unlink()
    clock[0] += 10
    spool.commit()
    assert spool.state == "ok" and spool.memory.empty
    spool.close()
    reopened = DiskQueue(blocker / "queue.sqlite", MIN_MAX_BYTES)
    assert [e.seq for e in reopened.read(0, None, 100)] == seqs
    assert reopened.next_seq() > seqs[-1]
    reopened.close()
