"""The webhook channel: a signed JSON POST to the operator's receiver, which reaches the owner's
phone (an SMS gateway or the owner app's push service).

Owns the body (`fleetpulse.notice.v1`, docs/notifications.md) and its signature: the header
`X-Fleetpulse-Signature: sha256=<hex>` is HMAC-SHA256 of the exact body bytes under the shared
secret (`verify_signature` is what a receiver runs); `Idempotency-Key` repeats the notification
id. HTTPS is required unless the receiver is on this machine (loopback). Redirects are not
followed. 2xx is delivered; 400, 413 and 422 (the receiver refuses this body) are permanent; any
other answer or a network failure is transient. The secret is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from remedies.notifications.channels.base import (
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from remedies.notifications.policy import Channel

SCHEMA = "fleetpulse.notice.v1"
SIGNATURE_HEADER = "X-Fleetpulse-Signature"
_PERMANENT = frozenset({400, 413, 422})


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value of `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of `body` under `secret` (constant-time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: bytes = field(repr=False)
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("the webhook URL must be an https:// URL")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError("the webhook URL must use https (plain http only to this machine)")
        if len(self.secret) < 16:
            raise ValueError("the webhook secret must be at least 16 bytes")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_body(out: Outgoing) -> dict[str, Any]:
    """The JSON the receiver gets (docs/notifications.md)."""
    m = out.message
    return {
        "schema": SCHEMA,
        "notification_id": out.notification_id,
        "idempotency_key": out.idempotency_key,
        "vehicle_id": out.vehicle_id,
        "owner_id": out.owner_id,
        "to": out.address,
        "sent_at": out.sent_at.isoformat().replace("+00:00", "Z"),
        "critical": m.critical,
        "language": m.language,
        "subject": m.subject,
        "short": m.short,
        "text": m.text,
        "what_is_wrong": m.what_is_wrong,
        "what_will_happen": m.what_will_happen,
        "how_long": m.how_long,
        "what_to_do": m.what_to_do,
    }


class WebhookTransport(Transport):
    channel = Channel.WEBHOOK

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self._client = httpx.Client(timeout=config.timeout_s, follow_redirects=False)

    def _send(self, out: Outgoing) -> None:
        body = json.dumps(webhook_body(out), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.config.secret, body),
            "Idempotency-Key": out.idempotency_key,
        }
        try:
            response = self._client.post(self.config.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from None
        if 200 <= response.status_code < 300:
            return
        error = PermanentDeliveryError if response.status_code in _PERMANENT else TransientDeliveryError
        raise error(f"the receiver answered HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()
