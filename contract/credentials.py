"""Per-vehicle MQTT credentials derived from one fleet secret.

A vehicle's password is HMAC-SHA256(fleet secret, vehicle id): the provisioning service can issue
it without storing a table of passwords, and a leaked vehicle password exposes that vehicle only.
Secrets never reach logs: nothing here prints or logs them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from contract.batch import is_valid_vehicle_id


def vehicle_password(fleet_secret: str, vehicle_id: str) -> str:
    """The MQTT password for `vehicle_id`. Raises ValueError for an invalid vehicle id."""
    if not is_valid_vehicle_id(vehicle_id):
        raise ValueError(f"invalid vehicle id {vehicle_id!r}")
    digest = hmac.new(fleet_secret.encode(), vehicle_id.encode(), hashlib.sha256).hexdigest()
    return digest[:40]


def check_vehicle_password(fleet_secret: str, vehicle_id: str, password: str) -> bool:
    """Constant-time check of a vehicle's password."""
    try:
        expected = vehicle_password(fleet_secret, vehicle_id)
    except ValueError:
        return False
    return hmac.compare_digest(expected, password)


def new_secret() -> str:
    """A fresh random secret for embedded runs (never written to the repo or to logs)."""
    return secrets.token_urlsafe(32)
