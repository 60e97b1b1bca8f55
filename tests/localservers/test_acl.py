"""Every place the topic ACL is applied or written down agrees with `contract.topics`: the embedded
broker's plugin and the Mosquitto dynamic-security roles decide alike for a matrix of logins,
actions and topics, each as the policy of the topic directions says; docs/wire-format.md holds the
generated ACL table and one row per topic kind; the shipped mosquitto.conf adds no ACL of its own.
(The live broker tests in tests/localservers and tests/fleet check that the brokers enforce them.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from contract import topics
from localservers.broker_plugins import topic_allowed
from localservers.mosquitto import dynsec_config

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "wire-format.md"
BEGIN = "<!-- generated from contract.topics.acl_table: begin -->\n"
END = "<!-- generated from contract.topics.acl_table: end -->"
VEHICLE = "VEH-A"
LOGINS = (VEHICLE, "fleet-ingest", "fleet-ingest-3", "fleet-simulator", "fleet-simulator-dtc")


def _filters() -> list[str]:
    """Topics and filters on and around the scheme, then the same as shared subscriptions."""
    plain = [
        f"fleet/v1/{who}/{kind}" for who in (VEHICLE, "VEH-B", "+", "#") for kind in (*topics.KINDS, "x")
    ]
    plain += ["fleet/v1/#", "#", "+/v1/VEH-A/config", "fleet/v2/VEH-A/telemetry", "fleet/v1/VEH-A/dtc/x"]
    plain += ["$SYS/broker/load"]
    return plain + [f"$share/g/{f}" for f in plain]


def _is_wildcard(topic: str) -> bool:
    return "+" in topic.split("/") or "#" in topic.split("/")


def expected(login: str, topic: str, *, publish: bool) -> bool:
    """The policy, stated from the directions: an account speaks for vehicles (sends uplink,
    receives downlink) or for the cloud (the reverse); a vehicle for its own id only, a service
    account for every vehicle, and only a service account may share a subscription."""
    parts = topic.split("/")
    service = login.startswith(("fleet-ingest", "fleet-simulator"))
    if parts[0] == "$share":
        if publish or not service:
            return False
        parts = parts[2:]
    if len(parts) != 4 or parts[:2] != ["fleet", "v1"] or parts[3] not in topics.KINDS:
        return False
    who, kind = parts[2], parts[3]
    if who == "#" or (publish and who == "+"):
        return False
    speaks_for_vehicles = not login.startswith("fleet-ingest")
    sends = (kind in topics.UPLINK_KINDS) == speaks_for_vehicles
    return sends == publish and (service or who == login)


def _mosquitto_covers(acl: str, topic: str) -> bool:
    """Mosquitto's match of a topic (or, for subscribePattern, a filter) against an ACL entry: `+`
    in the ACL takes one level, `#` the rest; a wildcard in the filter is covered only by one in
    the ACL at that level."""
    a, t = acl.split("/"), topic.split("/")
    for i, level in enumerate(a):
        if level == "#":
            return True
        if i >= len(t) or t[i] == "#" or (level != "+" and level != t[i]):
            return False
    return len(a) == len(t)


def _mosquitto_allows(role: dict[str, Any], acltype: str, topic: str) -> bool:
    return any(
        e["acltype"] == acltype and e["allow"] and _mosquitto_covers(e["topic"], topic) for e in role["acls"]
    )


def _roles() -> dict[str, dict[str, Any]]:
    config = dynsec_config(dict.fromkeys(LOGINS))
    assert not any(
        config["defaultACLAccess"][k] for k in ("publishClientSend", "publishClientReceive", "subscribe")
    )
    roles = {r["rolename"]: r for r in config["roles"]}
    return {c["username"]: roles[c["roles"][0]["rolename"]] for c in config["clients"]}


@pytest.mark.parametrize("login", LOGINS)
def test_both_brokers_apply_the_policy_of_the_directions(login: str) -> None:
    role = _roles()[login]
    for topic in _filters():
        want_sub = expected(login, topic, publish=False)
        assert topic_allowed(login, topic, publish=False) == want_sub, ("amqtt subscribe", login, topic)
        assert _mosquitto_allows(role, "subscribePattern", topic) == want_sub, ("mosquitto subscribe", topic)
        if _is_wildcard(topic) or topic.startswith("$share/"):
            continue
        want_pub = expected(login, topic, publish=True)
        assert topic_allowed(login, topic, publish=True) == want_pub, ("amqtt publish", login, topic)
        assert _mosquitto_allows(role, "publishClientSend", topic) == want_pub, ("mosquitto publish", topic)
        assert _mosquitto_allows(role, "publishClientReceive", topic) == want_sub, (
            "mosquitto receive",
            topic,
        )


def test_a_name_that_is_no_login_gets_nothing() -> None:
    for name in ("", "a/b", "fleet-ingest-", "#"):
        assert not any(topic_allowed(name, t, publish=p) for t in _filters() for p in (False, True))


def test_every_topic_kind_reaches_every_account_that_should_see_it() -> None:
    """A kind added to TOPIC_KINDS lands in every account's rules with no other change."""
    rules = topics.acl_rules()
    vehicle, ingest, gateway = (rules[k] for k in topics.AccountKind)
    for kind in topics.TOPIC_KINDS:
        mine, every = f"fleet/v1/{topics.OWN_ID}/{kind.name}", f"fleet/v1/+/{kind.name}"
        if kind.direction is topics.Direction.UPLINK:
            assert mine in vehicle.publish and every in gateway.publish and every in ingest.subscribe
        else:
            assert mine in vehicle.subscribe and every in gateway.subscribe and every in ingest.publish


def test_the_docs_hold_the_generated_acl_and_every_topic_kind() -> None:
    text = DOC.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"{DOC} lost its generated-ACL markers"
    block = text.split(BEGIN)[1].split(END)[0]
    assert block == topics.acl_table(), f"docs/wire-format.md: between the markers put\n{topics.acl_table()}"
    rows = re.findall(r"^\| `fleet/v1/<vehicle_id>/([a-z_]+)` \| ([^|]+) \|", text, flags=re.M)
    assert {(kind, direction.strip()) for kind, direction in rows} == {
        (k.name, k.direction.value) for k in topics.TOPIC_KINDS
    }


def test_the_shipped_mosquitto_conf_has_no_acl_of_its_own() -> None:
    """Mosquitto's only ACL is the dynamic-security file generated from contract.topics."""
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    directives = [line.split()[0] for line in conf.splitlines() if line.strip() and not line.startswith("#")]
    assert not {"acl_file", "topic", "pattern", "password_file"} & set(directives)
    assert "plugin" in directives and "fleet/v1/" not in conf
