"""The agent's configuration file (TOML, read with tomllib) and its secrets.

Owns: turning `agent.toml` into frozen dataclasses with units in the names, and reading the MQTT
password from an environment variable or a file, never from the TOML itself, so the file can be
world-readable and shipped in images. Secrets never reach logs: `AgentConfig`'s repr hides them.
See deploy/agent.example.toml for every key.
"""

from __future__ import annotations

import logging
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from contract.batch import is_valid_vehicle_id
from contract.endpoint import MqttEndpoint
from contract.errors import DeadLetterReason, DecodeError
from contract.signals import SIGNALS
from contract.software import EcuSoftware, parse_inventory
from edge_agent.spool_budget import DEFAULT_MEMORY_MAX_BYTES, check_max_bytes, sampling_batch_estimate

log = logging.getLogger(__name__)
DEFAULT_QUEUE_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class OtaConfig:
    """The `[ota]` section: without it OTA is off and offers are refused (docs/ota.md, section 5)."""

    trusted_root: Path  # root.json of the OTA repository, shipped with the provisioning
    report_key: Path  # the vehicle's Ed25519 report key (PEM, mode 0600; `fleet ota vehicle-key`)
    min_battery_v: float = 12.2  # 12 V battery at least this, or the traction battery at min_soc_pct
    min_traction_soc_pct: float = 30.0
    min_parked_s: float = 60.0  # speed 0 and engine off for at least this long
    check_interval_s: float = 60.0  # how often a waiting offer is tried again
    give_up_after_s: float = 30 * 86400.0  # an offer not installed by then is reported failed
    download_timeout_s: float = 30.0  # connect and read timeout of the repository's HTTP server


class ConfigError(ValueError):
    """The configuration file is missing, malformed or incomplete; the agent does not start."""


@dataclass(frozen=True)
class AgentConfig:
    vehicle_id: str
    endpoint: MqttEndpoint
    state_dir: Path
    queue_max_bytes: int = DEFAULT_QUEUE_MAX_BYTES  # queue.sqlite + -wal + -shm on disk
    queue_memory_max_bytes: int = DEFAULT_MEMORY_MAX_BYTES  # held in memory while the disk is full
    source_kind: str = "simulated"
    source_options: dict[str, Any] = field(default_factory=dict)
    default_period_ms: int = 1000
    base_rate_hz: float = 10.0
    flush_interval_s: float = 1.0
    batch_interval_s: float = 10.0
    campaign_file: Path | None = None
    checkin_interval_s: float = 60.0
    max_inflight: int = 20
    keepalive_s: int = 30
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    software: tuple[EcuSoftware, ...] = ()  # the vehicle's ECU software, reported in each check-in
    ota: OtaConfig | None = None  # None: OTA off ([ota] missing)

    @property
    def queue_path(self) -> Path:
        return self.state_dir / "queue.sqlite"

    @property
    def campaign_path(self) -> Path:
        return self.state_dir / "campaign.json"

    @property
    def stats_path(self) -> Path:
        return self.state_dir / "stats.json"


