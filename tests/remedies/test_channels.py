"""The channels against real servers: an SMTP server (aiosmtpd), an HTTP receiver that checks the
webhook's signature, and the broker with a vehicle on its command topic."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from dataclasses import replace

import pytest

from remedies.notifications import (
    Channel,
    NoticeFacts,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
    render,
)
from remedies.notifications.channels.mqtt import MqttTransport
from remedies.notifications.channels.smtp import SmtpConfig, SmtpTransport
from remedies.notifications.channels.webhook import (
    SIGNATURE_HEADER,
    WebhookConfig,
    WebhookTransport,
    verify_signature,
)
from tests.conftest import BrokerUnderTest
from tests.remedies.conftest import OTA, Receiver, SmtpServer, car_screen, free_port

SECRET = b"a-test-secret-of-32-bytes-length"
SENT_AT = dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.UTC)


def outgoing(channel: Channel, address: str, notification_id: int = 42, **facts: object) -> Outgoing:
    message = render(
        NoticeFacts.model_validate({"fault": "battery_12v_failing", **OTA, **facts}),
        notification_id=notification_id,
    )
    return Outgoing(notification_id, channel, "VEH-A", "O-1", address, message, SENT_AT)


def test_email_over_a_real_smtp_server(smtp_server: SmtpServer) -> None:
    transport = SmtpTransport(
        SmtpConfig("127.0.0.1", "fleet@garage.example", port=smtp_server.port, security="none")
    )
    transport.send(outgoing(Channel.EMAIL, "anna@example.org", severity="CRITICAL"))
    (mail,) = smtp_server.messages
    assert mail["To"] == "anna@example.org" and mail["From"] == "fleet@garage.example"
    assert mail["Message-ID"] == "<fleetpulse-notification-42@garage.example>"  # the idempotency key
    assert mail["X-Fleetpulse-Notification-Id"] == "42" and mail["Auto-Submitted"] == "auto-generated"
    assert mail["Subject"] == "Safety: Your car: a software update fixes a fault"
    body = mail.get_content().replace("\r\n", "\n")
    assert (
        "What is wrong\nThe 12 V battery of your car is weak" in body and "Reference: notification 42" in body
    )

    smtp_server.refused.add("gone@example.org")
    with pytest.raises(PermanentDeliveryError) as refused:
        transport.send(outgoing(Channel.EMAIL, "gone@example.org"))
    assert "gone@example.org" not in str(refused.value)

    smtp_server.stop()
    with pytest.raises(TransientDeliveryError):
        transport.send(outgoing(Channel.EMAIL, "anna@example.org"))
    smtp_server.start()
    transport.send(outgoing(Channel.EMAIL, "anna@example.org", notification_id=43))
    assert smtp_server.ids() == [42, 43]


def test_starttls_is_the_default_and_required(smtp_server: SmtpServer) -> None:
    """The test server offers no STARTTLS: a default configuration refuses to send in clear."""
    transport = SmtpTransport(SmtpConfig("127.0.0.1", "fleet@garage.example", port=smtp_server.port))
    with pytest.raises(TransientDeliveryError, match="STARTTLS|starttls"):
        transport.send(outgoing(Channel.EMAIL, "anna@example.org"))
    assert smtp_server.messages == []
    assert "hunter2" not in repr(SmtpConfig("h", "a@b.c", username="u", password="hunter2"))
    with pytest.raises(ValueError):
        SmtpConfig("h", "a@b.c", security="maybe")  # type: ignore[arg-type]


def test_webhook_signature_verifies_at_a_real_receiver(receiver: Receiver) -> None:
    transport = WebhookTransport(WebhookConfig(receiver.url, SECRET))
    try:
        transport.send(outgoing(Channel.WEBHOOK, "+4915112345678"))
        ((headers, body),) = receiver.requests
        assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER.lower()])
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()  # what a receiver computes
        assert headers[SIGNATURE_HEADER.lower()] == expected
        assert not verify_signature(
            b"another-secret-of-enough-bytes!!", body, headers[SIGNATURE_HEADER.lower()]
        )
        assert not verify_signature(
            SECRET, body.replace(b"VEH-A", b"VEH-B"), headers[SIGNATURE_HEADER.lower()]
        )
        assert headers["idempotency-key"] == "fleetpulse-notification-42"
        (sent,) = receiver.bodies()
        assert sent["schema"] == "fleetpulse.notice.v1" and sent["notification_id"] == 42
        assert sent["to"] == "+4915112345678" and sent["sent_at"] == "2025-06-01T09:30:00Z"
        assert sent["what_to_do"].startswith("Nothing: the update installs")

        receiver.status = 503
        with pytest.raises(TransientDeliveryError, match="503"):
            transport.send(outgoing(Channel.WEBHOOK, "+4915112345678"))
        receiver.status = 422
        with pytest.raises(PermanentDeliveryError, match="422"):
            transport.send(outgoing(Channel.WEBHOOK, "+4915112345678"))
    finally:
        transport.close()
    down = WebhookTransport(WebhookConfig(f"http://127.0.0.1:{free_port()}/x", SECRET))
    with pytest.raises(TransientDeliveryError):
        down.send(outgoing(Channel.WEBHOOK, "+4915112345678"))
    down.close()


def test_webhook_configuration_is_secure_by_default() -> None:
    with pytest.raises(ValueError, match="https"):
        WebhookConfig("http://receiver.example/x", SECRET)
    with pytest.raises(ValueError, match="16 bytes"):
        WebhookConfig("https://receiver.example/x", b"short")
    assert SECRET.decode() not in repr(WebhookConfig("https://receiver.example/x", SECRET))
    with pytest.raises(ValueError, match="email"):
        WebhookTransport(WebhookConfig("https://receiver.example/x", SECRET)).send(
            outgoing(Channel.EMAIL, "anna@example.org")
        )


@pytest.mark.broker
def test_in_car_notice_on_the_command_topic(broker: BrokerUnderTest) -> None:
    transport = MqttTransport(broker.ingest)
    with car_screen(broker, "VEH-A") as screen:
        transport.send(outgoing(Channel.IN_CAR, "VEH-A"))
        deadline = time.monotonic() + 10
        while not screen.notices and time.monotonic() < deadline:
            time.sleep(0.02)
        (notice,) = screen.notices
    assert notice["type"] == "notice" and notice["notification_id"] == 42 and notice["vehicle_id"] == "VEH-A"
    assert notice["title"] == "Your car: a software update fixes a fault" and notice["critical"] is False
    assert notice["text"].startswith("The 12 V battery") and notice["sent_at"] == "2025-06-01T09:30:00Z"
    assert set(notice) == {
        "type",
        "notification_id",
        "vehicle_id",
        "sent_at",
        "critical",
        "language",
        "title",
        "text",
        "what_is_wrong",
        "what_will_happen",
        "how_long",
        "what_to_do",
    }  # fmt: skip  (docs/wire-format.md, section 7, lists exactly these)
    wrong = MqttTransport(replace(broker.ingest, password="not-the-password"))
    with pytest.raises(TransientDeliveryError, match="refused"):
        wrong.send(outgoing(Channel.IN_CAR, "VEH-A"))
    nowhere = MqttTransport(replace(broker.ingest, port=free_port()), timeout_s=2)
    with pytest.raises(TransientDeliveryError):
        nowhere.send(outgoing(Channel.IN_CAR, "VEH-A"))
