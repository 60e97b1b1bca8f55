"""The vehicle's signed update reports: building them, numbering them, signing them.

Owns: `ReportSigner` (the vehicle's own Ed25519 key, made at provisioning by `fleet ota
vehicle-key`; the file must be readable by the agent alone), `build_report` (one report of one
step, from the offer it answers) and `ReportCounter` (the per-offer `seq`, kept on disk so that it
only ever grows, across restarts too: the server refuses a seq it has seen, as a replay). The
shape and the signed bytes are `contract.update`'s. Leaves queuing the payload on the `update`
topic (through the agent's durable spool) to the agent.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import topics
from contract.update import Software, UpdateOffer, UpdateReport, key_id_of, signed_payload, signing_bytes


class ReportKeyError(RuntimeError):
    """The report key file cannot be used (missing, open to others, not Ed25519); the message names
    the file and the problem, never the key."""


class ReportSigner:
    """Signs reports with the vehicle's private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id_of(public)

    @classmethod
    def from_file(cls, path: Path) -> ReportSigner:
        """Load the PEM key at `path`. Raises ReportKeyError (missing, readable by group or
        others, not an unencrypted Ed25519 key)."""
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as exc:
            raise ReportKeyError(f"cannot read the report key {path}: {exc.strerror}") from None
        if stat.S_IMODE(mode) & 0o077:
            raise ReportKeyError(f"the report key {path} is open to group or others; chmod it 0600")
        try:
            key = serialization.load_pem_private_key(data, None)
        except (ValueError, TypeError) as exc:
            raise ReportKeyError(f"cannot load the report key {path}: {type(exc).__name__}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ReportKeyError(f"the report key {path} is not an Ed25519 key")
        return cls(key)

    def sign(self, report: UpdateReport) -> bytes:
        """The report's payload for the `update` topic, signed (its `key_id` becomes ours)."""
        document = report.unsigned_document()
        document["key_id"] = self.key_id
        return signed_payload(document, self._key.sign(signing_bytes(document)))


def build_report(
    offer: UpdateOffer,
    *,
    vehicle_id: str,
    seq: int,
    ts_us: int,
    state: str,
    before: Software,
    after: Software,
    target_sha256: str | None = None,
    reason: str | None = None,
    detail: str = "",
) -> UpdateReport:
    """The (unsigned) report of one step of `offer`: the ECU ran `before` when the update began,
    runs `after` now; the target is the offered version with its SHA-256 once verified."""
    return UpdateReport(
        vehicle_id=vehicle_id,
        offer_id=offer.offer_id,
        nonce=offer.nonce,
        seq=seq,
        ts_us=ts_us,
        state=state,
        ecu=offer.ecu,
        before=before,
        after=after,
        target=Software(offer.version, target_sha256),
        key_id="0" * 64,  # replaced by the signer's
        reason=reason,
        detail=detail[:500],
    )


def report_topic(vehicle_id: str) -> str:
    return topics.topic_for(vehicle_id, topics.UPDATE)


class ReportCounter:
    """The last seq used per offer, in one small JSON file written atomically (fsynced), so a seq
    is never used twice, even across a power cut."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def next_seq(self, offer_id: str) -> int:
        """Reserve and return the offer's next seq (1 for a new offer). Raises OSError."""
        counts = self._read()
        counts[offer_id] = counts.get(offer_id, 0) + 1
        self._write(counts)
        return counts[offer_id]

    def forget(self, offer_id: str) -> None:
        """Drop a finished offer's counter (its final report was sent). Raises OSError."""
        counts = self._read()
        if counts.pop(offer_id, None) is not None:
            self._write(counts)

    def _read(self) -> dict[str, int]:
        try:
            doc = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OSError(f"report counter {self._path} is unreadable: {exc}") from exc
        return {str(k): int(v) for k, v in doc.items()} if isinstance(doc, dict) else {}

    def _write(self, counts: dict[str, int]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self._path.parent, prefix=".tmp-", delete=False) as tmp:
            json.dump(counts, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, self._path)
