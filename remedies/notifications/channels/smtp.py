"""The e-mail channel: one plain-text e-mail per message over SMTP (the stdlib's smtplib).

Owns the e-mail's headers (a `Message-ID` made from the notification id, so that a repeat after a
retry is the same message to the receiving system; `X-Fleetpulse-Notification-Id`;
`Auto-Submitted: auto-generated`, so no vacation reply comes back) and the connection: STARTTLS by
default, implicit TLS, or plain only when configured so; login when a user is set. A refusal of
the recipient with a 5xx code is permanent; every other failure (server down, 4xx, login) is
transient and retried. The password is never logged.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal

from remedies.notifications.channels.base import (
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from remedies.notifications.policy import Channel

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    sender: str  # the From address
    port: int = 587
    security: Security = "starttls"  # "tls": implicit TLS (port 465); "none": plain, only if you must
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if self.security not in ("starttls", "tls", "none"):
            raise ValueError(f"SMTP security must be starttls, tls or none, not {self.security!r}")
        if "@" not in self.sender:
            raise ValueError("the SMTP sender must be an e-mail address")


def email_of(out: Outgoing, sender: str) -> EmailMessage:
    """The e-mail of one message."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = out.address
    msg["Subject"] = out.message.subject
    msg["Date"] = format_datetime(out.sent_at)
    msg["Message-ID"] = f"<{out.idempotency_key}@{sender.rpartition('@')[2]}>"
    msg["X-Fleetpulse-Notification-Id"] = str(out.notification_id)
    msg["Auto-Submitted"] = "auto-generated"
    if out.message.critical:
        msg["Importance"] = "high"
    msg.set_content(out.message.text)
    return msg


class SmtpTransport(Transport):
    channel = Channel.EMAIL

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def _send(self, out: Outgoing) -> None:
        c = self.config
        msg = email_of(out, c.sender)
        context = ssl.create_default_context()
        try:
            if c.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=context)
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
            with smtp:
                if c.security == "starttls":
                    smtp.starttls(context=context)
                if c.username:
                    smtp.login(c.username, c.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = (
                PermanentDeliveryError if all(500 <= code < 600 for code in codes) else TransientDeliveryError
            )
            raise error(f"recipient refused: {codes}") from None  # the text names the address
        except smtplib.SMTPResponseException as exc:
            raise TransientDeliveryError(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}") from None
        except smtplib.SMTPException as exc:
            raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from None


def _text(error: bytes | str) -> str:
    return error.decode(errors="replace") if isinstance(error, bytes) else str(error)
