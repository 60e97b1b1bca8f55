"""Running one campaign over full-rate samples: the agent's functional core.

Owns: per flush, turning the rows read from a source (base rate, one column per sampled signal)
into the chunks to send: one periodic chunk (sampling, deadband, change-only) and one chunk per
completed trigger window (pre/post samples from the ring buffer, high priority). No clock, no I/O:
the shell (`edge_agent.agent`) feeds rows and encodes, queues and publishes what comes out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge_agent import expression
from edge_agent.campaign import Campaign
from edge_agent.ring import SampleRing
from edge_agent.sampling import SamplerState, select_samples
from edge_agent.trigger import CaptureWindow, TriggerState, fire_times, window_for

PRIORITY_LOW = 0  # periodic data: dropped first when the spool is full
PRIORITY_HIGH = 1  # trigger windows: dropped next
PRIORITY_DTC = 2  # DTC messages: dropped last


@dataclass(frozen=True, slots=True)
class Chunk:
    """Samples to send as one batch; `reason` is "periodic" or "trigger:<name>"."""

    ts_ns: np.ndarray
    columns: dict[str, np.ndarray]
    priority: int
    reason: str

    @property
    def n_samples(self) -> int:
        return int(sum(int(np.count_nonzero(~np.isnan(v))) for v in self.columns.values()))


def new_dtc_flags(
    known: frozenset[str], readings: Sequence[frozenset[str] | None]
) -> tuple[np.ndarray, frozenset[str]]:
    """True on each row whose DTC reading holds a code not stored before; None = not read then.
    Cleared codes are forgotten, so a code that comes back counts as new again."""
    flags = np.zeros(len(readings), dtype=bool)
    for i, codes in enumerate(readings):
        if codes is None:
            continue
        flags[i] = bool(codes - known)
        known = codes
    return flags, known


class Collector:
    """Carries the campaign's sampler and trigger states from one flush to the next."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.paths = campaign.sampled_paths
        self._rules = {rule.path: rule for rule in campaign.signals}
        self._samplers = {path: SamplerState() for path in self._rules}
        self._triggers = [(t, t.tree, TriggerState()) for t in campaign.triggers]
        self._pending: list[CaptureWindow] = []
        self.known_dtcs: frozenset[str] = frozenset()
        self.trigger_count = 0
        self._window_s = max((expression.longest_window_s(t.tree) for t in campaign.triggers), default=0.0)
        horizon_s = max((t.pre_s + t.post_s for t in campaign.triggers), default=0.0)
        horizon_s = max(horizon_s, self._window_s)
        rows = math.ceil((horizon_s + 3 * campaign.flush_interval_s) * campaign.base_rate_hz) + 1
        self._ring = SampleRing(self.paths, rows)

    def process(
        self, ts_ns: np.ndarray, values: np.ndarray, dtc_readings: Sequence[frozenset[str] | None] = ()
    ) -> list[Chunk]:
        """Rows `ts_ns` (increasing, after every earlier row) with `values` of shape
        (rows, len(self.paths)); `dtc_readings` per row or empty. Returns the chunks to send."""
        n = ts_ns.shape[0]
        chunks: list[Chunk] = []
        sent = np.zeros(values.shape, dtype=bool)
        periodic: dict[str, np.ndarray] = {}
        for j, path in enumerate(self.paths):
            rule = self._rules.get(path)
            if rule is None:
                continue
            mask, self._samplers[path] = select_samples(
                ts_ns,
                values[:, j],
                period_ns=rule.period_ms * 1_000_000,
                deadband=rule.deadband,
                change_only=rule.change_only,
                state=self._samplers[path],
            )
            sent[:, j] = mask
            if mask.any():
                periodic[path] = np.where(mask, values[:, j], np.nan)
        if periodic:
            rows = sent.any(axis=1)
            chunks.append(
                Chunk(ts_ns[rows], {p: c[rows] for p, c in periodic.items()}, PRIORITY_LOW, "periodic")
            )
        history_ts, history = self._history(ts_ns)
        self._ring.append(ts_ns, values, sent)
        if self._triggers and n:
            flags, self.known_dtcs = new_dtc_flags(
                self.known_dtcs, dtc_readings if len(dtc_readings) == n else [None] * n
            )
            # Trailing windows read the rows before this flush too; only this flush's rows fire.
            rows_ts = np.concatenate([history_ts, ts_ns])
            rows = np.concatenate([history, values])
            env = {path: rows[:, j] for j, path in enumerate(self.paths)}
            env[expression.NEW_DTC] = np.concatenate(
                [np.zeros(history_ts.shape[0]), flags.astype(np.float64)]
            )
            self._fire(ts_ns, env, rows_ts)
        if n:
            chunks.extend(self._complete(int(ts_ns[-1])))
        return chunks

    def _history(self, ts_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows already in the ring within the longest trigger window before `ts_ns[0]`."""
        if self._window_s <= 0 or ts_ns.shape[0] == 0:
            return np.empty(0, np.int64), np.empty((0, len(self.paths)))
        return self._ring.rows_since(int(ts_ns[0]) - round(self._window_s * 1e9))

    def _fire(self, ts_ns: np.ndarray, env: dict[str, np.ndarray], rows_ts: np.ndarray) -> None:
        skip = rows_ts.shape[0] - ts_ns.shape[0]  # history rows only feed the windows
        for i, (rule, tree, state) in enumerate(self._triggers):
            fired, new_state = fire_times(
                ts_ns,
                expression.evaluate(tree, env, rows_ts.shape[0], rows_ts)[skip:],
                rising_edge=rule.mode == "rising_edge",
                min_interval_ns=round(rule.min_interval_s * 1e9),
                state=state,
            )
            self._triggers[i] = (rule, tree, new_state)
            paths = rule.signals or self.paths
            self._pending.extend(window_for(rule.name, t, rule.pre_s, rule.post_s, paths) for t in fired)
            self.trigger_count += len(fired)

    def _complete(self, now_ns: int) -> list[Chunk]:
        done = [w for w in self._pending if w.end_ns <= now_ns]
        self._pending = [w for w in self._pending if w.end_ns > now_ns]
        chunks = []
        for window in done:
            ts, columns = self._ring.take_unsent(window.start_ns, window.end_ns, window.paths)
            if ts.size:
                chunks.append(Chunk(ts, columns, PRIORITY_HIGH, f"trigger:{window.trigger}"))
        return chunks


def merge_chunks(
    pieces: Sequence[tuple[np.ndarray, Mapping[str, np.ndarray]]],
) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Merge consecutive periodic chunks (ts, columns) into one, columns aligned with NaN. If their
    times do not strictly increase across chunks (the clock was set back between two runs), each
    chunk stays on its own so that no batch is ever invalid."""
    if not pieces:
        return []
    ts = np.concatenate([p[0] for p in pieces])
    if ts.size > 1 and np.diff(ts // 1000).min() <= 0:
        return [(p[0], dict(p[1])) for p in pieces]
    paths = list(dict.fromkeys(path for _, cols in pieces for path in cols))
    columns = {
        path: np.concatenate([cols.get(path, np.full(t.shape[0], np.nan)) for t, cols in pieces])
        for path in paths
    }
    return [(ts, columns)]
