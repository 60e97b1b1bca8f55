"""What the spool's `max_bytes` bounds, how it is split between SQLite's files, and the start-up check.

Owns: the arithmetic, so that the disk queue, the config check and the docs say the same thing.

`max_bytes` bounds the three files of the queue on disk together: `queue.sqlite` +
`queue.sqlite-wal` + `queue.sqlite-shm`. It is split as
- shm: `SHM_BYTES` (32 KiB: the WAL index for up to 4,062 WAL frames, more than the WAL budget);
- WAL: `wal_bytes` = max_bytes / 4, within 128 KiB .. 4 MiB. The queue empties the WAL
  (`wal_checkpoint(TRUNCATE)`, so the file's size is what it holds) after a commit that leaves it
  over half of this or over the filesystem's free space, and before a transaction whose estimated
  WAL (`wal_bytes_for`, meant as an upper bound; tests measure the files) would not fit after what
  the WAL already holds; if it cannot, the transaction is refused as a full disk. So the WAL stays
  within its budget as long as no single transaction needs more. The spool sizes transactions for
  that (`spool_router`: at most half the budget each, one group at least), and the one group it
  cannot split, a cut (a batch and the chunks it merges), is checked against the budget by
  `check_max_bytes` at start-up (the agent only warns about a campaign pushed later);
- database file: the rest (`db_bytes`). Before an entry or staged chunk is added, the database's used
  pages (SQLite's own count: page_count - freelist_count, i.e. payload plus row, index and b-tree
  overhead) plus the pages the entry can need (`pages_for`, an upper bound) must fit; otherwise
  entries are dropped by priority. SQLite grows the file only when no free page is left, so the file
  never exceeds `db_bytes`.
An entry may be at most `max_entry_bytes` (a sixteenth of the WAL budget, an eighth of the
database's); the agent splits bigger batches in halves (each with its own seq) instead of dropping
them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.campaign import Campaign

PAGE_BYTES = 4096  # SQLite's default page size, which the queue keeps
SHM_BYTES = 32 * 1024
DEFAULT_MEMORY_MAX_BYTES = 2 * 1024 * 1024  # what the agent may hold in memory while the disk is full
FIXED_PAGES = 8  # an empty queue file: header and schema, three tables, an index, sqlite_sequence
PAGES_PER_INSERT = 3  # beyond the payload: the row's leaf page, its index leaf, one b-tree split
ROW_OVERHEAD_BYTES = 64  # record header, rowid, kind, priority, seq, samples
MIN_WAL_BYTES = 128 * 1024
MAX_WAL_BYTES = 4 * 1024 * 1024
MIN_MAX_BYTES = 512 * 1024  # below this the WAL and shm files would take most of the bound
MIN_BATCHES = 2  # the database part must hold at least this many batches (one sending, one filling)
WARN_BATCHES = 16  # below this many batches a short outage already drops data: warn at start-up
WORST_BYTES_PER_SAMPLE = 8  # float64 without compression (wire v1); typical is 1.4 (docs/benchmarks.md)
ROW_TS_BYTES = 4  # one timestamp delta per row
COLUMN_BYTES = 8  # column head plus a presence bitmap byte, roughly
FRAME_BYTES = 100  # frame header, vehicle id, seq, counts, first timestamp


@dataclass(frozen=True, slots=True)
class SpoolBudget:
    max_bytes: int
    wal_bytes: int
    db_bytes: int
    page_bytes: int = PAGE_BYTES

    @classmethod
    def of(cls, max_bytes: int) -> SpoolBudget:
        """Raises ValueError below MIN_MAX_BYTES."""
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(
                f"[queue] max_bytes = {max_bytes} is below the minimum of {MIN_MAX_BYTES} bytes "
                "(it bounds queue.sqlite, its WAL and its shm file together)"
            )
        wal = min(max(max_bytes // 4, MIN_WAL_BYTES), MAX_WAL_BYTES)
        return cls(max_bytes, wal, max_bytes - wal - SHM_BYTES)

    @property
    def db_pages(self) -> int:
        return self.db_bytes // self.page_bytes

    @property
    def max_entry_bytes(self) -> int:
        """The biggest entry the queue takes (bigger batches are split by the agent)."""
        return min(self.wal_bytes // 16, (self.db_bytes - FIXED_PAGES * self.page_bytes) // 8)

    @property
    def frame_bytes(self) -> int:
        """One WAL frame: a page plus its 24-byte frame header."""
        return self.page_bytes + 24

    def pages_for(self, payload_bytes: int) -> int:
        """An upper bound of the pages one new row with this payload can add to the database."""
        usable = self.page_bytes - 4  # an overflow page holds page size - 4 bytes
        return math.ceil((payload_bytes + ROW_OVERHEAD_BYTES) / usable) + PAGES_PER_INSERT

    def wal_bytes_for(self, payload_bytes: int, rows: int) -> int:
        """An upper bound of the WAL a transaction adding `rows` rows with `payload_bytes` in all
        writes: each page it can touch once (a frame is a page plus 24 bytes), as much again for
        the rows it may drop to make room and delete, plus the header, meta and sequence pages."""
        usable = self.page_bytes - 4
        pages = math.ceil((payload_bytes + rows * ROW_OVERHEAD_BYTES) / usable) + rows + PAGES_PER_INSERT
        return 32 + (2 * pages + 4) * self.frame_bytes


def entry_bytes_estimate(*, signals: int, rows: float, samples: float) -> int:
    """An upper bound of one wire v1 batch without compression (the zlib pass only shrinks it)."""
    return int(FRAME_BYTES + signals * COLUMN_BYTES + rows * ROW_TS_BYTES + samples * WORST_BYTES_PER_SAMPLE)


def sampling_batch_estimate(
    *, signals: int, base_rate_hz: float, period_ms: int, batch_interval_s: float
) -> int:
    """One periodic batch of `signals` signals, each sent every `period_ms` (at most at base rate)."""
    per_signal_hz = min(base_rate_hz, 1000.0 / max(period_ms, 1))
    return _periodic_batch_bytes(signals, base_rate_hz, signals * per_signal_hz, batch_interval_s)


def _periodic_batch_bytes(signals: int, base_rate_hz: float, samples_per_s: float, batch_s: float) -> int:
    """A periodic batch: a row per sampling instant (at most base rate), `samples_per_s` values."""
    rows = min(base_rate_hz, samples_per_s) * batch_s
    return entry_bytes_estimate(signals=signals, rows=rows, samples=samples_per_s * batch_s)


def largest_batch_bytes(campaign: Campaign) -> int:
    """The biggest entry a campaign makes: its periodic batch or its widest trigger window."""
    rate_hz = campaign.base_rate_hz
    per_s = sum(min(rate_hz, 1000.0 / max(rule.period_ms, 1)) for rule in campaign.signals)
    largest = _periodic_batch_bytes(len(campaign.signals), rate_hz, per_s, campaign.batch_interval_s)
    for trigger in campaign.triggers:
        width = len(trigger.signals or campaign.sampled_paths)
        rows = (trigger.pre_s + trigger.post_s) * rate_hz
        largest = max(largest, entry_bytes_estimate(signals=width, rows=rows, samples=rows * width))
    return largest


def check_max_bytes(max_bytes: int, batch_bytes: int) -> str | None:
    """Raises ValueError when the queue cannot hold MIN_BATCHES batches of `batch_bytes`; returns a
    warning when it holds fewer than WARN_BATCHES, else None."""
    budget = SpoolBudget.of(max_bytes)
    per_batch = batch_bytes + ROW_OVERHEAD_BYTES
    fits = (budget.db_bytes - FIXED_PAGES * budget.page_bytes) // per_batch
    pieces = max(1, math.ceil(batch_bytes / budget.max_entry_bytes))  # a batch is cut in one transaction
    cut_fits = budget.wal_bytes_for(batch_bytes, pieces) <= budget.wal_bytes
    if fits < MIN_BATCHES or not cut_fits:
        raise ValueError(
            f"[queue] max_bytes = {max_bytes} is too small for batches of up to {batch_bytes} bytes "
            f"(estimated from [sampling]): the queue file must hold at least {MIN_BATCHES} and its WAL "
            f"budget ({budget.wal_bytes} bytes) one; raise max_bytes or shorten batch_interval_s"
        )
    if fits < WARN_BATCHES:
        return (
            f"[queue] max_bytes = {max_bytes} holds only about {fits} batches of up to {batch_bytes} "
            f"bytes: an outage longer than {fits} batch intervals drops periodic data"
        )
    return None
