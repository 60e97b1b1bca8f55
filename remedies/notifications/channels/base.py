"""The channel interface: one message out to one address, and the two ways that can fail.

Owns `Outgoing` (what a channel sends: the message, the address, the notification id that is its
idempotency key), `Transport` (the base class: `send()` checks the channel and wraps foreign
network errors; each backend implements `_send()`) and the errors, named for the caller's next
step: `TransientDeliveryError` (try again later: the server is down, a timeout) and
`PermanentDeliveryError` (this address will never take this message). Which channel a message
may use, and when, is `policy`'s; recording the outcome is `delivery`'s.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass

from remedies.notifications.messages import Message
from remedies.notifications.policy import Channel


class DeliveryError(Exception):
    """A message did not reach its channel's server. `permanent`: never retry it."""

    permanent = False


class TransientDeliveryError(DeliveryError):
    """Try again later: the server is down or slow, or it asked us to come back."""


class PermanentDeliveryError(DeliveryError):
    """The server refused this message for good (an unknown recipient, a rejected body)."""

    permanent = True


@dataclass(frozen=True)
class Outgoing:
    """One message on one channel. `address`: the vehicle id (in-car), the e-mail address or the
    phone number (webhook). `notification_id` is the idempotency key every channel carries, so a
    receiver can drop a repeat (delivery is at least once)."""

    notification_id: int
    channel: Channel
    vehicle_id: str
    owner_id: str
    address: str
    message: Message
    sent_at: dt.datetime

    @property
    def idempotency_key(self) -> str:
        return f"fleetpulse-notification-{self.notification_id}"


class Transport(abc.ABC):
    """A channel's backend. Subclasses set `channel` and implement `_send`."""

    channel: Channel

    def send(self, out: Outgoing) -> None:
        """Send one message. Raises TransientDeliveryError or PermanentDeliveryError (foreign
        network errors are wrapped as transient); ValueError for a message of another channel."""
        if out.channel is not self.channel:
            raise ValueError(f"a {out.channel} message given to the {self.channel} channel")
        try:
            self._send(out)
        except DeliveryError:
            raise
        except OSError as exc:  # connection refused, reset, timed out, name not found
            raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc

    @abc.abstractmethod
    def _send(self, out: Outgoing) -> None:
        """Send, or raise a DeliveryError (or an OSError, which `send` wraps)."""

    def close(self) -> None:  # noqa: B027 (most backends hold nothing)
        """Release what the backend holds (connections). Idempotent."""
