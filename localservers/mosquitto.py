"""A private Mosquitto on a loopback port: the one launcher the benchmarks, local runs and tests use,
and the dynamic-security configuration that binds client ids to accounts (also for deployments).

Owns: writing its configuration (and, given accounts, the dynamic security plugin's JSON file from
`dynsec_config`, the same generator `fleet creds mosquitto-dynsec` uses for deploy/), starting it as
a child process, and stopping it. The settings that matter for lossless ingest are also the
production ones (deploy/mosquitto/mosquitto.conf, docs/scaling.md):
- `max_inflight_messages`: ingest acknowledges after commit, so this window must hold a couple of
  flushes (Mosquitto's default of 20 would cap a transaction at 20 messages);
- `max_queued_messages`: what the broker keeps for an offline persistent session;
- `persistence`: queued and in-flight messages survive a broker restart.

Who may connect as whom (`contract.accounts`): with the dynamic security plugin every login is a
plugin *client* whose `clientid` is the login itself, so Mosquitto refuses (CONNACK 5, "not
authorised") a CONNECT whose client id is not its username, before it looks at the session of that
id (mosquitto 2.0.11 `handle__connect` authenticates, then `connect__on_authorised` takes the
session over). Its roles carry the topic ACL of `contract.topics.permissions_of`; Mosquitto 2.0's
plugin has no `%u` substitution, so each vehicle has a role of its own.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import glob
import hashlib
import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from contract import accounts, topics
from contract.credentials import new_secret
from contract.endpoint import MqttEndpoint
from localservers.embedded import INGEST_USER, SIMULATOR_USER, free_port

DEFAULT_BINARY = "/usr/sbin/mosquitto"
# Debian/Ubuntu package, then the eclipse-mosquitto image's path (/usr/lib), then a source install.
DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/*-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
DYNSEC_ITERATIONS = 101  # PBKDF2-SHA512 rounds, as mosquitto_passwd and the plugin use by default


def find_mosquitto() -> str | None:
    """The mosquitto binary on PATH or in /usr/sbin, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return DEFAULT_BINARY if Path(DEFAULT_BINARY).exists() else None


