"""One persistence rule's state changes computed from streaks, not rows: the fast path of
`analytics.detectors.persistence`.

Owns: `rule_changes`, which gives exactly `transitions(vehicle, (markers(...),))` for a single rule.
A state can change only where a streak first satisfies its rule (every later row of the streak
repeats the same marker, and severity only escalates within an episode), so each streak is
reduced to that one row with `searchsorted` on its capped clock, and the transition logic runs
over those few events instead of over every row. `tests/analytics/test_streaks.py` checks the
equivalence with the row-by-row reference on random inputs. Rules that judge the same rows (many
signals of one vehicle state) build those rows and their clock once (`JudgedRows`) and differ only
in which rows are bad (`judged_flag_changes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.detectors.persistence import NS_PER_S, Persistence, Transitions


@dataclass(frozen=True)
class JudgedRows:
    """The rows a rule judges, compacted (position i is the i-th judged row, in (vehicle, time)
    order): each one's vehicle (or any finer key whose rows are contiguous), time, whether it starts
    its key's rows, and the capped clock: cumulative gaps, each at most the rule's `gap_cap_s` and
    none across a change of key, so nondecreasing (a deadline is one binary search) and exact for
    any span within one key's rows. Rules that judge the same rows (one vehicle state, many
    signals) share it and differ only in which of the rows are bad."""

    key: np.ndarray
    t_ns: np.ndarray
    new_key: np.ndarray
    clock: np.ndarray
    gap_cap_ns: int


def judged_rows(key: np.ndarray, t_ns: np.ndarray, gap_cap_s: float) -> JudgedRows:
    """`JudgedRows` of rows already chosen (`key` and `t_ns` of the judged rows, in order)."""
    m = key.shape[0]
    new_key = np.empty(m, dtype=bool)
    new_key[:1] = True
    np.not_equal(key[1:], key[:-1], out=new_key[1:])
    cap_ns = int(gap_cap_s * NS_PER_S)
    step = np.empty(m, dtype=np.int64)
    step[:1] = 0
    np.subtract(t_ns[1:], t_ns[:-1], out=step[1:])
    np.clip(step, 0, cap_ns, out=step)  # below 0 only across a change of key
    return JudgedRows(key, t_ns, new_key, np.cumsum(step), cap_ns)


@dataclass(frozen=True)
class _Streaks:
    """Streaks over judged rows (broken by a change of key or a judged row of the other class):
    each streak's start and end (positions, end exclusive), whether it is a streak of members,
    where streaks break, and the judged rows' capped clock."""

    start: np.ndarray
    end: np.ndarray
    member: np.ndarray
    brk: np.ndarray
    clock: np.ndarray


def _streaks(rows: JudgedRows, member: np.ndarray) -> _Streaks:
    m = member.shape[0]
    brk = rows.new_key.copy()
    brk[1:] |= member[1:] != member[:-1]
    start = np.flatnonzero(brk)
    end = np.empty_like(start)
    end[:-1], end[-1:] = start[1:], m
    return _Streaks(start, end, member[start], brk, rows.clock)


