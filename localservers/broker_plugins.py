"""amqtt plugins that give the embedded broker the same security model as our Mosquitto setup.

Owns: authentication (vehicles by derived password, service-account logins by the account's
password), the client-id rule of `contract.accounts` (a connection's client id is its username,
refused otherwise), and the topic ACL of `contract.topics.permissions_of`. Loaded by amqtt from the
broker configuration built in `localservers.embedded`; `localservers.embedded_broker` makes amqtt run the
authentication before it touches an existing session of the same client id.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.plugins.topic_checking import TopicAccessControlListPlugin
from amqtt.session import Session

from contract import accounts, topics
from contract.credentials import check_vehicle_password


@dataclass
class _FleetConfig:
    fleet_secret: str = ""
    service_passwords: dict[str, str] = field(default_factory=dict)  # service account -> password


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


class FleetAuthPlugin(BaseAuthPlugin):
    """Refuse a client id other than the username; accept service-account logins by the account's
    password and vehicles by their derived password; refuse the rest."""

    Config = _FleetConfig

    async def authenticate(self, *, session: Session) -> bool | None:
        username, password = _text(session.username), _text(session.password)
        if not accounts.may_connect(username, session.client_id):
            return False
        account = accounts.service_account_of(username)
        if account is not None:
            expected = self.config.service_passwords.get(account)
            return expected is not None and hmac.compare_digest(expected.encode(), password.encode())
        if not self.config.fleet_secret:
            return False
        return check_vehicle_password(self.config.fleet_secret, username, password)


class FleetTopicPlugin(BaseTopicPlugin):
    """Per-login topic ACL (`contract.topics.permissions_of`)."""

    Config = _FleetConfig

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        if session is None or not topic:
            return False
        return topic_allowed(_text(session.username), topic, publish=action is Action.PUBLISH)


def topic_allowed(username: str, topic: str, *, publish: bool) -> bool:
    """Whether `username` may publish to `topic` or (`publish=False`) subscribe to the filter
    `topic`, matched with amqtt's own matcher against `contract.topics.permissions_of`. A `#`
    before the last level (not a valid filter) is refused: amqtt's matcher would let `+` take it."""
    if "#" in topic.split("/")[:-1]:
        return False
    allowed = topics.permissions_of(username)
    patterns = allowed.publish if publish else allowed.subscribe_patterns
    return any(TopicAccessControlListPlugin.topic_ac(topic, pattern) for pattern in patterns)


def broker_plugin_config(fleet_secret: str, service_passwords: dict[str, str]) -> dict[str, object]:
    """The `plugins` section of an amqtt broker config using the two plugins above."""
    conf = {"fleet_secret": fleet_secret, "service_passwords": service_passwords}
    return {
        f"{__name__}.FleetAuthPlugin": conf,
        f"{__name__}.FleetTopicPlugin": conf,
    }


__all__ = ["FleetAuthPlugin", "FleetTopicPlugin", "broker_plugin_config", "BaseContext"]
