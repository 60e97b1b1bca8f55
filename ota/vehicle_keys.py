"""Each vehicle's own Ed25519 key pair, with which it signs its update reports.

Owns: making a key pair at provisioning (the private key goes to a file for the vehicle, mode 0600,
never overwriting one and never logged; the public key goes to `vehicle_keys`), and reading a
vehicle's active public keys. A new key for a vehicle revokes its previous one. Leaves the report
checks to `ota.reports`.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.batch import is_valid_vehicle_id
from contract.update import key_id_of


def new_key_pair() -> tuple[bytes, bytes]:
    """(the private key as unencrypted PKCS#8 PEM, the raw 32-byte public key)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem, public


def write_private_key(path: Path, pem: bytes) -> None:
    """Write a private key file with mode 0600. Raises FileExistsError rather than overwrite one,
    OSError when it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def register_key(conn: psycopg.Connection, vehicle_id: str, public_key: bytes) -> str:
    """Make `public_key` the vehicle's active report key (revoking the one before) and return its
    key id. Registers the vehicle if needed. Raises ValueError for an invalid vehicle id or key,
    psycopg.Error from the database."""
    if not is_valid_vehicle_id(vehicle_id):
        raise ValueError(f"invalid vehicle id {vehicle_id!r}")
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    key_id = key_id_of(public_key)
    with conn.transaction():
        conn.execute(
            "INSERT INTO vehicles (vehicle_id) VALUES (%s) ON CONFLICT (vehicle_id) DO NOTHING", (vehicle_id,)
        )
        conn.execute(
            "UPDATE vehicle_keys SET revoked_at = now() WHERE vehicle_id = %s AND revoked_at IS NULL"
            " AND key_id <> %s",
            (vehicle_id, key_id),
        )
        conn.execute(
            "INSERT INTO vehicle_keys (vehicle_id, key_id, public_key) VALUES (%s, %s, %s)"
            " ON CONFLICT (vehicle_id, key_id) DO UPDATE SET revoked_at = NULL",
            (vehicle_id, key_id, public_key),
        )
    return key_id


def active_keys(conn: psycopg.Connection, vehicle_id: str) -> dict[str, bytes]:
    """The vehicle's active public keys by key id (one, or none). Raises psycopg.Error."""
    rows = conn.execute(
        "SELECT key_id, public_key FROM vehicle_keys WHERE vehicle_id = %s AND revoked_at IS NULL",
        (vehicle_id,),
    ).fetchall()
    return {key_id: bytes(public) for key_id, public in rows}