def _first_ok(
    st: _Streaks, member: bool, need_ns: int, need_rows: int, values: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(position where it first holds, position where it began) of each streak of the class
    `member` that holds `need_rows` rows spanning `need_ns` of capped time (and, with `values`,
    per position, a change of value)."""
    pick = st.member if member else ~st.member
    start, end = st.start[pick], st.end[pick]
    first_ok = start + max(need_rows - 1, 0)
    if need_ns > 0 and start.size:
        first_ok = np.maximum(first_ok, np.searchsorted(st.clock, st.clock[start] + need_ns, side="left"))
    if values is not None and start.size:
        x = values
        changed = np.flatnonzero((x[1:] != x[:-1]) & ~st.brk[1:]) + 1
        after = np.append(changed, x.shape[0])[np.searchsorted(changed, start, side="right")]
        first_ok = np.maximum(first_ok, after)
    ok = first_ok < end
    return first_ok[ok], start[ok]


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
    raise_ns = int(rule.raise_s * NS_PER_S)
    counts = np.bincount(bad, minlength=2) if bad.size else np.zeros(2, dtype=np.int64)
    levels = np.flatnonzero(counts[1:]) + 1
    ev_row, ev_code, ev_since = [], [], []
    mildest: tuple[np.ndarray, _Streaks] | None = None
    for level in levels:  # a handful of severity levels, mildest first
        member = bad >= level
        rows = np.flatnonzero(member | good)
        st = _streaks(judged_rows(vehicle[rows], ts_ns[rows], rule.gap_cap_s), member[rows])
        at, began = _first_ok(st, True, raise_ns, rule.raise_rows, None if varying is None else varying[rows])
        at = rows[at]
        if mildest is None:
            mildest = (rows, st)
            began = rows[began]
        else:  # since: when the mildest level's streak holding the row began (as `markers` says)
            m_rows, m_st = mildest
            pos = np.searchsorted(m_rows, at)
            began = m_rows[m_st.start[np.searchsorted(m_st.start, pos, side="right") - 1]]
        ev_row.append(at)
        ev_code.append(np.full(at.shape[0], level, dtype=np.int64))
        ev_since.append(ts_ns[began])
    # With one level, its streaks are over the same rows as the clear rule's: reuse them.
    if levels.size == 1 and mildest is not None:
        rows, st = mildest
    else:
        rows = np.flatnonzero((bad > 0) | good)
        st = _streaks(judged_rows(vehicle[rows], ts_ns[rows], rule.gap_cap_s), good[rows])
    at, began = _first_ok(st, levels.size != 1, int(rule.clear_s * NS_PER_S), rule.clear_rows, None)
    ev_row.append(rows[at])
    ev_code.append(np.zeros(at.shape[0], dtype=np.int64))
    ev_since.append(ts_ns[rows[began]])
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
    rows = np.flatnonzero(judged)
    tr = judged_flag_changes(
        judged_rows(vehicle[rows], ts_ns[rows], rule.gap_cap_s),
        bad[rows],
        level,
        rule,
        varying=None if varying is None else varying[rows],
    )
    return Transitions(rows[tr.row], tr.level, tr.since_ns, tr.rule)


def judged_flag_changes(
    rows: JudgedRows, bad: np.ndarray, level: int, rule: Persistence, *, varying: np.ndarray | None = None
) -> Transitions:
    """`flag_changes` over judged rows already compacted (`bad` and `varying` per position; the
    rows' clock must have the rule's gap cap). The transitions' `row` are positions in `rows`."""
    if rows.gap_cap_ns != int(rule.gap_cap_s * NS_PER_S):
        raise ValueError("the judged rows' clock has another gap cap than the rule")
    st = _streaks(rows, bad)
    raised, raised_began = _first_ok(st, True, int(rule.raise_s * NS_PER_S), rule.raise_rows, varying)
    clear, clear_began = _first_ok(st, False, int(rule.clear_s * NS_PER_S), rule.clear_rows, None)
    # One level, and a position is in one streak only, so no two events share a position and a
    # raised state is always at `level`: the state changes are where the key or the code changes
    # (what `_events_to_transitions` gives for such events, without its sort and escalation).
    at = np.concatenate((raised, clear))
    order = np.argsort(at, kind="stable")  # two sorted runs: one merge
    at = at[order]
    code = np.zeros(at.shape[0], dtype=np.int64)
    code[: raised.shape[0]] = level
    code = code[order]
    key = rows.key[at]
    changed = np.ones(at.shape[0], dtype=bool)
    changed[1:] = (key[1:] != key[:-1]) | (code[1:] != code[:-1])
    since = rows.t_ns[np.concatenate((raised_began, clear_began))[order[changed]]]
    code = code[changed]
    return Transitions(row=at[changed], level=code, since_ns=since, rule=np.where(code > 0, 0, -1))


def stacked_flag_changes(
    rows: JudgedRows, bad: np.ndarray, level: int, rules: Sequence[Persistence]
) -> list[Transitions]:
    """`judged_flag_changes` of several series that judge the same rows (a row of `bad` and a rule
    each; the rules may differ in `raise_s` only), in one pass over all of them: series k's
    positions follow series k-1's, and a streak never runs from one series into the next. One
    `Transitions` per series, its `row` positions in `rows`."""
    n_series, m = bad.shape
    if (
        len(rules) != n_series
        or len({(r.raise_rows, r.clear_s, r.clear_rows, r.gap_cap_s) for r in rules}) > 1
    ):
        raise ValueError("one rule per series, differing in raise_s only")
    if rules and rows.gap_cap_ns != int(rules[0].gap_cap_s * NS_PER_S):
        raise ValueError("the judged rows' clock has another gap cap than the rules")
    if not n_series or not m:
        z = np.zeros(0, dtype=np.int64)
        return [Transitions(z, z, z, z) for _ in range(n_series)]
    brk = np.empty((n_series, m), dtype=bool)
    brk[:, :1] = True
    np.not_equal(bad[:, 1:], bad[:, :-1], out=brk[:, 1:])
    brk |= rows.new_key
    start = np.flatnonzero(brk)  # streaks of all series, series after series
    end = np.empty_like(start)
    end[:-1], end[-1:] = start[1:], n_series * m
    member = bad.ravel()[start]
    raise_ns = np.array([int(r.raise_s * NS_PER_S) for r in rules], dtype=np.int64)
    first = []
    for is_member, need_rows, need in (
        (True, rules[0].raise_rows, raise_ns),
        (False, rules[0].clear_rows, np.full(n_series, int(rules[0].clear_s * NS_PER_S))),
    ):
        s, e = (start[member], end[member]) if is_member else (start[~member], end[~member])
        first_ok = s + max(need_rows - 1, 0)
        if s.size and (need > 0).any():  # the deadline on the series' clock (the judged rows' own)
            base = s // m * m
            deadline = rows.clock[s - base] + need[s // m]
            first_ok = np.maximum(first_ok, base + np.searchsorted(rows.clock, deadline, side="left"))
        ok = first_ok < e
        first.append((first_ok[ok], s[ok]))
    (raised, raised_began), (clear, clear_began) = first
    # As in `judged_flag_changes`: the state changes where the series, key or code changes.
    at = np.concatenate((raised, clear))
    order = np.argsort(at, kind="stable")
    at = at[order]
    code = np.zeros(at.shape[0], dtype=np.int64)
    code[: raised.shape[0]] = level
    code = code[order]
    series = at // m
    pos = at - series * m
    key = rows.key[pos]
    changed = np.ones(at.shape[0], dtype=bool)
    changed[1:] = (series[1:] != series[:-1]) | (key[1:] != key[:-1]) | (code[1:] != code[:-1])
    began = np.concatenate((raised_began, clear_began))[order[changed]]
    since = rows.t_ns[began % m]
    pos, code, series = pos[changed], code[changed], series[changed]
    bounds = np.searchsorted(series, np.arange(n_series + 1))
    rule = np.where(code > 0, 0, -1)
    return [
        Transitions(pos[lo:hi], code[lo:hi], since[lo:hi], rule[lo:hi])
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)
    ]


def _events_to_transitions(
    vehicle: np.ndarray, row: np.ndarray, code: np.ndarray, since: np.ndarray
) -> Transitions:
    """Markers (one per row: the highest code there) to state changes, as `transitions` does.
    `vehicle` is indexed by `row` (the rows' vehicles, or the keys of compacted positions)."""
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
