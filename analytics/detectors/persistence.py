"""When a per-row condition has held long enough to raise an alarm, when its absence has held long
enough to clear it, and the transitions that follow: the persistence rules shared by the threshold
detectors (ThingsBoard's duration conditions, computed over columns instead of kept as counters).

Owns: streaks (runs of judged rows of one class within one vehicle), markers (the rows where a
raise or clear rule is satisfied), and combining one or more rules into a vehicle-level state whose
severity only escalates within an episode. Leaves to each detector what a row means: bad at some
severity, good, or not judged (NaN, engine off, cold engine...).

Rules, for every detector alike:
- A row that is neither bad nor good does not break a streak and adds nothing to it.
- A streak's duration is the time between its judged rows, each gap counted at most `gap_cap_s`,
  so a parked night neither sustains a fault nor proves it gone.
- The raise rule at severity L holds at a row when the rows bad at L or worse since the last good
  row span at least `raise_s` and number at least `raise_rows` (rows bad at a lower level do not
  break it); optionally the values must have changed at least once in that streak, so a sensor
  flat-lined at a bad value is not taken as evidence. The clear rule holds when the good rows since
  the last bad one span `clear_s` and number `clear_rows`.
- The state at a row is the one of the newest marker up to it, so it depends only on the rows a
  window holds: a trailing window that starts inside a streak sees the streak shorter, never
  longer, and reaches the same final state whenever it holds the final marker's streak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Persistence:
    """How long a condition must hold to raise, and its absence to clear (seconds of judged time)."""

    raise_s: float
    raise_rows: int
    clear_s: float
    clear_rows: int
    gap_cap_s: float = 60.0


@dataclass(frozen=True)
class Markers:
    """Per row: the severity at which the raise rule holds (0 = it does not), whether the clear rule
    holds, and when the streak that satisfies it began (ns; meaningful where a marker is)."""

    raise_level: np.ndarray  # int64
    clear: np.ndarray  # bool
    since_ns: np.ndarray  # int64


@dataclass(frozen=True)
class Transitions:
    """Changes of one fault's state, in (vehicle, time) order: `level` 0 = clear, else the Severity
    value; `rule` is the index of the rule that set a raised state (-1 for a clear)."""

    row: np.ndarray
    level: np.ndarray
    since_ns: np.ndarray
    rule: np.ndarray


def previous_index(vehicle: np.ndarray, present: np.ndarray) -> np.ndarray:
    """For each row, the index of the newest earlier row of the same vehicle where `present` holds
    (-1 when there is none)."""
    n = present.shape[0]
    prev = np.full(n, -1, dtype=np.int64)
    if n > 1:
        prev[1:] = np.arange(n - 1) if present.all() else latest_index(vehicle[:-1], present[:-1])
    ok = vehicle.take(prev) == vehicle  # (a -1 wraps around; the next line drops it)
    ok &= prev >= 0
    return np.where(ok, prev, -1)


def latest_index(vehicle: np.ndarray, present: np.ndarray) -> np.ndarray:
    """For each row, the newest row up to and including it, same vehicle, where `present` holds."""
    n = present.shape[0]
    last = np.where(present, np.arange(n), -1)
    if n:
        np.maximum.accumulate(last, out=last)
    ok = vehicle.take(last) == vehicle  # (a -1 wraps around; the next line drops it)
    ok &= last >= 0
    return np.where(ok, last, -1)


def first_rows(vehicle: np.ndarray) -> np.ndarray:
    """True at each vehicle's first row."""
    first = np.ones(vehicle.shape[0], dtype=bool)
    first[1:] = vehicle[1:] != vehicle[:-1]
    return first


