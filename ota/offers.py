"""Update offers: making one (with a fresh nonce) and recording it before it is sent.

Owns: the offer id and the server's nonce (random, 32 bytes, never reused: `update_offers.nonce` is
unique), and the `update_offers` row that `ota.reports` checks each report against. Leaves the
choice of vehicles and the sending on the `command` topic to the campaign controller.
"""

from __future__ import annotations

import json
import secrets

import psycopg

from contract import topics
from contract.timestamps import datetime_of_ns
from contract.update import MaintenanceWindow, UpdateOffer


def new_offer(
    *,
    ecu: str,
    target: str,
    version: str,
    repository_url: str,
    now_us: int,
    urgency: str = "soft",
    forced_after_us: int | None = None,
    maintenance_window: MaintenanceWindow | None = None,
    consent_required: bool = False,
) -> UpdateOffer:
    """A new offer with its own id and nonce. Raises contract.update.OfferError when a field is
    not valid (the same checks the agent applies)."""
    offer = UpdateOffer(
        offer_id=f"offer-{secrets.token_hex(12)}",
        nonce=secrets.token_urlsafe(32),
        issued_at_us=now_us,
        ecu=ecu,
        target=target,
        version=version,
        urgency=urgency,
        repository_url=repository_url if repository_url.endswith("/") else repository_url + "/",
        forced_after_us=forced_after_us,
        maintenance_window=maintenance_window,
        consent_required=consent_required,
    )
    offer.encode()  # checks every field
    return offer


def offer_topic(vehicle_id: str) -> str:
    """Where an offer to `vehicle_id` is published (QoS 1, not retained)."""
    return topics.topic_for(vehicle_id, topics.COMMAND)


def record_offer(
    conn: psycopg.Connection, vehicle_id: str, offer: UpdateOffer, campaign_id: int | None = None
) -> None:
    """Store the offer before it is sent, so that its reports can be checked. Registers the vehicle
    if it is not known yet. Raises psycopg.Error (a repeated offer id or nonce among them)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO vehicles (vehicle_id) VALUES (%s) ON CONFLICT (vehicle_id) DO NOTHING", (vehicle_id,)
        )
        conn.execute(
            "INSERT INTO update_offers (offer_id, vehicle_id, campaign_id, nonce, ecu, target, version,"
            " issued_at, offer) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            (
                offer.offer_id,
                vehicle_id,
                campaign_id,
                offer.nonce,
                offer.ecu,
                offer.target,
                offer.version,
                datetime_of_ns(offer.issued_at_us * 1000),
                json.dumps(offer.as_json()),
            ),
        )
