"""The sender without a broker: a real spool file and a scripted link. It sends the backlog in
order while live data keeps flowing, keeps at most `max_inflight` unacknowledged, forgets an entry
only once acknowledged, and starts over after a reconnect or a spool generation change."""

from __future__ import annotations

import threading
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from contract import topics
from edge_agent.collector import PRIORITY_DTC, PRIORITY_LOW
from edge_agent.sender import Sender, interleave
from edge_agent.spool import Entry
from edge_agent.spool_router import Spool

VID = "SEND-1"


class ScriptedLink:
    """Records publishes; the test decides when the connection is up and what gets acknowledged."""

    def __init__(self) -> None:
        self.connected = threading.Event()
        self.epoch = 0
        self.sent: list[tuple[int, int, str, bytes]] = []  # (epoch, mid, topic, payload)
        self.acks: list[tuple[int, int]] = []
        self.refuse = False
        self._mid = 0

    def connect(self) -> None:
        self.epoch += 1
        self.connected.set()

    def publish(self, topic: str, payload: bytes) -> tuple[int, int] | None:
        if self.refuse:
            return None
        self._mid += 1
        self.sent.append((self.epoch, self._mid, topic, payload))
        return self.epoch, self._mid

    def take_acks(self) -> list[tuple[int, int]]:
        acks, self.acks = self.acks, []
        return acks

    def ack_all(self) -> None:
        self.acks += [(epoch, mid) for epoch, mid, _, _ in self.sent]

    def payloads(self) -> list[bytes]:
        return [payload for _, _, _, payload in self.sent]


def _spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "queue.db", 8 << 20)


def _put(spool: Spool, *names: str, kind: str = topics.TELEMETRY, samples: int = 3) -> None:
    for name in names:
        priority = PRIORITY_DTC if kind == topics.DTC else PRIORITY_LOW
        spool.put(kind, name.encode(), priority=priority, samples=samples, seq=spool.next_seq())
    spool.commit()


def _settle(sender: Sender, spool: Spool) -> None:
    """A pump, then the agent's next flush commits the spool (deleting acknowledged entries)."""
    sender.pump()
    spool.commit()


def test_backlog_and_live_alternate_and_each_keeps_its_order(tmp_path: Path) -> None:
    spool, link = _spool(tmp_path), ScriptedLink()
    sender = Sender(spool, link, VID, max_inflight=2)
    _put(spool, "b1", "b2", "b3", "b4")  # queued while offline: the backlog
    link.connect()
    sender.pump()
    assert link.payloads() == [b"b1", b"b2"]  # nothing live yet: the backlog fills the window
    _put(spool, "l1", "l2", "l3")  # fresh data while the backlog drains
    for _ in range(4):
        link.ack_all()
        _settle(sender, spool)
    assert link.payloads() == [b"b1", b"b2", b"l1", b"b3", b"l2", b"b4", b"l3"]
    assert spool.rows == 0  # everything acknowledged is gone
    assert {topic for _, _, topic, _ in link.sent} == {topics.topic_for(VID, topics.TELEMETRY)}


def test_no_more_than_max_inflight_and_nothing_forgotten_before_its_ack(tmp_path: Path) -> None:
    spool, link = _spool(tmp_path), ScriptedLink()
    sender = Sender(spool, link, VID, max_inflight=3)
    _put(spool, *(f"e{i}" for i in range(10)))
    link.connect()
    _settle(sender, spool)
    _settle(sender, spool)  # no acks: nothing new goes out, nothing leaves the queue
    assert sender.in_flight == 3 and len(link.sent) == 3
    assert spool.rows == 10
    assert spool.protected == {e.id for e in spool.read(0, None, 3)}  # the full policy spares them
    link.acks.append(link.sent[1][:2])  # one ack frees one slot
    _settle(sender, spool)
    assert spool.rows == 9 and sender.in_flight == 3 and len(link.sent) == 4


def test_only_telemetry_counts_as_acked_batches(tmp_path: Path) -> None:
    spool, link = _spool(tmp_path), ScriptedLink()
    sender = Sender(spool, link, VID, max_inflight=10)
    _put(spool, "t1", "t2", samples=5)
    _put(spool, "dtc", kind=topics.DTC, samples=0)
    link.connect()
    sender.pump()
    link.ack_all()
    _settle(sender, spool)
    assert sender.stats.batches_acked == 2 and sender.stats.samples_acked == 10
    assert sender.stats.telemetry_bytes_acked == len(b"t1") + len(b"t2")
    assert sender.stats.batches_acked_from_memory == 0
    assert topics.topic_for(VID, topics.DTC) in {topic for _, _, topic, _ in link.sent}
    assert spool.rows == 0