def _streaks(
    vehicle: np.ndarray,
    ts_ns: np.ndarray,
    judged: np.ndarray,
    member: np.ndarray,
    gap_cap_s: float,
    values: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Over the judged rows: (rows, count, duration ns, start ns, value changes) of the streak of
    `member` rows each judged member row belongs to, up to and including it."""
    rows = np.flatnonzero(judged)
    v, t, c = vehicle[rows], ts_ns[rows], member[rows]
    m = rows.shape[0]
    pos = np.arange(m)
    brk = np.ones(m, dtype=bool)
    brk[1:] = (v[1:] != v[:-1]) | (c[1:] != c[:-1])
    start = np.maximum.accumulate(np.where(brk, pos, 0)) if m else pos
    step = np.zeros(m, dtype=np.int64)
    step[1:] = np.minimum(np.diff(t), int(gap_cap_s * NS_PER_S))
    step[brk] = 0
    cum = np.cumsum(step)
    dur = cum - cum[start]
    changes = np.zeros(m, dtype=np.int64)
    if values is not None and m:
        x = values[rows]
        ch = np.zeros(m, dtype=np.int64)
        ch[1:] = x[1:] != x[:-1]
        ch[brk] = 0
        cc = np.cumsum(ch)
        changes = cc - cc[start]
    keep = c
    return rows[keep], (pos - start + 1)[keep], dur[keep], t[start][keep], changes[keep]


def markers(
    vehicle: np.ndarray,
    ts_ns: np.ndarray,
    bad_level: np.ndarray,
    good: np.ndarray,
    rule: Persistence,
    *,
    varying: np.ndarray | None = None,
) -> Markers:
    """Where the raise rule (per severity level in `bad_level`, 0 = not bad) and the clear rule
    (`good`) hold. `varying`: values whose bad streak must change at least once to raise."""
    n = ts_ns.shape[0]
    bad_level = np.where(good, 0, bad_level).astype(np.int64)
    raise_level = np.zeros(n, dtype=np.int64)
    since = np.zeros(n, dtype=np.int64)
    has_since = np.zeros(n, dtype=bool)
    for level in np.unique(bad_level[bad_level > 0]):  # a handful of severity levels, mildest first
        member = bad_level >= level
        rows, count, dur, start, changes = _streaks(
            vehicle, ts_ns, member | good, member, rule.gap_cap_s, varying
        )
        ok = (count >= rule.raise_rows) & (dur >= int(rule.raise_s * NS_PER_S))
        if varying is not None:
            ok &= changes >= 1
        sel = rows[ok]
        raise_level[sel] = level
        fresh = ~has_since[sel]  # since: when the mildest level's streak began
        since[sel[fresh]] = start[ok][fresh]
        has_since[sel] = True
    rows, count, dur, start, _ = _streaks(vehicle, ts_ns, (bad_level > 0) | good, good, rule.gap_cap_s, None)
    ok = (count >= rule.clear_rows) & (dur >= int(rule.clear_s * NS_PER_S))
    clear = np.zeros(n, dtype=bool)
    clear[rows[ok]] = True
    since[rows[ok]] = start[ok]
    return Markers(raise_level, clear, since)


def transitions(vehicle: np.ndarray, rules: Sequence[Markers]) -> Transitions:
    """One fault's state changes from one or more rules: raised while any rule's newest marker is a
    raise (severity: the worst of them, never lower within one episode), clear when every rule that
    has a marker is clear. Each vehicle's first state in the data counts as a change."""
    n = vehicle.shape[0]
    any_marker = np.zeros(n, dtype=bool)
    states, sinces = [], []
    for mk in rules:
        code = np.where(mk.raise_level > 0, mk.raise_level, np.where(mk.clear, 0, -1))
        has = code >= 0
        any_marker |= has
        last = latest_index(vehicle, has)
        states.append(np.where(last >= 0, code[np.maximum(last, 0)], -1))
        sinces.append(np.where(last >= 0, mk.since_ns[np.maximum(last, 0)], 0))
    ev = np.flatnonzero(any_marker)
    st = np.stack([s[ev] for s in states]) if rules else np.zeros((0, 0), dtype=np.int64)
    sn = np.stack([s[ev] for s in sinces]) if rules else np.zeros((0, 0), dtype=np.int64)
    level = st.max(axis=0) if ev.size else np.zeros(0, dtype=np.int64)
    raised = level > 0
    v = vehicle[ev]
    new_vehicle = np.ones(ev.size, dtype=bool)
    new_vehicle[1:] = v[1:] != v[:-1]
    prev_raised = np.zeros(ev.size, dtype=bool)
    prev_raised[1:] = raised[:-1]
    episode = np.cumsum(raised & (new_vehicle | ~prev_raised))
    acc = np.maximum.accumulate(episode * 16 + np.where(raised, level, 0)) if ev.size else episode
    level = np.where(raised, acc - episode * 16, level)
    changed = new_vehicle.copy()
    changed[1:] |= level[1:] != level[:-1]
    changed &= level >= 0
    big = np.iinfo(np.int64).max
    since_raise = np.where(st > 0, sn, big).min(axis=0) if ev.size else np.zeros(0, dtype=np.int64)
    since_clear = np.where(st == 0, sn, 0).max(axis=0) if ev.size else np.zeros(0, dtype=np.int64)
    rule = np.argmax(st, axis=0) if ev.size else np.zeros(0, dtype=np.int64)
    pick = np.flatnonzero(changed)
    return Transitions(
        row=ev[pick],
        level=level[pick],
        since_ns=np.where(raised, since_raise, since_clear)[pick],
        rule=np.where(raised, rule, -1)[pick],
    )
