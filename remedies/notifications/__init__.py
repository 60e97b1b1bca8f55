"""Owner notifications that never spam: an outbox in PostgreSQL, delivered by the task queue over
the car's screen (MQTT), e-mail (SMTP) and a signed webhook (docs/notifications.md).

The remedy engine calls `enqueue(conn, vehicle_id, alarm_id, remedy_id, facts)`: one notification
per (vehicle, alarm, remedy), whatever the retries. The delivery worker (`tasks.make_app`, run by
`fleet notify worker`) decides each channel by the rules of `policy` (consent, parked, quiet
hours, rate limit), writes the message with `messages`, sends it through `channels` and records
every change. `counts` reports what became of them. Owns the tables of migration 0016; reads the
registry (owners, vehicles), ingest's latest state and telemetry, and analytics' alarms.
"""

from remedies.notifications.channels import (
    DeliveryError,
    MemoryTransport,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from remedies.notifications.delivery import DeliveryConfig, DeliveryResult, deliver, due_notifications
from remedies.notifications.facts import NoticeFacts, OtaPatch, ShopVisit, UpdateResult
from remedies.notifications.messages import Message, render
from remedies.notifications.outbox import (
    Notification,
    NotificationCounts,
    counts,
    enqueue,
    list_notifications,
)
from remedies.notifications.policy import Channel, PolicyConfig, Reason, VehicleState

__all__ = [
    "Channel",
    "DeliveryConfig",
    "DeliveryError",
    "DeliveryResult",
    "MemoryTransport",
    "Message",
    "NoticeFacts",
    "Notification",
    "NotificationCounts",
    "OtaPatch",
    "Outgoing",
    "PermanentDeliveryError",
    "PolicyConfig",
    "Reason",
    "ShopVisit",
    "TransientDeliveryError",
    "Transport",
    "UpdateResult",
    "VehicleState",
    "counts",
    "deliver",
    "due_notifications",
    "enqueue",
    "list_notifications",
    "render",
]
