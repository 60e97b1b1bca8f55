"""The report step's decisions over a chunk of stored reports, as pure functions (no I/O).

Owns:
- `judge_chunk`: the verdict on each claimed report, in the order given (each offer's in seq
  order), by `ota.reports.judge` (signature, nonce, age, replay) against the offer as locked and
  the seqs accepted earlier in the same chunk, so a replay inside one chunk is caught as one across
  chunks is; a report judged `accepted` before (by `fleet ota verify-reports`) is taken as it is;
- `fold_members`: what the chunk's accepted reports make of each campaign member (the state and
  reason of its newest report, `committed_at` from its newest `committed` report);
- `fold_inventory`: what they make of each vehicle's software inventory (the report's `after`,
  unless an entry reported later is stored: the inventory only moves forward in the vehicle's
  time), with the history rows of each change.
Leaves claiming, locking and writing to the shell, `ota.report_step`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from contract.errors import DecodeError
from contract.timestamps import datetime_of_ns
from contract.update import UpdateReport, parse_update_report
from ota.controller import REPORTED_STATES
from ota.reports import ACCEPTED, OfferRecord, judge


@dataclass(frozen=True)
class Claimed:
    """A stored report as the step claimed it."""

    report_id: int
    vehicle_id: str  # the vehicle of the topic it came on (ingest checked the payload's against it)
    offer_id: str
    seq: int
    verdict: str | None  # None: not judged yet; `accepted`: judged before, not applied yet
    payload: bytes
    received_at: dt.datetime  # ingest's receipt


@dataclass(frozen=True)
class Outcome:
    """One claimed report's verdict; an accepted one (`report` set) is to be applied."""

    report_id: int
    verdict: str
    judged_now: bool  # False: accepted before, applied now (caught up)
    report: UpdateReport | None = None  # the report when accepted
    at: dt.datetime | None = None  # the vehicle's time of it, never later than ingest's receipt


def judge_chunk(
    claimed: Sequence[Claimed],
    offers: Mapping[str, OfferRecord],
    keys: Mapping[str, Mapping[str, bytes]],
) -> list[Outcome]:
    """The outcome of each claimed report, in the order given. `offers`: the claimed reports'
    offers by id (an offer missing: `unknown_offer`); `keys`: each vehicle's active keys."""
    last_seq = {offer_id: offer.last_seq for offer_id, offer in offers.items()}
    out: list[Outcome] = []
    for c in claimed:
        report = _parse(c.payload)
        if c.verdict == ACCEPTED:
            if report is None:  # cannot be: it parsed when it was accepted; applied without effect
                out.append(Outcome(c.report_id, ACCEPTED, judged_now=False))
            else:
                out.append(Outcome(c.report_id, ACCEPTED, False, report, _at(report, c.received_at)))
            continue
        if report is None or report.vehicle_id != c.vehicle_id:
            out.append(Outcome(c.report_id, "malformed", judged_now=True))
            continue
        offer = offers.get(c.offer_id)
        if offer is not None:
            offer = dataclasses.replace(offer, last_seq=last_seq[c.offer_id])
        verdict = judge(report, offer, keys.get(c.vehicle_id, {}))
        if verdict != ACCEPTED:
            out.append(Outcome(c.report_id, verdict, judged_now=True))
            continue
        last_seq[c.offer_id] = report.seq
        out.append(Outcome(c.report_id, ACCEPTED, True, report, _at(report, c.received_at)))
    return out


@dataclass(frozen=True)
class MemberMove:
    """A campaign member's state after the chunk's reports of it."""

    campaign_id: int
    vehicle_id: str
    state: str  # a campaign member state (`ota.rollout.VehicleState`)
    reason: str
    committed_at: dt.datetime | None  # None: keep the stored one


def fold_members(moves: Iterable[tuple[int, str, UpdateReport, dt.datetime]]) -> list[MemberMove]:
    """Each member's final move from its reports (campaign, vehicle, report, time), in the order
    applied: the newest report's state and reason; the newest `committed` report's time. Raises
    ValueError for a report state no member state answers (the report's parser allows none)."""
    folded: dict[tuple[int, str], MemberMove] = {}
    for campaign_id, vehicle_id, report, at in moves:
        state = REPORTED_STATES.get(report.state)
        if state is None:
            raise ValueError(f"unknown report state {report.state!r}")
        before = folded.get((campaign_id, vehicle_id))
        committed_at = at if report.state == "committed" else (before.committed_at if before else None)
        folded[(campaign_id, vehicle_id)] = MemberMove(
            campaign_id, vehicle_id, state.value, report.reason or "", committed_at
        )
    return list(folded.values())


@dataclass(frozen=True)
class Entry:
    """A vehicle's inventory entry for one ECU (`vehicle_software`)."""

    version: str
    hardware_id: str
    reported_at: dt.datetime


@dataclass
class InventoryFold:
    entries: dict[tuple[str, str], Entry]  # (vehicle, ECU) -> the entry to store (every one applied)
    history: list[tuple[str, str, str, str, dt.datetime]]  # software_history rows, in order
    changed: set[int]  # indexes (in the input) of the reports that changed the version


def fold_inventory(
    stored: Mapping[tuple[str, str], Entry], reports: Sequence[tuple[UpdateReport, dt.datetime]]
) -> InventoryFold:
    """Apply each report's `after` in order to the stored entries (by vehicle and ECU): skipped
    when the entry was reported later than the report; a new version goes to the history. A new
    entry has an empty hardware id (the next check-in fills it)."""
    current = dict(stored)
    fold = InventoryFold({}, [], set())
    for k, (report, at) in enumerate(reports):
        key = (report.vehicle_id, report.ecu)
        entry = current.get(key)
        if entry is not None and entry.reported_at > at:
            continue
        version = report.after.version
        hardware_id = "" if entry is None else entry.hardware_id
        if entry is None or entry.version != version:
            fold.changed.add(k)
            fold.history.append((report.vehicle_id, report.ecu, version, hardware_id, at))
        current[key] = fold.entries[key] = Entry(version, hardware_id, at)
    return fold


def _parse(payload: bytes) -> UpdateReport | None:
    try:
        return parse_update_report(payload)
    except DecodeError:
        return None


def _at(report: UpdateReport, received_at: dt.datetime) -> dt.datetime:
    return min(datetime_of_ns(report.ts_us * 1000), received_at)
