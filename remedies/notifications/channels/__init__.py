"""The notification channels behind one small base class (`Transport`): in-car over MQTT, e-mail
over SMTP, a signed webhook, and an in-memory one for the tests and the simulator. Each module
owns one backend; `base` owns the interface and the errors.
"""

from remedies.notifications.channels.base import (
    DeliveryError,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from remedies.notifications.channels.memory import MemoryTransport

__all__ = [
    "DeliveryError",
    "MemoryTransport",
    "Outgoing",
    "PermanentDeliveryError",
    "TransientDeliveryError",
    "Transport",
]