def find_dynsec_plugin() -> str | None:
    """The dynamic security plugin shipped with Mosquitto 2 (`mosquitto_dynamic_security.so`), or None."""
    for pattern in DYNSEC_PLUGIN_PATHS:
        for path in sorted(glob.glob(pattern)):
            return path
    return None


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    """Raises RuntimeError when nothing listens on 127.0.0.1:`port` within the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def broker_logins(
    names: Mapping[str, str | None],
    *,
    workers: int = accounts.DEFAULT_WORKER_LOGINS,
    extra_suffixes: Sequence[str] = (),
) -> dict[str, str | None]:
    """Login -> password for a broker that binds one client id per username. `names` maps service
    accounts (each becomes all its `contract.accounts.provisioned_logins`, sharing its password),
    single logins of a service namespace, and vehicle ids to passwords (None: no password, the
    login can only connect by client certificate). Raises ValueError for any other name."""
    logins: dict[str, str | None] = {}
    for name, password in names.items():
        if name in accounts.SERVICE_ACCOUNTS:
            for login in accounts.provisioned_logins(name, workers, tuple(extra_suffixes)):
                logins[login] = password
        elif accounts.is_login(name):  # a service login or a vehicle id: both are logins
            logins[name] = password
        else:
            raise ValueError(f"{name!r} is neither a service account, one of its logins, nor a vehicle id")
    return logins


def _role_name(login: str) -> str:
    account = accounts.service_account_of(login)
    return account if account is not None else f"vehicle:{login}"


def _role(login: str) -> dict[str, Any]:
    allowed = topics.permissions_of(login)
    acls = [{"acltype": "publishClientSend", "topic": t, "allow": True} for t in allowed.publish]
    acls += [{"acltype": "subscribePattern", "topic": t, "allow": True} for t in allowed.subscribe_patterns]
    acls += [{"acltype": "publishClientReceive", "topic": t, "allow": True} for t in allowed.subscribe]
    return {"rolename": _role_name(login), "acls": acls}


def _password_fields(password: str) -> dict[str, Any]:
    salt = secrets.token_bytes(12)  # the plugin's SALT_LEN
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, DYNSEC_ITERATIONS)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": DYNSEC_ITERATIONS,
    }


def dynsec_config(logins: Mapping[str, str | None]) -> dict[str, Any]:
    """The dynamic security plugin's JSON configuration for `logins` (login -> password, see
    `broker_logins`): one plugin client per login, bound to the client id equal to the login, with
    the role that carries its topic ACL. Nothing is allowed by default; unsubscribing always is.
    Raises ValueError for a login that is neither a service login nor a vehicle id."""
    clients: list[dict[str, Any]] = []
    roles: dict[str, dict[str, Any]] = {}
    for login, password in sorted(logins.items()):
        if not accounts.is_login(login):  # service logins and vehicle ids are exactly the logins
            raise ValueError(f"invalid login {login!r}")
        client: dict[str, Any] = {"username": login, "clientid": login}
        if password is not None:
            client.update(_password_fields(password))
        role = _role_name(login)
        client["roles"] = [{"rolename": role}]
        clients.append(client)
        if role not in roles:
            roles[role] = _role(login)
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": [roles[name] for name in sorted(roles)],
    }


class MosquittoProcess:
    """Mosquitto on 127.0.0.1, restartable on the same port. With `accounts` (service accounts and
    vehicle ids -> password, expanded by `broker_logins` with `worker_logins` and `extra_logins`
    suffixes) clients must authenticate through the dynamic security plugin, each login only with
    its own client id, and the fleet ACL applies; without, it is anonymous and open.

    With `tls_cert` and `tls_key` (PEM) the listener speaks only MQTT over TLS; `tls_ca` is the CA
    that client certificates must chain to. `require_client_cert` (needs `tls_ca`) makes every
    client present such a certificate, and its common name becomes its username
    (`use_identity_as_username`): Mosquitto then skips password authentication, and with it the
    plugin's client-id check, so the listener also sets `use_username_as_clientid`: the client id
    becomes the certificate's identity (rewritten, not refused). The ACL applies to that identity,
    which must be provisioned (its password may be None)."""

    def __init__(
        self,
        work_dir: Path,
        *,
        accounts: Mapping[str, str | None] | None = None,
        worker_logins: int = accounts.DEFAULT_WORKER_LOGINS,
        extra_logins: Sequence[str] = (),
        binary: str | None = None,
        port: int | None = None,
        persistence: bool = False,
        autosave_interval: int = 10,  # as deploy/mosquitto/mosquitto.conf (docs/scaling.md)
        autosave_on_changes: bool = False,
        log_path: Path | None = None,
        max_inflight_messages: int = 10_000,
        max_inflight_bytes: int = 64 << 20,  # as deploy/mosquitto/mosquitto.conf: ingest's receive queue
        max_queued_messages: int = 1_000_000,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_ca: Path | None = None,
        require_client_cert: bool = False,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if require_client_cert and (tls_cert is None or tls_ca is None):
            raise ValueError("require_client_cert needs tls_cert, tls_key and tls_ca")
        found = binary or find_mosquitto()
        if found is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = found
        self.work_dir = work_dir
        self.port = port or free_port()
        self.config_path = work_dir / "mosquitto.conf"
        self.tls = tls_cert is not None
        work_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1"]
        if tls_cert is not None:  # listener options: they must follow their `listener` line
            lines += [f"certfile {tls_cert}", f"keyfile {tls_key}"]
            if tls_ca is not None:
                lines.append(f"cafile {tls_ca}")
            if require_client_cert:
                lines += [
                    "require_certificate true",
                    "use_identity_as_username true",
                    "use_username_as_clientid true",
                ]
        lines += [
            f"allow_anonymous {'false' if accounts else 'true'}",
            f"max_inflight_messages {max_inflight_messages}",
            f"max_inflight_bytes {max_inflight_bytes}",
            f"max_queued_messages {max_queued_messages}",
            "max_queued_bytes 0",
            "max_packet_size 1100000",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {work_dir}/",
            f"autosave_interval {autosave_interval}",
            f"autosave_on_changes {'true' if autosave_on_changes else 'false'}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            *(["log_type information", "log_timestamp_format %Y-%m-%dT%H:%M:%S"] if log_path else []),
            f"user {getpass.getuser()}",  # as root, mosquitto would switch to a user without access
        ]
        if accounts:
            plugin = find_dynsec_plugin()
            if plugin is None:
                raise FileNotFoundError("mosquitto's dynamic security plugin is not installed")
            logins = broker_logins(accounts, workers=worker_logins, extra_suffixes=extra_logins)
            dynsec = work_dir / "dynamic-security.json"
            dynsec.touch(mode=0o600)
            dynsec.write_text(json.dumps(dynsec_config(logins), indent=1))
            lines += [f"plugin {plugin}", f"plugin_opt_config_file {dynsec}"]
        self.config_path.write_text("\n".join(lines) + "\n")
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = 10) -> None:
        """Start the broker and wait until it accepts connections. Raises RuntimeError otherwise."""
        log = self.log_path.open("ab") if self.log_path else contextlib.nullcontext(subprocess.DEVNULL)
        with log as stderr:
            self._proc = subprocess.Popen([self.binary, "-c", str(self.config_path)], stderr=stderr)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM): with persistence on, Mosquitto saves its state first."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def kill(self) -> None:
        """Kill it (SIGKILL), as a crash or the OOM killer would: nothing is saved on the way out."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None

    def __enter__(self) -> MosquittoProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def private_mosquitto(binary: str | None = None) -> Iterator[tuple[MqttEndpoint, MqttEndpoint, int]]:
    """A throw-away authenticated broker: yield (simulator gateway endpoint, ingest endpoint, pid).
    Raises FileNotFoundError without mosquitto, RuntimeError when it does not start."""
    sim_pw, ingest_pw = new_secret(), new_secret()
    with tempfile.TemporaryDirectory(prefix="fleet-mosquitto-") as tmp:
        users: dict[str, str | None] = {SIMULATOR_USER: sim_pw, INGEST_USER: ingest_pw}
        with MosquittoProcess(Path(tmp), accounts=users, binary=binary) as broker:
            assert broker.pid is not None
            yield (
                MqttEndpoint("127.0.0.1", broker.port, SIMULATOR_USER, sim_pw),
                MqttEndpoint("127.0.0.1", broker.port, INGEST_USER, ingest_pw),
                broker.pid,
            )