def load_config(path: Path, environ: dict[str, str] | None = None) -> AgentConfig:
    """Read and check `path`. Raises ConfigError (never echoing a secret)."""
    env = dict(os.environ) if environ is None else environ
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    base = path.parent
    vehicle = doc.get("vehicle", {})
    broker = doc.get("broker", {})
    queue = doc.get("queue", {})
    source = dict(doc.get("source", {}))
    sampling = doc.get("sampling", {})
    agent = doc.get("agent", {})
    vehicle_id = vehicle.get("id", "")
    if not is_valid_vehicle_id(vehicle_id):
        raise ConfigError("[vehicle] id must be 1-64 characters of [A-Za-z0-9_.-]")
    url = broker.get("url")
    if not url:
        raise ConfigError("[broker] url is required, e.g. mqtts://broker.example.com:8883")
    try:
        endpoint = MqttEndpoint.from_url(url)
    except ValueError as exc:
        raise ConfigError(f"[broker] url: {exc}") from None
    if endpoint.password:
        raise ConfigError("[broker] url must not contain a password; use password_env or password_file")
    password = _secret(broker, env, base)
    endpoint = (
        endpoint.with_credentials(broker.get("username", vehicle_id), password) if password else endpoint
    )
    source_kind = source.pop("kind", "simulated")
    try:
        software = parse_inventory(vehicle.get("software", []), DeadLetterReason.BAD_STATUS_MESSAGE)
    except DecodeError as exc:
        raise ConfigError(f"[[vehicle.software]]: {exc.detail}") from None

    def rel(value: str | None) -> Path | None:
        return None if value is None else (base / value).resolve()

    try:
        config = AgentConfig(
            vehicle_id=vehicle_id,
            endpoint=endpoint,
            state_dir=rel(agent.get("state_dir", "state")) or base,
            queue_max_bytes=int(queue.get("max_bytes", DEFAULT_QUEUE_MAX_BYTES)),
            queue_memory_max_bytes=int(queue.get("memory_max_bytes", DEFAULT_MEMORY_MAX_BYTES)),
            source_kind=source_kind,
            source_options=source,
            default_period_ms=int(sampling.get("default_period_ms", 1000)),
            base_rate_hz=float(sampling.get("base_rate_hz", 10.0)),
            flush_interval_s=_bounded(
                float(sampling.get("flush_interval_s", 1.0)), 0.05, 1.0, "flush_interval_s"
            ),
            batch_interval_s=float(sampling.get("batch_interval_s", 10.0)),
            campaign_file=rel(sampling.get("campaign_file")),
            checkin_interval_s=float(agent.get("checkin_interval_s", 60.0)),
            max_inflight=int(broker.get("max_inflight", 20)),
            keepalive_s=int(broker.get("keepalive_s", 30)),
            backoff_initial_s=float(broker.get("backoff_initial_s", 0.5)),
            backoff_max_s=float(broker.get("backoff_max_s", 30.0)),
            ca_file=rel(broker.get("ca_file")),
            cert_file=rel(broker.get("cert_file")),
            key_file=rel(broker.get("key_file")),
            software=software,
            ota=_ota(doc.get("ota"), rel),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    _check_queue(config)
    return config


def _ota(section: Any, rel: Callable[[str | None], Path | None]) -> OtaConfig | None:
    """The [ota] section, or None without one. Raises ConfigError."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError("[ota] must be a table")
    unknown = set(section) - {f.name for f in fields(OtaConfig)}
    if unknown:
        raise ConfigError(f"[ota] has unknown keys: {', '.join(sorted(unknown))}")
    for key in ("trusted_root", "report_key"):
        if not isinstance(section.get(key), str) or not section[key]:
            raise ConfigError(f"[ota] {key} (a file path) is required")
    numbers = {k: float(v) for k, v in section.items() if k not in ("trusted_root", "report_key")}
    for key, value in numbers.items():
        if not math.isfinite(value) or value < 0 or (key.endswith("_s") and value <= 0):
            raise ConfigError(f"[ota] {key} must be a finite number above 0")
    return OtaConfig(
        trusted_root=rel(section["trusted_root"]) or Path(),
        report_key=rel(section["report_key"]) or Path(),
        **numbers,  # type: ignore[arg-type]
    )


def _check_queue(config: AgentConfig) -> None:
    """Refuse a spool that cannot hold two batches of the configured sampling (every catalogue
    signal assumed, no compression); warn when it holds only a few. A campaign pushed later is
    checked again by the agent, which then only warns."""
    if config.queue_memory_max_bytes < 0:
        raise ConfigError("[queue] memory_max_bytes must be >= 0 (0: no memory fallback)")
    batch_bytes = sampling_batch_estimate(
        signals=len(SIGNALS),
        base_rate_hz=config.base_rate_hz,
        period_ms=config.default_period_ms,
        batch_interval_s=max(config.batch_interval_s, config.flush_interval_s),
    )
    try:
        warning = check_max_bytes(config.queue_max_bytes, batch_bytes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if warning:
        log.warning("%s", warning)


def _bounded(value: float, lo: float, hi: float, name: str) -> float:
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be within {lo}..{hi} (it is also the fsync interval)")
    return value


def _secret(section: dict[str, Any], env: dict[str, str], base: Path) -> str | None:
    if "password" in section:
        raise ConfigError("[broker] password must not be in the file; use password_env or password_file")
    if name := section.get("password_env"):
        if name not in env:
            raise ConfigError(f"[broker] password_env names {name}, which is not set")
        return env[name]
    if file := section.get("password_file"):
        try:
            return (base / file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"[broker] password_file: {exc.strerror}") from None
    return None
