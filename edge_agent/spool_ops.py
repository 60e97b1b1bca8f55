"""The writes of one flush, kept until `Spool.commit()` applies them to the disk queue or to memory.

Owns: the three operations (`Put`, `Stage`, `Unstage`), groups of them that must land together (a
cut: its batch and the chunks it merged), and applying a group to either store the same way:
- a cut's chunks are unstaged before its batch is put, so the full policy cannot drop a chunk the
  batch holds (its samples would be counted as dropped and delivered);
- a cut whose chunks are not all there any more (dropped by the full policy since the cut was made,
  or staged on the other store) is undone: its batch is discarded before anyone saw it and the
  chunks stay staged where they are, to be cut again later;
- the WAL a group can write (`wal_estimate`), so the spool can size its transactions.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from edge_agent.spool import DiskQueue, Entry
from edge_agent.spool_budget import SpoolBudget
from edge_agent.spool_memory import MemoryQueue
from edge_agent.spool_policy import Drop


@dataclass(frozen=True, slots=True)
class Put:
    entry: Entry


@dataclass(frozen=True, slots=True)
class Stage:
    chunk_id: int
    samples: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Unstage:
    ids: tuple[int, ...]


Op = Put | Stage | Unstage
Group = list[Op]


def cut_chunks(group: Group) -> tuple[int, ...]:
    return tuple(cid for op in group if isinstance(op, Unstage) for cid in op.ids)


def _unstage_first(group: Group) -> Group:
    return [op for op in group if isinstance(op, Unstage)] + [
        op for op in group if not isinstance(op, Unstage)
    ]


def apply_to_disk(disk: DiskQueue, groups: list[Group], protected: frozenset[int]) -> None:
    """Apply in the open transaction (the caller commits or rolls back)."""
    for group in groups:
        if not disk.holds_staged(cut_chunks(group)):
            continue  # undo the cut
        for op in _unstage_first(group):
            if isinstance(op, Put):
                e = op.entry
                disk.put(
                    e.kind,
                    e.payload,
                    priority=e.priority,
                    samples=e.samples,
                    seq=e.seq,
                    entry_id=e.id,
                    protected=protected,
                )
            elif isinstance(op, Stage):
                disk.stage(op.payload, op.samples, chunk_id=op.chunk_id, protected=protected)
            else:
                disk.unstage(list(op.ids))


def apply_to_memory(memory: MemoryQueue, group: Group, protected: Collection[int]) -> list[Drop]:
    """Hold the group in memory; returns what the memory bound dropped."""
    if any(cid not in memory.chunks for cid in cut_chunks(group)):
        return []  # undo the cut
    drops: list[Drop] = []
    for op in _unstage_first(group):
        if isinstance(op, Put):
            drops += memory.put(op.entry, protected)
        elif isinstance(op, Stage):
            drops += memory.stage(op.chunk_id, op.samples, op.payload, protected)
        else:
            memory.unstage(op.ids)
    return drops


def wal_estimate(budget: SpoolBudget, group: Group) -> int:
    """An upper bound of the WAL that applying `group` writes."""
    size = rows = 0
    for op in group:
        if isinstance(op, Put):
            size, rows = size + len(op.entry.payload), rows + 1
        elif isinstance(op, Stage):
            size, rows = size + len(op.payload), rows + 1
        else:
            rows += len(op.ids)
    return budget.wal_bytes_for(size, rows)
