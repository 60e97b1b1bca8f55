"""Each simulated vehicle's own Ed25519 report key, derived from the scenario's seed.

Owns: the key pairs with which simulated vehicles sign their OTA update reports
(`contract.update`), and exporting their public halves for the fleet layer to register
(`ota.vehicle_keys.register_key`). A key is SHA-256("fleetpulse-simulated-report-key", seed,
vehicle id) used as the Ed25519 seed: the same scenario gives the same keys, so a run can be
repeated and its reports checked. Anyone who knows the seed can sign as these vehicles: they are
for simulated vehicles (`SIM-...` ids) only, never for a real one, and are never written to disk
or logged. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.update import UpdateReport, key_id_of, signed_payload, signing_bytes

DOMAIN = b"fleetpulse-simulated-report-key\x00"


class SimulatedKeys:
    """The report keys of a simulated fleet (made on first use)."""

    def __init__(self, seed: int, vehicle_ids: list[str]) -> None:
        self._seed = seed
        self.vehicle_ids = list(vehicle_ids)
        self._keys: dict[str, Ed25519PrivateKey] = {}

    def _key(self, vehicle_id: str) -> Ed25519PrivateKey:
        key = self._keys.get(vehicle_id)
        if key is None:
            material = hashlib.sha256(DOMAIN + f"{self._seed}\x00{vehicle_id}".encode()).digest()
            key = self._keys[vehicle_id] = Ed25519PrivateKey.from_private_bytes(material)
        return key

    def public_key(self, vehicle_id: str) -> bytes:
        """The vehicle's raw 32-byte public key."""
        return (
            self._key(vehicle_id)
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    def key_id(self, vehicle_id: str) -> str:
        return key_id_of(self.public_key(vehicle_id))

    def public_keys(self) -> dict[str, bytes]:
        """Every vehicle's raw public key by vehicle id: what the fleet layer registers with
        `ota.vehicle_keys.register_key(conn, vehicle_id, public_key)` before offers are sent."""
        return {vid: self.public_key(vid) for vid in self.vehicle_ids}

    def sign(self, report: UpdateReport) -> tuple[UpdateReport, bytes]:
        """The report with the vehicle's key id, and its signed payload for the `update` topic."""
        document = report.unsigned_document()
        document["key_id"] = self.key_id(report.vehicle_id)
        signed = signing_bytes(document)
        signature = self._key(report.vehicle_id).sign(signed)
        signed_report = dataclasses.replace(
            report, key_id=document["key_id"], signature=signature, signed_bytes=signed
        )
        return signed_report, signed_payload(document, signature)
