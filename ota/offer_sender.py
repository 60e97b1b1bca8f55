"""Sending the campaigns' update offers: recorded in the step's transaction, published after it.

Owns:
- `OfferRecorder`, the `send_offer` of `ota.controller.step_campaigns`: for each member it finds
  the campaign's TUF target (ECU and version; `ota.compatibility.find_target`), checks the
  vehicle's last reported hardware id against the target's (`check_compatibility`), makes the
  offer (`ota.offers.new_offer`: target, version, the campaign's urgency, window and consent, the
  repository URL) and records it with its campaign (`record_offer`) and in the audit register. No
  target published yet, or terms that are not valid: OfferDeferred (the member stays pending).
  Incompatible hardware: OfferRefused (the member is excluded; the check is in the register).
- `publish_offers`, the outbox's sender, run after the step committed: every recorded offer not
  yet acknowledged by the broker, whose campaign runs and whose member still waits for it, is
  published QoS 1 on the vehicle's `command` topic (`ota.command_link`); `published_at` is set on
  the PUBACK. A broker that is down changes nothing but a counter: the offers are published at the
  next step. The vehicles' sessions are clean, so an offer whose vehicle came online after it went
  out, and that no accepted report answered yet (timed out or not), is published again. Two
  senders at once take disjoint offers (row locks, SKIP LOCKED).
So an offer is always recorded before it is sent, and never sent for a step that rolled back.
Raises psycopg.Error.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from contract.update import MaintenanceWindow, OfferError, UpdateOffer
from ota import audit
from ota.command_link import CommandPublisher, PublishError
from ota.compatibility import TargetInfo, check_compatibility, find_target
from ota.controller import Offer, OfferDeferred, OfferRefused
from ota.offers import new_offer, offer_topic, record_offer


class OfferRecorder:
    """Callable as `send_offer(offer)`. `targets`: the repository's published targets, read once
    per step; `repository_url`: the TUF repository as the vehicles reach it."""

    def __init__(
        self,
        conn: psycopg.Connection,
        targets: Sequence[TargetInfo],
        repository_url: str,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._conn = conn
        self._targets = list(targets)
        self._url = repository_url
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.recorded: list[str] = []  # offer ids recorded by this recorder

    def __call__(self, offer: Offer) -> None:
        """Record the offer for `offer.vehicle_id`. Raises OfferDeferred, OfferRefused, psycopg.Error."""
        target = find_target(self._targets, offer.ecu, offer.to_version)
        if target is None:
            raise OfferDeferred(f"{offer.ecu} {offer.to_version} is not published in the TUF repository")
        conn = self._conn
        inventory = {
            ecu: (version, hardware_id)
            for ecu, version, hardware_id in conn.execute(
                "SELECT ecu, software_version, hardware_id FROM vehicle_software WHERE vehicle_id = %s",
                (offer.vehicle_id,),
            ).fetchall()
        }
        remedy = conn.execute(
            "SELECT remedy_id FROM campaign_vehicles WHERE campaign_id = %s AND vehicle_id = %s",
            (offer.campaign_id, offer.vehicle_id),
        ).fetchone()
        remedy_id = None if remedy is None else remedy[0]
        now = self._clock()
        check = check_compatibility(target, inventory)
        before = inventory.get(offer.ecu, (None, ""))[0]

        def record_check(made: UpdateOffer | None) -> None:
            audit.record_check(
                conn, vehicle_id=offer.vehicle_id, target=target, check=check, before_version=before, at=now,
                offer=made, campaign_id=offer.campaign_id, remedy_id=remedy_id,
            )  # fmt: skip

        if not check.compatible:
            record_check(None)
            raise OfferRefused(f"incompatible: {check.detail}")
        try:
            update = new_offer(
                ecu=offer.ecu,
                target=target.name,
                version=target.version,
                repository_url=self._url,
                now_us=_us(now),
                urgency=offer.urgency,
                forced_after_us=None if offer.forced_after is None else _us(offer.forced_after),
                maintenance_window=_window(offer.maintenance_window),
                consent_required=offer.consent_required,
            )
        except (OfferError, KeyError, TypeError) as exc:
            raise OfferDeferred(f"the campaign's offer is not valid: {exc}") from None
        record_offer(conn, offer.vehicle_id, update, offer.campaign_id)
        record_check(update)
        self.recorded.append(update.offer_id)


def _window(window: dict[str, Any] | None) -> MaintenanceWindow | None:
    if window is None:
        return None
    return MaintenanceWindow(str(window["start"]), str(window["end"]), str(window["timezone"]))


def _us(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000)


@dataclass
class PublishReport:
    published: int = 0  # acknowledged by the broker now, for the first time
    republished: int = 0  # published again: the vehicle came online after it went out
    unpublished: int = 0  # recorded, not acknowledged: published at the next step
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_UNPUBLISHED_SQL = (
    "SELECT o.offer_id, o.vehicle_id, o.offer FROM update_offers o"
    " LEFT JOIN campaigns c ON c.campaign_id = o.campaign_id"
    " LEFT JOIN campaign_vehicles cv ON cv.campaign_id = o.campaign_id AND cv.vehicle_id = o.vehicle_id"
    " WHERE o.published_at IS NULL"
    " AND (o.campaign_id IS NULL OR (c.status = 'running' AND cv.state = 'offered'))"
    " ORDER BY o.created_at, o.offer_id LIMIT %s FOR UPDATE OF o SKIP LOCKED"
)
# A vehicle's session is clean: an offer published while it was offline never reached it. Once its
# status says `online` again (ingest's receive time, after the offer went out) and no report of the
# offer was accepted yet, the offer is published again (the agent ignores a repeat it holds); also
# when the offer timed out meanwhile (the member is `timed_out`), even once the campaign finished
# without it: the vehicle is back and still needs the update.
_RECONNECTED_SQL = (
    "SELECT o.offer_id, o.vehicle_id, o.offer FROM campaign_vehicles cv"
    " JOIN campaigns c ON c.campaign_id = cv.campaign_id"
    " JOIN update_offers o ON o.campaign_id = cv.campaign_id AND o.vehicle_id = cv.vehicle_id"
    " JOIN vehicle_status s ON s.vehicle_id = cv.vehicle_id"
    " WHERE (cv.state = 'offered' AND c.status = 'running'"
    " OR cv.state = 'timed_out' AND c.status IN ('running', 'finished'))"
    " AND o.published_at IS NOT NULL AND o.state IS NULL"
    " AND s.state = 'online' AND s.reported_at > o.published_at"
    " ORDER BY o.published_at, o.offer_id LIMIT %s FOR UPDATE OF o SKIP LOCKED"
)


def publish_offers(
    conn: psycopg.Connection,
    connect: Callable[[], CommandPublisher] | None,
    *,
    limit: int = 10_000,
    now: dt.datetime | None = None,
) -> PublishReport:
    """Publish up to `limit` recorded offers not yet acknowledged (module docstring), over one
    connection made by `connect` (None: no broker configured, nothing is published). Each campaign
    member whose offer went out gets `sent_at` = `now` (the controller's clock, default the wall
    clock), from which its offer's timeout counts. Never raises for the broker: its errors are in
    the report. Raises psycopg.Error."""
    report = PublishReport()
    with conn.transaction():
        rows = conn.execute(_UNPUBLISHED_SQL, (limit,)).fetchall()
        first = len(rows)
        rows += conn.execute(_RECONNECTED_SQL, (limit,)).fetchall()
        if not rows:
            return report
        if connect is None:
            report.unpublished = len(rows)
            report.errors.append("no broker configured (FLEET_MQTT_URL): offers recorded, not published")
            return report
        done: list[str] = []
        try:
            with connect() as publisher:
                for offer_id, vehicle_id, document in rows:
                    payload = json.dumps(document, separators=(",", ":")).encode()
                    publisher.publish(offer_topic(vehicle_id), payload)
                    done.append(offer_id)
        except PublishError as exc:
            report.errors.append(str(exc))
        conn.execute(
            "UPDATE update_offers SET published_at = clock_timestamp(),"
            " publish_attempts = publish_attempts + 1, last_publish_error = NULL WHERE offer_id = ANY(%s)",
            (done,),
        )
        conn.execute(
            "UPDATE campaign_vehicles cv SET sent_at = %s FROM update_offers o WHERE o.offer_id = ANY(%s)"
            " AND cv.campaign_id = o.campaign_id AND cv.vehicle_id = o.vehicle_id",
            (now or dt.datetime.now(dt.UTC), done),
        )
        acknowledged = set(done)
        left = [r[0] for r in rows if r[0] not in acknowledged]
        conn.execute(
            "UPDATE update_offers SET publish_attempts = publish_attempts + 1, last_publish_error = %s"
            " WHERE offer_id = ANY(%s)",
            (report.errors[-1][:500] if report.errors else None, left),
        )
        report.published, report.unpublished = len(done), len(left)
        report.republished = len(acknowledged & {r[0] for r in rows[first:]})
        report.published -= report.republished
    return report
