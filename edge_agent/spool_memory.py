"""The spool's memory fallback while the disk takes no writes: bounded, with the disk's drop policy.

Owns: the entries and staged chunks that could not be written to disk, in id order, within
`max_bytes` (payload plus ENTRY_OVERHEAD_BYTES per item, about what Python holds for it). When a new
item does not fit, the oldest item of the lowest priority goes first (periodic batches, then staged
chunks, then trigger windows, then DTCs), never one in flight (`protected`) and never one of higher
priority than the new item; if that cannot make room, the new item itself is dropped. Nothing here
is durable: a crash loses it (the seqs of those batches stay reserved in the file: spool.SEQ_RESERVE).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from edge_agent.spool import Entry
from edge_agent.spool_policy import Drop

ENTRY_OVERHEAD_BYTES = 200  # an Entry object, its bytes header and its dict slot, roughly


class MemoryQueue:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: dict[int, Entry] = {}  # id order
        self.chunks: dict[int, tuple[int, bytes]] = {}  # chunk id -> (samples, payload), id order
        self.bytes_held = 0  # what counts against max_bytes
        self.payload_bytes = 0  # of the entries (not the chunks), as the disk queue counts them

    @property
    def empty(self) -> bool:
        return not self.entries and not self.chunks

    @property
    def rows(self) -> int:
        return len(self.entries)

    def put(self, entry: Entry, protected: Collection[int] = ()) -> list[Drop]:
        """Hold `entry`; returns what the bound dropped (`entry` itself when it cannot fit)."""
        size = len(entry.payload)
        drops = self._make_room(size + ENTRY_OVERHEAD_BYTES, entry.priority, protected)
        if drops is None:
            return [Drop(entry.id, entry.priority, entry.samples, size, False, "memory")]
        if self.entries and entry.id < next(reversed(self.entries)):  # keep id order
            self.entries = dict(sorted([*self.entries.items(), (entry.id, entry)]))
        self.entries[entry.id] = replace(entry, in_memory=True)
        self.bytes_held += size + ENTRY_OVERHEAD_BYTES
        self.payload_bytes += size
        return drops

    def stage(
        self, chunk_id: int, samples: int, payload: bytes, protected: Collection[int] = ()
    ) -> list[Drop]:
        """Hold a staged chunk; returns what the bound dropped (the chunk itself when it cannot fit)."""
        size = len(payload)
        drops = self._make_room(size + ENTRY_OVERHEAD_BYTES, 0, protected)
        if drops is None:
            return [Drop(chunk_id, 0, samples, size, True, "memory")]
        self.chunks[chunk_id] = (samples, payload)
        self.chunks = dict(sorted(self.chunks.items())) if chunk_id < max(self.chunks) else self.chunks
        self.bytes_held += size + ENTRY_OVERHEAD_BYTES
        return drops

    def _make_room(self, cost: int, priority: int, protected: Collection[int]) -> list[Drop] | None:
        over = self.bytes_held + cost - self.max_bytes
        if over <= 0:
            return []
        if cost > self.max_bytes:
            return None
        candidates = sorted(
            [((e.priority, 0, e.id), e.id, False) for e in self.entries.values() if e.priority <= priority]
            + [((0, 1, cid), cid, True) for cid in self.chunks]
        )
        chosen: list[tuple[int, bool]] = []
        freed = 0
        for _, ident, chunk in candidates:
            if freed >= over:
                break
            if chunk or ident not in protected:
                chosen.append((ident, chunk))
                freed += self._cost(ident, chunk)
        if freed < over:
            return None
        return [self._evict(ident, chunk) for ident, chunk in chosen]

    def _cost(self, ident: int, chunk: bool) -> int:
        payload = self.chunks[ident][1] if chunk else self.entries[ident].payload
        return len(payload) + ENTRY_OVERHEAD_BYTES

    def _evict(self, ident: int, chunk: bool) -> Drop:
        if chunk:
            samples, payload = self.chunks[ident]
            self._forget_chunk(ident)
            return Drop(ident, 0, samples, len(payload), True, "memory")
        entry = self.entries[ident]
        self.remove(ident)
        return Drop(ident, entry.priority, entry.samples, len(entry.payload), False, "memory")

    def remove(self, entry_id: int) -> bool:
        entry = self.entries.pop(entry_id, None)
        if entry is None:
            return False
        self.bytes_held -= len(entry.payload) + ENTRY_OVERHEAD_BYTES
        self.payload_bytes -= len(entry.payload)
        return True

    def _forget_chunk(self, chunk_id: int) -> None:
        held = self.chunks.pop(chunk_id, None)
        if held is not None:
            self.bytes_held -= len(held[1]) + ENTRY_OVERHEAD_BYTES

    def unstage(self, chunk_ids: Collection[int]) -> None:
        """Forget these chunks (ids not held here are on disk: nothing to do)."""
        for chunk_id in chunk_ids:
            self._forget_chunk(chunk_id)

    def read(self, after_id: int, upto_id: int, limit: int) -> list[Entry]:
        """Entries with after_id < id ≤ upto_id, oldest first."""
        out: list[Entry] = []
        for entry_id, entry in self.entries.items():
            if entry_id > upto_id or len(out) >= limit:
                break
            if entry_id > after_id:
                out.append(entry)
        return out

    def renumber(self, first_id: int, first_chunk_id: int) -> None:
        """Give the held items new ids from these on, keeping their order (a queue file that appeared
        late already uses the old ones)."""
        self.entries = {
            first_id + i: replace(e, id=first_id + i) for i, e in enumerate(self.entries.values())
        }
        self.chunks = {first_chunk_id + i: c for i, c in enumerate(self.chunks.values())}
