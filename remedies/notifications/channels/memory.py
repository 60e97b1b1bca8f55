"""An in-memory channel for the tests and the simulator: it keeps what it was sent, and can be
switched down (every send fails as a transient error, as a stopped server would) or told to refuse
an address for good. Owns nothing else; thread-safe.
"""

from __future__ import annotations

import threading

from remedies.notifications.channels.base import (
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from remedies.notifications.policy import Channel


class MemoryTransport(Transport):
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.down = False
        self.refused: set[str] = set()
        self._sent: list[Outgoing] = []
        self._lock = threading.Lock()

    @property
    def sent(self) -> list[Outgoing]:
        with self._lock:
            return list(self._sent)

    def _send(self, out: Outgoing) -> None:
        if self.down:
            raise TransientDeliveryError(f"{self.channel} is down")
        if out.address in self.refused:
            raise PermanentDeliveryError(f"{self.channel} refused the address")
        with self._lock:
            self._sent.append(out)
