"""Who may connect with which MQTT client id: the one rule both brokers enforce.

A broker hands a session to whoever connects with its client id, and disconnects the client that
held it (MQTT 3.1.1, 3.1.4-2). So every client id belongs to exactly one account:

- **A connection's client id is its username** (its *login*). The brokers refuse a CONNECT whose
  client id differs from its username (CONNACK "not authorised"), so a client can take over no
  session but its own login's.
- **A vehicle's login is its vehicle id.**
- **A service account owns a namespace of logins**: its name and `<name>-<suffix>` (e.g.
  `fleet-ingest`, `fleet-ingest-0`, `fleet-ingest-demo`). Every login of the namespace authenticates
  with the account's password and gets the account's topic permissions
  (`contract.topics.permissions_of`). A process that needs several connections at once (ingest
  workers, the simulator's gateway and DTC publisher) uses one login per connection.
- **Vehicle ids never fall into a service namespace**: `contract.batch.is_valid_vehicle_id` refuses
  them, so no vehicle credential, topic or batch can be made for one.

Brokers: the embedded amqtt broker accepts any login of a namespace (`localservers/broker_plugins.py`).
Mosquitto's dynamic security plugin binds one client id per username, so each login is provisioned
(`provisioned_logins`, written by `fleet creds mosquitto-dynsec`). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import replace

from contract.endpoint import MqttEndpoint

INGEST = "fleet-ingest"
SIMULATOR = "fleet-simulator"
SERVICE_ACCOUNTS = (INGEST, SIMULATOR)

# Logins of the product's auxiliary connections (next to ingest workers and the simulator gateway).
INGEST_CAMPAIGN = f"{INGEST}-campaign"  # `fleet campaign push`
INGEST_DEMO = f"{INGEST}-demo"  # the ingest service `fleet demo` runs
INGEST_SIMULATE = f"{INGEST}-simulate"  # the ingest service `fleet simulate` runs
INGEST_NOTIFY = f"{INGEST}-notify"  # in-car notices from `fleet notify worker`
INGEST_OTA = f"{INGEST}-ota"  # update offers from the campaign step (`fleet campaigns step`, the worker)
SIMULATOR_DTC = f"{SIMULATOR}-dtc"  # the simulator's DTC publisher beside its gateway connection
SIMULATOR_OTA = f"{SIMULATOR}-ota"  # the simulator's listener for its vehicles' update offers
AUXILIARY_LOGINS = {
    INGEST: (INGEST_CAMPAIGN, INGEST_DEMO, INGEST_SIMULATE, INGEST_NOTIFY, INGEST_OTA),
    SIMULATOR: (SIMULATOR_DTC, SIMULATOR_OTA),
}

# Worker logins `<account>-0` ... provisioned by default on Mosquitto (`fleet ingest --workers N`
# with N up to this needs no new provisioning).
DEFAULT_WORKER_LOGINS = 8

LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # anchored: the API reuses it for vehicle ids


class ClientIdError(ValueError):
    """A client id that the account of the endpoint may not use."""


def service_account_of(name: str) -> str | None:
    """The service account whose namespace holds `name` (`fleet-ingest` for `fleet-ingest-3`), or
    None for a name outside every service namespace (a vehicle id, or nothing of ours)."""
    for account in SERVICE_ACCOUNTS:
        if name == account or (name.startswith(account + "-") and len(name) > len(account) + 1):
            return account
    return None


def is_login(name: str) -> bool:
    """Whether `name` is usable as a login (and client id): 1-64 chars of [A-Za-z0-9_.-]."""
    return LOGIN_PATTERN.fullmatch(name) is not None


def may_connect(username: str | None, client_id: str | None) -> bool:
    """The rule, as the embedded broker checks it: an authenticated connection's client id is its
    username. (Mosquitto: each provisioned login's `clientid` is the login.)"""
    return username is not None and client_id == username and is_login(username)


def worker_login(base: str, index: int) -> str:
    """The login (and client id) of ingest worker `index` of a service whose base login is `base`."""
    return f"{base}-{index}"


def provisioned_logins(
    account: str, workers: int = DEFAULT_WORKER_LOGINS, extra: tuple[str, ...] = ()
) -> list[str]:
    """The logins to create for a service account on a broker that binds one client id per
    username (Mosquitto): the account itself, `workers` worker logins, the product's auxiliary
    logins, and `extra` suffixes. Raises ValueError for a name that is not a service account."""
    if account not in SERVICE_ACCOUNTS:
        raise ValueError(f"{account!r} is not a service account ({', '.join(SERVICE_ACCOUNTS)})")
    logins = [account, *(worker_login(account, i) for i in range(workers))]
    logins += [*AUXILIARY_LOGINS.get(account, ()), *(f"{account}-{s}" for s in extra)]
    bad = [name for name in logins if not is_login(name)]
    if bad:
        raise ValueError(f"invalid logins {bad}")
    return list(dict.fromkeys(logins))


def login_endpoint(endpoint: MqttEndpoint, client_id: str) -> MqttEndpoint:
    """The credentials to connect with as `client_id`: for a service account, its login
    `client_id` with the account's password; for a vehicle, the endpoint itself. An endpoint
    without a username (an anonymous broker) is returned as it is.

    Raises ClientIdError when the endpoint's account does not own `client_id`: connecting would be
    refused by the broker, so the caller learns it before."""
    username = endpoint.username
    if not username:
        return endpoint
    if not is_login(client_id):
        raise ClientIdError(f"client id {client_id!r} is not a valid login")
    if client_id == username:
        return endpoint
    account = service_account_of(username)
    if account is not None and service_account_of(client_id) == account:
        return replace(endpoint, username=client_id)
    raise ClientIdError(
        f"client id {client_id!r} does not belong to account {username!r}: a vehicle's client id is "
        f"its vehicle id, a service account's is its name or <name>-<suffix>"
    )
