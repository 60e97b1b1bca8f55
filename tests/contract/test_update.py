"""The update offer's shape: what the server makes, the agent reads back; anything else is refused."""

from __future__ import annotations

import json

import pytest

from contract.update import MaintenanceWindow, OfferError, UpdateOffer, parse_update_offer

OFFER = UpdateOffer(
    offer_id="offer-1",
    nonce="n" * 43,
    issued_at_us=1_780_000_000_000_000,
    ecu="ECM",
    target="ECM/4.2.1/ecm.bin",
    version="4.2.1",
    urgency="forced_after",
    repository_url="https://ota.example.com/",
    forced_after_us=1_781_000_000_000_000,
    maintenance_window=MaintenanceWindow("22:00", "05:00", "Europe/Berlin"),
    consent_required=True,
)


def test_an_offer_round_trips() -> None:
    payload = OFFER.encode()
    assert json.loads(payload)["type"] == "update_offer"
    assert parse_update_offer(payload) == OFFER


@pytest.mark.parametrize(
    "change",
    [
        {"type": "message"},
        {"urgency": "now"},
        {"forced_after_us": None},  # forced_after needs its time
        {"urgency": "soft"},  # ... and only forced_after has one
        {"nonce": "short"},
        {"repository_url": "ftp://ota.example.com/"},
        {"target": "../../etc/passwd"},
        {"maintenance_window": {"start": "25:00", "end": "05:00", "timezone": "UTC"}},
        {"consent_required": "yes"},
        {"issued_at_us": -1},
    ],
)
def test_a_bad_offer_is_refused(change: dict) -> None:
    doc = json.loads(OFFER.encode()) | change
    with pytest.raises(OfferError):
        parse_update_offer(json.dumps(doc).encode())
