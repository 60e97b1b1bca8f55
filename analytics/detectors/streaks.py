"""One persistence rule's state changes computed from streaks, not rows: the fast path of
`analytics.detectors.persistence`.

Owns: `rule_changes`, which gives exactly `transitions(vehicle, (markers(...),))` for a single rule.
A state can change only where a streak first satisfies its rule (every later row of the streak
repeats the same marker, and severity only escalates within an episode), so each streak is
reduced to that one row with `searchsorted` on its capped clock, and the transition logic runs
over those few events instead of over every row. `tests/analytics/test_streaks.py` checks the
equivalence with the row-by-row reference on random inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.detectors.persistence import NS_PER_S, Persistence, Transitions


@dataclass(frozen=True)
class _Streaks:
    """Streaks over the judged rows (broken by a vehicle change or a judged row of the other
    class): the judged rows, each streak's start and end (positions among them, end exclusive),
    whether it is a streak of members, and the capped clock (cumulative capped gaps, 0 across
    breaks; nondecreasing, so a deadline is one binary search)."""

    rows: np.ndarray
    start: np.ndarray
    end: np.ndarray
    member: np.ndarray
    brk: np.ndarray
    clock: np.ndarray


def _streaks(
    vehicle: np.ndarray, ts_ns: np.ndarray, judged: np.ndarray, member: np.ndarray, gap_cap_ns: int
) -> _Streaks:
    rows = np.flatnonzero(judged)
    m = rows.shape[0]
    v, c = vehicle[rows], member[rows]
    brk = np.empty(m, dtype=bool)
    brk[:1] = True
    np.not_equal(v[1:], v[:-1], out=brk[1:])
    brk[1:] |= c[1:] != c[:-1]
    start = np.flatnonzero(brk)
    end = np.empty_like(start)
    end[:-1], end[-1:] = start[1:], m
    t = ts_ns[rows]
    step = np.empty(m, dtype=np.int64)
    step[:1] = 0
    np.subtract(t[1:], t[:-1], out=step[1:])
    np.minimum(step, gap_cap_ns, out=step)
    step[brk] = 0
    return _Streaks(rows, start, end, c[start], brk, np.cumsum(step))


def _first_ok(
    st: _Streaks, member: bool, need_ns: int, need_rows: int, values: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(row where it first holds, row where it began) of each streak of the class `member` that
    holds `need_rows` rows spanning `need_ns` of capped time (and, with `values`, a change of value)."""
    pick = st.member if member else ~st.member
    start, end = st.start[pick], st.end[pick]
    first_ok = start + max(need_rows - 1, 0)
    if need_ns > 0 and start.size:
        first_ok = np.maximum(first_ok, np.searchsorted(st.clock, st.clock[start] + need_ns, side="left"))
    if values is not None and start.size:
        x = values[st.rows]
        changed = np.flatnonzero((x[1:] != x[:-1]) & ~st.brk[1:]) + 1
        after = np.append(changed, st.rows.shape[0])[np.searchsorted(changed, start, side="right")]
        first_ok = np.maximum(first_ok, after)
    ok = first_ok < end
    return st.rows[first_ok[ok]], st.rows[start[ok]]


