"""amqtt plugins that give the embedded broker the same security model as our Mosquitto setup.

Owns: authentication (vehicles by derived password, service accounts by configured password) and
the topic ACL (a vehicle may publish only its own uplink topics and read only its own config).
Loaded by amqtt from the broker configuration built in `fleet.embedded`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.plugins.topic_checking import TopicAccessControlListPlugin
from amqtt.session import Session

from contract import topics
from contract.credentials import check_vehicle_password


@dataclass
class _FleetConfig:
    fleet_secret: str = ""
    # username -> {"password": str, "publish": [filters], "subscribe": [filters]}
    service_accounts: dict[str, Any] = field(default_factory=dict)


class FleetAuthPlugin(BaseAuthPlugin):
    """Accept service accounts by password and vehicles by their derived password; refuse the rest."""

    Config = _FleetConfig

    async def authenticate(self, *, session: Session) -> bool | None:
        username = session.username or ""
        password = session.password or ""
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        account = self.config.service_accounts.get(username)
        if account is not None:
            return hmac.compare_digest(str(account["password"]), password)
        if not self.config.fleet_secret:
            return False
        return check_vehicle_password(self.config.fleet_secret, username, password)


class FleetTopicPlugin(BaseTopicPlugin):
    """Per-user topic ACL: service accounts by their configured filters, vehicles by topic scheme."""

    Config = _FleetConfig

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        if session is None or not topic:
            return False
        username = session.username or ""
        account = self.config.service_accounts.get(username)
        if account is not None:
            if action is Action.RECEIVE:
                return True
            allowed = account.get("publish" if action is Action.PUBLISH else "subscribe", [])
            return any(_matches(topic, pattern) for pattern in allowed)
        own = f"{topics.PREFIX}/{username}/"
        if action is Action.PUBLISH:
            return topic in {own + kind for kind in topics.UPLINK_KINDS}
        return topic == own + topics.CONFIG


def _matches(topic: str, pattern: str) -> bool:
    if topic.startswith("$share/"):
        topic = topic.split("/", 2)[2]
    return TopicAccessControlListPlugin.topic_ac(topic, pattern)


def broker_plugin_config(fleet_secret: str, service_accounts: dict[str, Any]) -> dict[str, Any]:
    """The `plugins` section of an amqtt broker config using the two plugins above."""
    conf = {"fleet_secret": fleet_secret, "service_accounts": service_accounts}
    return {
        f"{__name__}.FleetAuthPlugin": conf,
        f"{__name__}.FleetTopicPlugin": conf,
    }


__all__ = ["FleetAuthPlugin", "FleetTopicPlugin", "broker_plugin_config", "BaseContext"]
