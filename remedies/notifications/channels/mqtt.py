"""The in-car channel: a notice on the vehicle's downlink `command` topic over MQTT.

Owns the notice's JSON (docs/wire-format.md, section 7, "The in-car notice") and its publishing:
QoS 1, not retained, on `fleet/v1/<vehicle>/command`, as its own login of the ingest account
(`fleet-ingest-notify`; the ACL lets that account write downlink topics). A send connects, waits
for the broker's PUBACK and disconnects: notices are rare, and a held connection would need a
reconnect loop of its own (the publisher is `ota.command_link`'s, shared with the update offers).
A vehicle that is offline gets the notice from its persistent session
when it reconnects (the broker keeps QoS 1 messages for it). Sends are serialised in a process
(one connection per client id at a time). When a notice may go out (parked) is `policy`'s.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from contract import accounts, topics
from contract.accounts import login_endpoint
from contract.endpoint import MqttEndpoint
from ota.command_link import PublishError, publish_once
from remedies.notifications.channels.base import Outgoing, TransientDeliveryError, Transport
from remedies.notifications.policy import Channel

NOTICE_TYPE = "notice"


def notice_payload(out: Outgoing) -> dict[str, Any]:
    """The in-car notice (docs/wire-format.md, section 7)."""
    m = out.message
    return {
        "type": NOTICE_TYPE,
        "notification_id": out.notification_id,
        "vehicle_id": out.vehicle_id,
        "sent_at": out.sent_at.isoformat().replace("+00:00", "Z"),
        "critical": m.critical,
        "language": m.language,
        "title": m.subject,
        "text": m.short,
        "what_is_wrong": m.what_is_wrong,
        "what_will_happen": m.what_will_happen,
        "how_long": m.how_long,
        "what_to_do": m.what_to_do,
    }


class MqttTransport(Transport):
    channel = Channel.IN_CAR

    def __init__(
        self, endpoint: MqttEndpoint, client_id: str = accounts.INGEST_NOTIFY, timeout_s: float = 10.0
    ) -> None:
        """`endpoint`: the broker with the ingest account's credentials. Raises
        contract.accounts.ClientIdError when that account does not own `client_id`."""
        login_endpoint(endpoint, client_id)  # refuse a client id the account does not own, now
        self._endpoint = endpoint
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._lock = threading.Lock()

    def _send(self, out: Outgoing) -> None:
        payload = json.dumps(notice_payload(out), separators=(",", ":"), ensure_ascii=False).encode()
        topic = topics.topic_for(out.vehicle_id, topics.COMMAND)
        with self._lock:
            try:
                publish_once(self._endpoint, self._client_id, topic, payload, timeout_s=self._timeout_s)
            except PublishError as exc:
                raise TransientDeliveryError(str(exc)) from exc
