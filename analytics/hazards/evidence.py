"""Whether each site is a hazard, replayed over its evidence in time order.

Evidence is the site's events (with a pseudonymous key per vehicle) and the passes over it (with
or without an event). After each piece of evidence the site is judged. It becomes a hazard when
- at least K distinct vehicles had an event there, and
- the share of its most recent passes that had an event is, at its one-sided 95% Wilson lower
  bound, above the kind's minimum (a busy junction sees a random harsh brake now and then; a
  dangerous one sees them from a steady share of drivers);
and it stays one until withdrawn: when the upper bound of that share falls under the minimum, or
when its confidence, the belief that it is still there, falls under one half. Each pass without an
event since the last event is evidence against: with the event rate p the site showed until then,
n clean passes are likely (1 - p)^n if it is still there, so the belief drops fast for a pothole
that every car felt and slowly for a junction where one driver in three brakes hard. Traffic comes
in waves, so runs of clean passes are longer than a coin would give: a hazard is withdrawn this way
only once no vehicle has reported it for `min_quiet_s`. Evidence also ages: the belief halves every
`half_life_s` without an event.
The replay gives each site's confirmed intervals in data time (so a scorer can ask "was it on the
map 30 minutes after its repair?") and its state now. Pure: numpy only, vectorised over sites.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.hazards.config import HazardThresholds


@dataclass(frozen=True)
class SiteEvidence:
    """Per site (parallel arrays, index = site), plus the confirmed intervals as
    `[from_ns, until_ns or None]` lists."""

    events: np.ndarray
    vehicles: np.ndarray
    passes: np.ndarray
    event_passes: np.ndarray
    clean_passes: np.ndarray  # passes without an event since the last event
    rate_lower: np.ndarray  # Wilson lower bound of the recent event rate per pass
    confidence: np.ndarray  # at `now_ns`
    state: np.ndarray  # object: candidate, confirmed, retracted, expired
    first_event_ns: np.ndarray
    last_event_ns: np.ndarray
    intervals: list[list[list[int | None]]]


def wilson_lower(k: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """One-sided Wilson score lower bound of a proportion k/n (0 where n = 0)."""
    return _wilson(k, n, z, -1.0, 0.0)


def wilson_upper(k: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """One-sided Wilson score upper bound of a proportion k/n (1 where n = 0)."""
    return _wilson(k, n, z, 1.0, 1.0)


def _wilson(k: np.ndarray, n: np.ndarray, z: float, sign: float, empty: float) -> np.ndarray:
    n_f = np.maximum(n, 1).astype(float)
    p = k / n_f
    centre = p + z * z / (2 * n_f)
    spread = z * np.sqrt(np.maximum(p * (1 - p) / n_f + z * z / (4 * n_f * n_f), 0.0))
    return np.where(n > 0, np.clip((centre + sign * spread) / (1 + z * z / n_f), 0.0, 1.0), empty)


def replay(
    n_sites: int,
    min_rate: np.ndarray,
    ev_site: np.ndarray,
    ev_ts_ns: np.ndarray,
    ev_vehicle_key: np.ndarray,
    pass_site: np.ndarray,
    pass_ts_ns: np.ndarray,
    pass_with_event: np.ndarray,
    now_ns: int,
    th: HazardThresholds,
) -> SiteEvidence:
    """Replay every site's evidence (events and passes, any order) and judge it after each item.
    `min_rate[s]` is the minimum event rate of site s's kind; `ev_vehicle_key` is any integer key
    per vehicle (pseudonymous)."""
    n_ev, n_pass = ev_site.shape[0], pass_site.shape[0]
    site = np.r_[ev_site, pass_site].astype(np.int64)
    ts = np.r_[ev_ts_ns, pass_ts_ns].astype(np.int64)
    is_event = np.r_[np.ones(n_ev, dtype=bool), np.zeros(n_pass, dtype=bool)]
    order = np.lexsort((~is_event, ts, site))  # per site by time; an event before a pass at one instant
    site, ts, is_event = site[order], ts[order], is_event[order]
    with_event = np.r_[np.zeros(n_ev, dtype=bool), pass_with_event.astype(bool)][order]
    key = np.r_[ev_vehicle_key.astype(np.int64), np.zeros(n_pass, dtype=np.int64)][order]
    n = site.shape[0]
    idx = np.arange(n)
    start_of = np.searchsorted(site, np.arange(n_sites + 1))
    first = start_of[site]  # each item's site's first item

    def per_site_cumsum(x: np.ndarray) -> np.ndarray:
        c = np.cumsum(x)
        return c - np.r_[0, c][first]

    # Distinct vehicles: an event whose (site, key) has not been seen before it.
    new_vehicle = np.zeros(n, dtype=bool)
    ev_rows = np.flatnonzero(is_event)
    _, first_seen = np.unique(np.stack([site[ev_rows], key[ev_rows]]), axis=1, return_index=True)
    new_vehicle[ev_rows[first_seen]] = True  # ev_rows are in time order within a site
    vehicles = per_site_cumsum(new_vehicle)
    events = per_site_cumsum(is_event)
    is_pass = ~is_event
    passes = per_site_cumsum(is_pass)
    # The event rate over the last W passes: global cumulative counts over pass items.
    cum_pass = np.cumsum(is_pass)
    cum_with = np.cumsum(with_event)
    pass_items = np.flatnonzero(is_pass)
    cw_at_pass = np.r_[0, cum_with[pass_items]]  # with-event count after the j-th pass (global)
    site_first_pass = np.r_[0, cum_pass][first]
    window_start = np.maximum(site_first_pass, cum_pass - th.rate_window_passes)
    k_win = cw_at_pass[cum_pass] - cw_at_pass[window_start]
    n_win = cum_pass - window_start
    rate_lower = wilson_lower(k_win, n_win, th.rate_z)
    # Clean passes since the last event, and the rate the site showed at that event.
    reset = is_event | with_event
    last_reset = np.maximum.accumulate(np.where(reset, idx, -1))
    has_reset = last_reset >= first
    at = np.maximum(last_reset, 0)
    clean = per_site_cumsum(is_pass & ~with_event)
    clean_run = np.where(has_reset, clean - clean[at], 0)
    p_hat = (k_win[at] + 1.0) / (n_win[at] + 2.0)  # the rate the site showed at its last event
    prior = th.prior_present
    likelihood = np.power(1.0 - p_hat, clean_run)
    age_s = np.where(has_reset, (ts - ts[at]) / 1e9, 0.0)
    belief = prior * likelihood / (prior * likelihood + 1.0 - prior) * np.power(0.5, age_s / th.half_life_s)
    belief = np.where(has_reset, belief, 0.0)
    # A latch: established by K vehicles and a clear event rate, it holds until withdrawn by a quiet
    # spell of clean passes, or by a recent event rate clearly under the kind's minimum.
    rate_upper = wilson_upper(k_win, n_win, th.rate_z)
    withdrawn = ((belief < th.retract_below) & (age_s >= th.min_quiet_s)) | (rate_upper < min_rate[site])
    established = (vehicles >= th.min_vehicles) & (rate_lower >= min_rate[site]) & ~withdrawn
    last_set = np.maximum.accumulate(np.where(established, idx, -1))
    last_reset = np.maximum.accumulate(np.where(withdrawn, idx, -1))
    confirmed = (last_set >= first) & (last_set > last_reset)
    last_evidence_ns = np.where(has_reset, ts[at], ts)
    event_passes = per_site_cumsum(with_event & is_pass)
    return _summarise(
        n_sites, start_of, site, ts, is_event, events, vehicles, passes, event_passes,
        clean_run, rate_lower, belief, confirmed, last_evidence_ns, now_ns, th,
    )  # fmt: skip


def _summarise(
    n_sites: int,
    start_of: np.ndarray,
    site: np.ndarray,
    ts: np.ndarray,
    is_event: np.ndarray,
    events: np.ndarray,
    vehicles: np.ndarray,
    passes: np.ndarray,
    event_passes: np.ndarray,
    clean_run: np.ndarray,
    rate_lower: np.ndarray,
    belief: np.ndarray,
    confirmed: np.ndarray,
    last_evidence_ns: np.ndarray,
    now_ns: int,
    th: HazardThresholds,
) -> SiteEvidence:
    """Each site's last item, its state now and its confirmed intervals."""
    has = start_of[1:] > start_of[:-1]
    last = np.maximum(start_of[1:] - 1, 0)

    def at_last(x: np.ndarray, empty: float | int = 0) -> np.ndarray:
        return np.where(has, x[last] if x.size else empty, empty)

    ev_ts = np.where(is_event, ts, -1)
    last_event = np.full(n_sites, -1, dtype=np.int64)
    np.maximum.at(last_event, site, ev_ts)
    first_event = np.full(n_sites, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_event, site, np.where(is_event, ts, np.iinfo(np.int64).max))
    last_ts = at_last(ts)
    belief_now = at_last(belief, 0.0) * np.power(0.5, np.maximum(now_ns - last_ts, 0) / 1e9 / th.half_life_s)
    # Transitions of `confirmed` per site give its intervals.
    prev = np.r_[False, confirmed[:-1]] & np.r_[False, site[1:] == site[:-1]]
    ups, downs = np.flatnonzero(confirmed & ~prev), np.flatnonzero(~confirmed & prev)
    intervals: list[list[list[int | None]]] = [[] for _ in range(n_sites)]
    for i in np.sort(np.r_[ups, downs]):
        if confirmed[i]:
            intervals[int(site[i])].append([int(ts[i]), None])
        else:
            intervals[int(site[i])][-1][1] = int(ts[i])
    expired = has & (last_event >= 0) & (now_ns - last_event > th.expire_after_s * 1e9)
    quiet_now = now_ns - at_last(last_evidence_ns) >= th.min_quiet_s * 1e9
    withdrawn_now = (belief_now < th.retract_below) & quiet_now
    confirmed_now = at_last(confirmed, False).astype(bool) & ~withdrawn_now & ~expired
    ever = np.array([bool(iv) for iv in intervals], dtype=bool)
    state = np.where(
        expired, "expired", np.where(confirmed_now, "confirmed", np.where(ever, "retracted", "candidate"))
    ).astype(object)
    for s in np.flatnonzero(~confirmed_now & ever):
        if intervals[s][-1][1] is None:  # aged out since its last evidence
            intervals[s][-1][1] = int(now_ns)
    return SiteEvidence(
        events=at_last(events),
        vehicles=at_last(vehicles),
        passes=at_last(passes),
        event_passes=at_last(event_passes),
        clean_passes=at_last(clean_run),
        rate_lower=at_last(rate_lower, 0.0),
        confidence=np.where(expired, 0.0, belief_now),
        state=state,
        first_event_ns=np.where(first_event == np.iinfo(np.int64).max, -1, first_event),
        last_event_ns=last_event,
        intervals=intervals,
    )