def rule_changes(
    vehicle: np.ndarray,
    ts_ns: np.ndarray,
    bad_level: np.ndarray,
    good: np.ndarray,
    rule: Persistence,
    *,
    varying: np.ndarray | None = None,
) -> Transitions:
    """`transitions(vehicle, (markers(vehicle, ts_ns, bad_level, good, rule, varying=varying),))`,
    in O(rows) passes plus O(streaks log rows). `bad_level` holds small severities (0 = not bad)."""
    bad = np.where(good, 0, bad_level).astype(np.int64)
    cap_ns, raise_ns = int(rule.gap_cap_s * NS_PER_S), int(rule.raise_s * NS_PER_S)
    counts = np.bincount(bad, minlength=2) if bad.size else np.zeros(2, dtype=np.int64)
    levels = np.flatnonzero(counts[1:]) + 1
    ev_row, ev_code, ev_since = [], [], []
    mildest: _Streaks | None = None
    for level in levels:  # a handful of severity levels, mildest first
        member = bad >= level
        st = _streaks(vehicle, ts_ns, member | good, member, cap_ns)
        at, began = _first_ok(st, True, raise_ns, rule.raise_rows, varying)
        if mildest is None:
            mildest = st
        else:  # since: when the mildest level's streak holding the row began (as `markers` says)
            pos = np.searchsorted(mildest.rows, at)
            began = mildest.rows[mildest.start[np.searchsorted(mildest.start, pos, side="right") - 1]]
        ev_row.append(at)
        ev_code.append(np.full(at.shape[0], level, dtype=np.int64))
        ev_since.append(ts_ns[began])
    # With one level, its streaks are over the same rows as the clear rule's: reuse them.
    st = (
        mildest
        if levels.size == 1 and mildest is not None
        else _streaks(vehicle, ts_ns, (bad > 0) | good, good, cap_ns)
    )
    at, began = _first_ok(st, levels.size != 1, int(rule.clear_s * NS_PER_S), rule.clear_rows, None)
    ev_row.append(at)
    ev_code.append(np.zeros(at.shape[0], dtype=np.int64))
    ev_since.append(ts_ns[began])
    return _events_to_transitions(
        vehicle, np.concatenate(ev_row), np.concatenate(ev_code), np.concatenate(ev_since)
    )


def flag_changes(
    vehicle: np.ndarray,
    ts_ns: np.ndarray,
    judged: np.ndarray,
    bad: np.ndarray,
    level: int,
    rule: Persistence,
    *,
    varying: np.ndarray | None = None,
) -> Transitions:
    """`rule_changes` with one severity: the `bad` rows (at `level`; a subset of `judged`) against
    the other judged rows, which are good. The same transitions without building a level array."""
    st = _streaks(vehicle, ts_ns, judged, bad, int(rule.gap_cap_s * NS_PER_S))
    raised, raised_began = _first_ok(st, True, int(rule.raise_s * NS_PER_S), rule.raise_rows, varying)
    clear, clear_began = _first_ok(st, False, int(rule.clear_s * NS_PER_S), rule.clear_rows, None)
    return _events_to_transitions(
        vehicle,
        np.concatenate((raised, clear)),
        np.concatenate((np.full(raised.shape[0], level, dtype=np.int64), np.zeros(clear.shape[0], np.int64))),
        ts_ns[np.concatenate((raised_began, clear_began))],
    )


def _events_to_transitions(
    vehicle: np.ndarray, row: np.ndarray, code: np.ndarray, since: np.ndarray
) -> Transitions:
    """Markers (one per row: the highest code there) to state changes, as `transitions` does."""
    order = np.lexsort((code, row))
    row, code, since = row[order], code[order], since[order]
    last = np.ones(row.shape[0], dtype=bool)
    last[:-1] = row[1:] != row[:-1]
    row, code, since = row[last], code[last], since[last]
    e = row.shape[0]
    v = vehicle[row]
    new_vehicle = np.ones(e, dtype=bool)
    new_vehicle[1:] = v[1:] != v[:-1]
    raised = code > 0
    prev_raised = np.zeros(e, dtype=bool)
    prev_raised[1:] = raised[:-1]
    episode = np.cumsum(raised & (new_vehicle | ~prev_raised))
    top = np.maximum.accumulate(episode * 16 + np.where(raised, code, 0)) if e else episode
    level = np.where(raised, top - episode * 16, code)
    changed = new_vehicle.copy()
    changed[1:] |= level[1:] != level[:-1]
    return Transitions(
        row=row[changed],
        level=level[changed],
        since_ns=since[changed],
        rule=np.where(raised, 0, -1)[changed],
    )
