"""What the installer takes in: a verified artifact file and its metadata, and what a slot keeps
about its image (the manifest).

Owns the two frozen records and their checks. The verifier (`edge_agent.ota.verify`, python-tuf)
produces a `VerifiedArtifact` only after checking the signed metadata and the hardware id; the
installer trusts those fields and checks that the bytes it writes match them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.software import ECU_NAME, MAX_VERSION_LEN

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A manifest or artifact description that is malformed."""


def check_ecu(ecu: object) -> str:
    """An ECU name that is also a safe directory name. Raises ManifestError."""
    if not isinstance(ecu, str) or ECU_NAME.fullmatch(ecu) is None or ecu in (".", ".."):
        raise ManifestError(f"ECU name {str(ecu)[:40]!r} must match {ECU_NAME.pattern} (not . or ..)")
    return ecu


def check_text(value: object, what: str, *, allow_empty: bool = False) -> str:
    """Printable text of at most MAX_VERSION_LEN characters. Raises ManifestError."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_VERSION_LEN
        or not value.isprintable()
        or (not value and not allow_empty)
    ):
        raise ManifestError(f"{what} must be printable text of at most {MAX_VERSION_LEN} characters")
    return value


def check_sha256(value: object, *, allow_empty: bool = False) -> str:
    """64 lowercase hex digits (empty only where allowed). Raises ManifestError."""
    if isinstance(value, str) and (SHA256_HEX.fullmatch(value) or (allow_empty and value == "")):
        return value
    raise ManifestError("sha256 must be 64 lowercase hex digits")


def check_length(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError("length_bytes must be a non-negative integer")
    return value


@dataclass(frozen=True, slots=True)
class VerifiedArtifact:
    """An artifact file whose signed metadata the verifier has checked: the ECU it is for, its
    software version, the SHA-256 and length the metadata lists, and the ECU's hardware id. The
    file must stay in place until the install's result is reported. Raises ManifestError."""

    path: Path
    ecu: str
    version: str
    sha256: str
    length_bytes: int
    hardware_id: str = ""

    def __post_init__(self) -> None:
        check_ecu(self.ecu)
        check_text(self.version, "version")
        check_sha256(self.sha256)
        check_length(self.length_bytes)
        check_text(self.hardware_id, "hardware_id", allow_empty=True)

    def manifest(self) -> Manifest:
        return Manifest(self.ecu, self.version, self.sha256, self.length_bytes, self.hardware_id)


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a slot holds: its ECU, version, the image's SHA-256 and length, the hardware id. The
    factory seed of an ECU (its first slot, from the agent's configured inventory) has no image:
    sha256 "" and length 0. Raises ManifestError."""

    ecu: str
    version: str
    sha256: str
    length_bytes: int
    hardware_id: str = ""

    def __post_init__(self) -> None:
        check_ecu(self.ecu)
        check_text(self.version, "version")
        check_sha256(self.sha256, allow_empty=True)
        check_length(self.length_bytes)
        check_text(self.hardware_id, "hardware_id", allow_empty=True)

    @property
    def is_factory(self) -> bool:
        """The seed from the configured inventory: no image of ours in the slot."""
        return self.sha256 == ""

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "ecu": self.ecu,
                "version": self.version,
                "sha256": self.sha256,
                "length_bytes": self.length_bytes,
                "hardware_id": self.hardware_id,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Raises ManifestError."""
        try:
            doc: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ManifestError("manifest must be a JSON object")
        return cls(
            doc.get("ecu"),  # type: ignore[arg-type]  # checked in __post_init__
            doc.get("version"),  # type: ignore[arg-type]
            doc.get("sha256"),  # type: ignore[arg-type]
            doc.get("length_bytes"),  # type: ignore[arg-type]
            doc.get("hardware_id", ""),
        )
