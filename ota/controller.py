"""The campaign controller: people's acts on campaigns, and the step that rolls running campaigns
out wave by wave (`ota.rollout` decides; this shell reads and writes the campaign tables).

- Acts (`act`): approve, start, pause, resume, cancel, each checked against the transition table
  and recorded in `campaign_history` with who did it. A resume accepts the failures so far: they
  stay recorded but no longer count toward the thresholds, so the campaign goes on.
- The step (`step_campaigns`), one transaction per campaign, the row locked with SKIP LOCKED so
  that two controllers never step the same campaign (hawkBit's tryLock):
  1. an approved campaign starts (approval is the human gate);
  2. vehicles that match the campaign's target filter and are not members join it, and members
     without a wave get one (`ota.rollout.joiner_wave`);
  3. the open wave's pending vehicles are offered the update (`send_offer`, given by the caller:
     `ota.offer_sender.OfferRecorder` in production, a list in tests), each in a savepoint, and
     marked offered; `send_offer` may raise OfferDeferred (the vehicle stays pending, offered at a
     later step) or OfferRefused (the vehicle is excluded with the reason: its hardware does not
     fit);
  4. offers that no report answered within the campaign's `offer_timeout_s` of the last time they
     went out (a broker that is down is not the vehicle's silence, and a vehicle that came back
     online and got its offer again has the whole time again) time out
     (`ota.rollout.offer_timed_out`): the member becomes `timed_out`, each in the audit register
     and the step in the campaign's history;
  5. the open wave is judged (`ota.rollout.judge_wave`): the next wave opens, the campaign
     finishes, or it pauses with the reason.
- Reports (`record_report`): a vehicle's verified report moves its state (a timed-out member's
  too: a late report counts); the server takes the vehicle's own report as the truth about what
  is installed, also after a rollback.
Raises psycopg.Error; `act` raises LookupError for an unknown campaign and
`ota.rollout.TransitionError` for a refused act.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from ota import audit
from ota.rollout import (
    Event,
    Member,
    Policy,
    Status,
    VehicleState,
    Verdict,
    joiner_wave,
    judge_wave,
    offer_timed_out,
    transition,
)


@dataclass(frozen=True)
class Offer:
    """What a vehicle is offered: the campaign's target and its conditions."""

    campaign_id: int
    vehicle_id: str
    ecu: str
    to_version: str
    urgency: str
    forced_after: dt.datetime | None
    maintenance_window: dict[str, Any] | None
    consent_required: bool


