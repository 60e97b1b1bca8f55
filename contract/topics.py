"""MQTT topic scheme, version 1. Works on MQTT 3.1.1: plain topics, no v5 features required.

    fleet/v1/<vehicle_id>/telemetry   vehicle -> cloud, wire-format batches, QoS 1
    fleet/v1/<vehicle_id>/status      vehicle -> cloud, "online"/"offline" (retained, last will)
    fleet/v1/<vehicle_id>/dtc         vehicle -> cloud, diagnostic trouble codes
    fleet/v1/<vehicle_id>/config      cloud -> vehicle, campaigns (retained)

The vehicle id in the topic is what the broker ACL checks, so ingest rejects a payload whose
vehicle id differs from its topic's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from contract import accounts
from contract.batch import is_valid_vehicle_id

PREFIX = "fleet/v1"
TELEMETRY = "telemetry"
STATUS = "status"
DTC = "dtc"
CONFIG = "config"
KINDS = (TELEMETRY, STATUS, DTC, CONFIG)
UPLINK_KINDS = (TELEMETRY, STATUS, DTC)


def topic_for(vehicle_id: str, kind: str) -> str:
    """Topic of one vehicle. Raises ValueError for an invalid id or unknown kind."""
    if not is_valid_vehicle_id(vehicle_id):
        raise ValueError(f"invalid vehicle id {vehicle_id!r}")
    if kind not in KINDS:
        raise ValueError(f"unknown topic kind {kind!r}")
    return f"{PREFIX}/{vehicle_id}/{kind}"


def subscription_for(kind: str, share_group: str | None = None) -> str:
    """Wildcard filter over all vehicles; with `share_group`, an MQTT shared subscription."""
    base = f"{PREFIX}/+/{kind}"
    return f"$share/{share_group}/{base}" if share_group else base


def parse_topic(topic: str) -> tuple[str, str] | None:
    """Split a topic into (vehicle_id, kind), or None when it is not one of ours."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != PREFIX or parts[3] not in KINDS:
        return None
    if not is_valid_vehicle_id(parts[2]):
        return None
    return parts[2], parts[3]


@dataclass(frozen=True)
class Permissions:
    """Topic filters a login may publish to, and may subscribe to (and so receive messages of).
    `shareable`: the subscribe filters may also be used as shared subscriptions
    (`$share/<group>/<filter>`), as service accounts' are."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    shareable: bool = False


@functools.lru_cache(maxsize=65_536)  # the embedded broker asks on every publish and subscribe
def permissions_of(login: str) -> Permissions:
    """The topic ACL of one login (`contract.accounts`), which both brokers apply:
    ingest reads every vehicle's uplink topics and writes campaigns; the simulator gateway writes
    the uplink topics of any vehicle and reads campaigns; a vehicle writes only its own uplink
    topics and reads only its own config. Anything else gets nothing."""
    account = accounts.service_account_of(login)
    every_uplink = tuple(subscription_for(kind) for kind in UPLINK_KINDS)
    every_config = (subscription_for(CONFIG),)
    if account == accounts.INGEST:
        return Permissions(publish=every_config, subscribe=every_uplink, shareable=True)
    if account == accounts.SIMULATOR:
        return Permissions(publish=every_uplink, subscribe=every_config, shareable=True)
    if is_valid_vehicle_id(login):
        own_uplink = tuple(topic_for(login, kind) for kind in UPLINK_KINDS)
        return Permissions(publish=own_uplink, subscribe=(topic_for(login, CONFIG),))
    return Permissions(publish=(), subscribe=())