def test_a_reconnect_resends_what_was_in_flight_and_ignores_older_acks(tmp_path: Path) -> None:
    spool, link = _spool(tmp_path), ScriptedLink()
    sender = Sender(spool, link, VID, max_inflight=2)
    _put(spool, "a", "b", "c")
    link.connect()
    sender.pump()
    old = list(link.sent)
    link.connected.clear()  # lost before any PUBACK
    link.connect()
    _settle(sender, spool)
    assert link.payloads() == [b"a", b"b", b"a", b"b"]  # re-sent, in order, with the same bytes
    link.acks += [(epoch, mid) for epoch, mid, _, _ in old]  # acks of the old connection, too late
    _settle(sender, spool)
    assert spool.rows == 3 and sender.stats.batches_acked == 0 and sender.in_flight == 2
    link.acks += [(epoch, mid) for epoch, mid, _, _ in link.sent[2:]]
    _settle(sender, spool)
    link.ack_all()
    _settle(sender, spool)
    assert link.payloads() == [b"a", b"b", b"a", b"b", b"c"]
    assert spool.rows == 0 and sender.stats.batches_acked == 3


def test_acks_that_arrived_before_a_reconnect_still_count(tmp_path: Path) -> None:
    spool, link = _spool(tmp_path), ScriptedLink()
    sender = Sender(spool, link, VID, max_inflight=2)
    _put(spool, "a", "b")
    link.connect()
    sender.pump()
    link.ack_all()  # PUBACKs received, then the connection dropped before the next pump
    link.connected.clear()
    link.connect()
    _settle(sender, spool)
    assert spool.rows == 0 and sender.stats.batches_acked == 2 and len(link.sent) == 2


def test_a_refused_publish_is_retried_at_the_next_pump(tmp_path: Path) -> None:
    spool, link = _spool(tmp_path), ScriptedLink()
    sender = Sender(spool, link, VID, max_inflight=5)
    _put(spool, "x", "y")
    link.connect()
    link.refuse = True  # e.g. the connection dropped between the check and the publish
    sender.pump()
    assert link.sent == [] and sender.in_flight == 0
    link.refuse = False
    sender.pump()
    assert link.payloads() == [b"x", b"y"]


def test_a_new_spool_generation_starts_the_sender_over(tmp_path: Path) -> None:
    spool, link = _spool(tmp_path), ScriptedLink()
    sender = Sender(spool, link, VID, max_inflight=5)
    _put(spool, "p", "q")
    link.connect()
    sender.pump()
    spool.generation += 1  # what the spool does when its ids may have changed
    link.ack_all()  # acks of ids that may now mean other entries: not passed to the spool
    _settle(sender, spool)
    assert spool.rows == 2 and sender.stats.batches_acked == 0
    assert link.payloads() == [b"p", b"q", b"p", b"q"]  # re-read from the start


def test_nothing_is_sent_while_disconnected(tmp_path: Path) -> None:
    spool, link = _spool(tmp_path), ScriptedLink()
    sender = Sender(spool, link, VID, max_inflight=5)
    _put(spool, "z")
    sender.pump()
    assert link.sent == [] and spool.protected == set()


def _entries(ids: list[int]) -> list[Entry]:
    return [Entry(i, topics.TELEMETRY, PRIORITY_LOW, i, 1, b"") for i in ids]


def test_interleave_starts_live_on_an_even_turn() -> None:
    order = interleave(_entries([10, 11, 12]), _entries([1, 2]), 0)
    assert [(e.id, live) for e, live in order] == [(10, True), (1, False), (11, True), (2, False), (12, True)]


@given(st.integers(0, 8), st.integers(0, 8), st.integers(0, 3))
def test_interleave_alternates_and_keeps_each_order(n_live: int, n_backlog: int, turn: int) -> None:
    live, backlog = _entries(list(range(100, 100 + n_live))), _entries(list(range(n_backlog)))
    out = interleave(live, backlog, turn)
    assert [e for e, is_live in out if is_live] == live
    assert [e for e, is_live in out if not is_live] == backlog
    both = 2 * min(n_live, n_backlog)  # the alternating prefix, then the longer list's rest
    flags = [is_live for _, is_live in out[:both]]
    assert flags == [(k + turn) % 2 == 0 for k in range(both)]
    assert len({is_live for _, is_live in out[both:]}) <= 1