@dataclass
class StepReport:
    campaigns: int = 0
    started: list[int] = field(default_factory=list)
    joined: int = 0
    offers: int = 0
    deferred: dict[str, int] = field(default_factory=dict)  # why -> vehicles left pending
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (campaign, vehicle, why): excluded
    waves_opened: list[tuple[int, int]] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    paused: list[tuple[int, str]] = field(default_factory=list)
    timed_out: list[tuple[int, str]] = field(default_factory=list)  # (campaign, vehicle): no report in time

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def act(conn: psycopg.Connection, campaign_id: int, event: Event, actor: str, reason: str = "") -> Status:
    """Apply a person's act; the new status."""
    with conn.transaction():
        row = conn.execute(
            "SELECT status FROM campaigns WHERE campaign_id = %s FOR UPDATE", (campaign_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no campaign {campaign_id}")
        new = transition(Status(row[0]), event)
        approved = event is Event.APPROVE
        conn.execute(
            "UPDATE campaigns SET status = %s, updated_at = now(),"
            " approved_by = CASE WHEN %s THEN %s ELSE approved_by END,"
            " approved_at = CASE WHEN %s THEN now() ELSE approved_at END WHERE campaign_id = %s",
            (new.value, approved, actor, approved, campaign_id),
        )
        if event is Event.RESUME:  # the person accepts the failures and timeouts so far (they stay recorded)
            conn.execute(
                "UPDATE campaign_vehicles SET failure_accepted = true WHERE campaign_id = %s"
                " AND state IN ('failed', 'rolled_back', 'timed_out')",
                (campaign_id,),
            )
        _history(conn, campaign_id, new, reason or f"{event.value} by {actor}", actor)
        return new


def step_campaigns(
    conn: psycopg.Connection, send_offer: Callable[[Offer], None], *, now: dt.datetime | None = None
) -> StepReport:
    now = now or dt.datetime.now(dt.UTC)
    report = StepReport()
    ids = [r[0] for r in conn.execute(
        "SELECT campaign_id FROM campaigns WHERE status IN ('approved', 'running') ORDER BY campaign_id"
    ).fetchall()]  # fmt: skip
    for campaign_id in ids:
        with conn.transaction():
            row = conn.execute(
                "SELECT campaign_id, status, ecu, from_version, to_version, target_filter, waves_pct,"
                " current_wave, success_threshold, error_threshold, max_failures, soak_s, urgency,"
                " forced_after, maintenance_window, consent_required, offer_timeout_s FROM campaigns"
                " WHERE campaign_id = %s AND status IN ('approved', 'running') FOR UPDATE SKIP LOCKED",
                (campaign_id,),
            ).fetchone()
            if row is not None:
                report.campaigns += 1
                _step_one(conn, row, send_offer, now, report)
    return report


def _step_one(
    conn: psycopg.Connection,
    row: tuple[Any, ...],
    send_offer: Callable[[Offer], None],
    now: dt.datetime,
    report: StepReport,
) -> None:
    (cid, status, ecu, _old, new_version, target, waves, wave, success, error, cap, soak, urgency,
     forced_after, window, consent, offer_timeout) = row  # fmt: skip
    policy = Policy(tuple(float(w) for w in waves), success, error, cap, soak, offer_timeout)
    if Status(status) is Status.APPROVED:
        conn.execute(
            "UPDATE campaigns SET status = 'running', updated_at = now() WHERE campaign_id = %s", (cid,)
        )
        _history(
            conn, cid, transition(Status.APPROVED, Event.START), "started by the controller", "controller"
        )
        report.started.append(cid)
        open_wave = None
    else:
        open_wave = wave
    report.joined += _join_matching(conn, cid, target or {})
    for vid in [r[0] for r in conn.execute(
        "SELECT vehicle_id FROM campaign_vehicles WHERE campaign_id = %s AND wave IS NULL", (cid,)
    ).fetchall()]:  # fmt: skip
        conn.execute(
            "UPDATE campaign_vehicles SET wave = %s WHERE campaign_id = %s AND vehicle_id = %s",
            (joiner_wave(cid, vid, policy, open_wave), cid, vid),
        )
    pending = conn.execute(
        "SELECT vehicle_id FROM campaign_vehicles WHERE campaign_id = %s AND wave = %s AND state = 'pending'"
        " ORDER BY vehicle_id",
        (cid, wave),
    ).fetchall()
    for (vid,) in pending:
        offer = Offer(cid, vid, ecu, new_version, urgency, forced_after, window, consent)
        state, why = _send(conn, send_offer, offer)
        if state is None:
            report.deferred[why] = report.deferred.get(why, 0) + 1
            continue
        conn.execute(
            "UPDATE campaign_vehicles SET state = %s, reason = %s, updated_at = now(),"
            " offered_at = CASE WHEN %s = 'offered' THEN %s ELSE offered_at END"
            " WHERE campaign_id = %s AND vehicle_id = %s",
            (state.value, why, state.value, now, cid, vid),
        )
        if state is VehicleState.OFFERED:
            report.offers += 1
        else:
            report.refused.append((cid, vid, why))
    _time_out(conn, cid, policy, now, report)
    members = [
        Member(vid, VehicleState.EXCLUDED if accepted else VehicleState(state), _s(committed), _s(alarm))
        for vid, state, committed, alarm, accepted in conn.execute(
            "SELECT cv.vehicle_id, cv.state, cv.committed_at, (SELECT min(a.raised_at) FROM alarms a"
            " WHERE a.vehicle_id = cv.vehicle_id AND a.raised_at > cv.committed_at), cv.failure_accepted"
            " FROM campaign_vehicles cv WHERE cv.campaign_id = %s AND cv.wave = %s",
            (cid, wave),
        ).fetchall()
    ]
    (failures_before,) = conn.execute(  # type: ignore[misc]
        "SELECT count(*) FROM campaign_vehicles WHERE campaign_id = %s AND wave < %s"
        " AND state IN ('failed', 'rolled_back') AND NOT failure_accepted",
        (cid, wave),
    ).fetchone()
    gate = judge_wave(members, policy, now_s=now.timestamp(), wave=wave, failures_before=failures_before)
    if gate.verdict is Verdict.NEXT_WAVE:
        conn.execute(
            "UPDATE campaigns SET current_wave = current_wave + 1, updated_at = now() WHERE campaign_id = %s",
            (cid,),
        )
        _history(conn, cid, Status.RUNNING, f"{gate.reason}: wave {wave + 2} opens", "controller")
        report.waves_opened.append((cid, wave + 1))
    elif gate.verdict is Verdict.FINISH:
        conn.execute(
            "UPDATE campaigns SET status = 'finished', updated_at = now() WHERE campaign_id = %s", (cid,)
        )
        _history(conn, cid, transition(Status.RUNNING, Event.FINISH), gate.reason, "controller")
        report.finished.append(cid)
    elif gate.verdict is Verdict.PAUSE:
        conn.execute(
            "UPDATE campaigns SET status = 'paused', reason = %s, updated_at = now() WHERE campaign_id = %s",
            (gate.reason, cid),
        )
        _history(conn, cid, transition(Status.RUNNING, Event.PAUSE), gate.reason, "controller")
        report.paused.append((cid, gate.reason))


def _time_out(
    conn: psycopg.Connection, cid: int, policy: Policy, now: dt.datetime, report: StepReport
) -> None:
    """Members whose offer no accepted report answered within the campaign's `offer_timeout_s` of
    the last time it went out (`sent_at`, set by `ota.offer_sender.publish_offers` on the broker's
    acknowledgement, in the controller's clock) become `timed_out` (their rows locked in vehicle
    order, as the report step locks them); each goes to the audit register, the step to the
    campaign's history."""
    candidates = conn.execute(
        "SELECT cv.vehicle_id, cv.sent_at, cv.remedy_id, o.offer_id, o.ecu, o.target, o.version"
        " FROM campaign_vehicles cv JOIN LATERAL (SELECT * FROM update_offers o"
        " WHERE o.campaign_id = cv.campaign_id AND o.vehicle_id = cv.vehicle_id"
        " ORDER BY o.created_at DESC, o.offer_id LIMIT 1) o ON true"
        " WHERE cv.campaign_id = %s AND cv.state = 'offered' AND cv.sent_at <= %s"
        " AND o.state IS NULL ORDER BY cv.vehicle_id FOR UPDATE OF cv",
        (cid, now - dt.timedelta(seconds=policy.offer_timeout_s)),  # candidates: offer_timed_out decides
    ).fetchall()
    why = f"no report within {policy.offer_timeout_s:g} s of the offer"
    silent = [c for c in candidates if offer_timed_out(c[1].timestamp(), now.timestamp(), policy)]
    for vid, _sent, remedy_id, offer_id, ecu, target, version in silent:
        conn.execute(
            "UPDATE campaign_vehicles SET state = 'timed_out', reason = %s, updated_at = now()"
            " WHERE campaign_id = %s AND vehicle_id = %s",
            (why, cid, vid),
        )
        audit.record_timeout(
            conn, vehicle_id=vid, offer_id=offer_id, campaign_id=cid, remedy_id=remedy_id, ecu=ecu,
            target=target, target_version=version, at=now, reason=why,
        )  # fmt: skip
        report.timed_out.append((cid, vid))
    if silent:
        _history(conn, cid, Status.RUNNING, f"offers timed out: {len(silent)} ({why})", "controller")


class OfferDeferred(Exception):
    """`send_offer` cannot offer now (the target is not published yet, the campaign's terms are not
    valid): the vehicle stays pending and is offered at a later step."""


class OfferRefused(Exception):
    """`send_offer` will never offer this update to this vehicle (its hardware is not one the
    target is built for): the vehicle leaves the campaign (`excluded`, with the reason)."""


def _send(
    conn: psycopg.Connection, send_offer: Callable[[Offer], None], offer: Offer
) -> tuple[VehicleState | None, str]:
    """Call `send_offer` in a savepoint: what it wrote stays unless it defers. The member's new
    state (None: stays pending) and why."""
    try:
        with conn.transaction():
            try:
                send_offer(offer)
            except OfferRefused as exc:  # what it recorded about the refusal is kept
                return VehicleState.EXCLUDED, str(exc)
    except OfferDeferred as exc:
        return None, str(exc)
    return VehicleState.OFFERED, ""


def _join_matching(conn: psycopg.Connection, cid: int, target: dict[str, Any]) -> int:
    """Vehicles that match the target filter join the campaign (wave assigned by the step). A
    filter with `active_alarm` is the remedy engine's: its members are added by the engine."""
    if target.get("active_alarm") or not any(target.get(k) for k in ("model_id", "fleet_id", "ecu")):
        return 0
    rows = conn.execute(
        "INSERT INTO campaign_vehicles (campaign_id, vehicle_id)"
        " SELECT %(cid)s, v.vehicle_id FROM vehicles v"
        " WHERE (%(model)s::text IS NULL OR v.model_id = %(model)s)"
        " AND (%(fleet)s::text IS NULL OR v.fleet_id = %(fleet)s)"
        " AND (%(ecu)s::text IS NULL OR EXISTS (SELECT 1 FROM vehicle_software s"
        " WHERE s.vehicle_id = v.vehicle_id AND s.ecu = %(ecu)s"
        " AND (%(version)s::text IS NULL OR s.software_version = %(version)s)))"
        " ON CONFLICT (campaign_id, vehicle_id) DO NOTHING RETURNING vehicle_id",
        {
            "cid": cid,
            "model": target.get("model_id"),
            "fleet": target.get("fleet_id"),
            "ecu": target.get("ecu"),
            "version": target.get("software_version"),
        },
    ).fetchall()
    return len(rows)


REPORTED_STATES = {
    "downloading": VehicleState.DOWNLOADING,
    "verified": VehicleState.DOWNLOADING,
    "installed": VehicleState.INSTALLED,
    "committed": VehicleState.COMMITTED,
    "rolled_back": VehicleState.ROLLED_BACK,
    "failed": VehicleState.FAILED,
}


def record_report(
    conn: psycopg.Connection, campaign_id: int, vehicle_id: str, state: str, at: dt.datetime, reason: str = ""
) -> bool:
    """Move a member's state from its vehicle's (verified) report; whether it was a member in a
    state the report may change. A report never moves an excluded vehicle back in."""
    new = REPORTED_STATES.get(state)
    if new is None:
        raise ValueError(f"unknown report state {state!r}")
    row = conn.execute(
        "UPDATE campaign_vehicles SET state = %s, reason = %s, updated_at = now(),"
        " committed_at = CASE WHEN %s = 'committed' THEN %s ELSE committed_at END"
        " WHERE campaign_id = %s AND vehicle_id = %s AND state <> 'excluded' RETURNING 1",
        (new.value, reason, new.value, at, campaign_id, vehicle_id),
    ).fetchone()
    return row is not None


def _history(conn: psycopg.Connection, cid: int, status: Status, reason: str, actor: str) -> None:
    conn.execute(
        "INSERT INTO campaign_history (campaign_id, status, reason, actor) VALUES (%s, %s, %s, %s)",
        (cid, status.value, reason, actor),
    )


def _s(at: dt.datetime | None) -> float | None:
    return None if at is None else at.timestamp()
