"""The OTA update protocol's two messages: the server's offer and the vehicle's signed report.

- **The offer** travels on the downlink `command` topic as JSON `{"type": "update_offer", ...}`:
  which ECU gets which TUF target (and version), how urgent it is, when it may be installed,
  whether the owner must consent, where the TUF repository is, and the server's `nonce`.
- **The report** travels on the uplink `update` topic, one per step of the update (`downloading`,
  `verified`, `installed`, `committed`, `rolled_back`, `failed`). It names the offer and repeats
  its nonce, carries the software before, after and targeted, and is signed with the vehicle's own
  Ed25519 key over `signing_bytes(document)`: the document without `signature`, as canonical JSON
  (keys sorted, no spaces, UTF-8). Unknown fields are signed too, and ignored.

docs/ota.md says what each field means. Owns: the shapes, their checks and the canonical bytes.
Pure: no I/O and no cryptography (the agent signs, `ota` verifies). A bad offer raises
`OfferError` (the agent refuses it); a bad report raises DecodeError(`bad_update_report` or
`oversized`), which ingest dead-letters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from contract.batch import check_vehicle_id
from contract.errors import DeadLetterReason, DecodeError
from contract.json_message import json_object
from contract.software import ECU_NAME
from contract.timestamps import check_ts_us

OFFER_TYPE = "update_offer"
REPORT_SCHEMA = "fleetpulse.update_report.v1"
MAX_OFFER_BYTES = 8 << 10
MAX_REPORT_BYTES = 8 << 10
MAX_TEXT = 64  # versions, hardware ids
MAX_DETAIL = 500
URGENCIES = ("soft", "forced", "forced_after")
STATES = ("downloading", "verified", "installed", "committed", "rolled_back", "failed")
FINAL_STATES = ("committed", "rolled_back", "failed")
# Offer ids and failure reasons: short machine-readable names.
OFFER_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
REASON = re.compile(r"[a-z0-9_]{1,64}")
NONCE = re.compile(r"[A-Za-z0-9_-]{22,128}")  # URL-safe base64 of at least 16 random bytes
# Path segments of a target name: no empty, hidden or `..` segment.
TARGET_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,127}(/[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,127}){0,3}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
CLOCK_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
TIMEZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")
URL = re.compile(r"https?://[^\s]{1,400}/")


class OfferError(ValueError):
    """An update offer that is not valid: the agent refuses it and installs nothing."""


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Daily local times between which an install may start (`start` > `end` spans midnight)."""

    start: str  # "HH:MM"
    end: str  # "HH:MM"
    timezone: str  # IANA name, e.g. "Europe/Berlin"

    def as_json(self) -> dict[str, str]:
        return {"start": self.start, "end": self.end, "timezone": self.timezone}


@dataclass(frozen=True, slots=True)
class UpdateOffer:
    offer_id: str
    nonce: str
    issued_at_us: int
    ecu: str
    target: str  # the TUF target name, e.g. "ECM/4.2.1/ecm-b12.bin"
    version: str
    urgency: str  # soft | forced | forced_after
    repository_url: str  # ends with "/": metadata under metadata/, artifacts under targets/
    forced_after_us: int | None = None  # urgency forced_after only: forced from this time on
    maintenance_window: MaintenanceWindow | None = None  # None: any time
    consent_required: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "type": OFFER_TYPE,
            "offer_id": self.offer_id,
            "nonce": self.nonce,
            "issued_at_us": self.issued_at_us,
            "ecu": self.ecu,
            "target": self.target,
            "version": self.version,
            "urgency": self.urgency,
            "forced_after_us": self.forced_after_us,
            "maintenance_window": None
            if self.maintenance_window is None
            else self.maintenance_window.as_json(),
            "consent_required": self.consent_required,
            "repository_url": self.repository_url,
        }

    def encode(self) -> bytes:
        """The payload for the `command` topic. Raises OfferError when the offer is not valid."""
        payload = json.dumps(self.as_json(), separators=(",", ":")).encode()
        parse_update_offer(payload)
        return payload


def parse_update_offer(payload: bytes) -> UpdateOffer:
    """Decode and check an offer. Raises OfferError (with what is wrong)."""
    try:  # the reason is not used: an offer is never dead-lettered, the agent refuses it
        doc = json_object(payload, MAX_OFFER_BYTES, DeadLetterReason.BAD_UPDATE_REPORT)
    except DecodeError as exc:
        raise OfferError(exc.detail) from None
    if doc.get("type") != OFFER_TYPE:
        raise OfferError(f"type must be {OFFER_TYPE!r}")
    urgency = doc.get("urgency")
    if urgency not in URGENCIES:
        raise OfferError(f"urgency must be one of {URGENCIES}")
    forced_after = doc.get("forced_after_us")
    if (urgency == "forced_after") != (forced_after is not None):
        raise OfferError("forced_after_us is required with urgency forced_after, and only then")
    if forced_after is not None:
        _check_time(forced_after, "forced_after_us", OfferError)
    issued = _check_time(doc.get("issued_at_us"), "issued_at_us", OfferError)
    consent = doc.get("consent_required", False)
    if not isinstance(consent, bool):
        raise OfferError("consent_required must be true or false")
    url = doc.get("repository_url")
    if not isinstance(url, str) or URL.fullmatch(url) is None:
        raise OfferError("repository_url must be an http(s) URL ending with '/'")
    return UpdateOffer(
        offer_id=_match(doc.get("offer_id"), OFFER_ID, "offer_id", OfferError),
        nonce=_match(doc.get("nonce"), NONCE, "nonce", OfferError),
        issued_at_us=issued,
        ecu=_match(doc.get("ecu"), ECU_NAME, "ecu", OfferError),
        target=_match(doc.get("target"), TARGET_NAME, "target", OfferError),
        version=_text(doc.get("version"), "version", OfferError),
        urgency=urgency,
        repository_url=url,
        forced_after_us=forced_after,
        maintenance_window=_window(doc.get("maintenance_window")),
        consent_required=consent,
    )


def _window(value: Any) -> MaintenanceWindow | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OfferError("maintenance_window must be an object {start, end, timezone} or null")
    start, end = value.get("start"), value.get("end")
    for name, clock in (("start", start), ("end", end)):
        if not isinstance(clock, str) or CLOCK_HHMM.fullmatch(clock) is None:
            raise OfferError(f"maintenance_window.{name} must be HH:MM (24 h)")
    if start == end:
        raise OfferError("maintenance_window start and end must differ")
    zone = _match(value.get("timezone"), TIMEZONE, "maintenance_window.timezone", OfferError)
    return MaintenanceWindow(str(start), str(end), zone)


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Software:
    """One ECU image: its version and the SHA-256 of the image (None where it is not known)."""

    version: str
    sha256: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"version": self.version, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class UpdateReport:
    vehicle_id: str
    offer_id: str
    nonce: str
    seq: int  # 1, 2, ... per offer: every report of an offer has a larger seq than the one before
    ts_us: int  # the vehicle's clock
    state: str
    ecu: str
    before: Software  # what the ECU ran when the update started
    after: Software  # what the ECU runs as this report is sent (before, until the switch)
    target: Software  # the offered update (sha256 None until the agent verified it)
    key_id: str  # SHA-256 (hex) of the raw Ed25519 public key that signed
    reason: str | None = None  # failed (required) and rolled_back (optional): why
    detail: str = ""
    signature: bytes = field(default=b"", repr=False)
    signed_bytes: bytes = field(default=b"", repr=False)  # what the signature covers

    def unsigned_document(self) -> dict[str, Any]:
        """The document without its signature, as the agent builds it before signing."""
        doc: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "vehicle_id": self.vehicle_id,
            "offer_id": self.offer_id,
            "nonce": self.nonce,
            "seq": self.seq,
            "ts_us": self.ts_us,
            "state": self.state,
            "ecu": self.ecu,
            "before": self.before.as_json(),
            "after": self.after.as_json(),
            "target": self.target.as_json(),
            "reason": self.reason,
            "key_id": self.key_id,
        }
        if self.detail:
            doc["detail"] = self.detail
        return doc


def signing_bytes(document: dict[str, Any]) -> bytes:
    """What a report's signature covers: the document without `signature`, as canonical JSON (keys
    sorted, separators without spaces, UTF-8)."""
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_payload(document: dict[str, Any], signature: bytes) -> bytes:
    """The report's payload: the document with `signature` (standard base64 of the 64 bytes)."""
    return json.dumps(
        {**document, "signature": base64.b64encode(signature).decode()}, separators=(",", ":")
    ).encode()


def key_id_of(public_key_raw: bytes) -> str:
    """The key id of an Ed25519 public key: SHA-256 (hex) of its 32 raw bytes."""
    return hashlib.sha256(public_key_raw).hexdigest()


def parse_update_report(payload: bytes) -> UpdateReport:
    """Decode and check a report's shape (not its signature: `ota` verifies that against the
    vehicle's registered key). Raises DecodeError (bad_update_report, oversized or
    timestamp_out_of_range)."""
    doc = json_object(payload, MAX_REPORT_BYTES, DeadLetterReason.BAD_UPDATE_REPORT)
    if doc.get("schema") != REPORT_SCHEMA:
        raise _bad(f"schema is {str(doc.get('schema'))[:40]!r}, expected {REPORT_SCHEMA!r}")
    vehicle_id = check_vehicle_id(doc.get("vehicle_id"))
    seq, ts_us = doc.get("seq"), doc.get("ts_us")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**31:
        raise _bad("seq must be an integer from 1 to 2^31-1")
    if not isinstance(ts_us, int) or isinstance(ts_us, bool):
        raise _bad("ts_us must be an integer (microseconds since the Unix epoch)")
    check_ts_us(ts_us, "ts_us")
    state = doc.get("state")
    if state not in STATES:
        raise _bad(f"state must be one of {STATES}")
    reason = doc.get("reason")
    if reason is not None:
        reason = _match(reason, REASON, "reason", _DecodeBad)
    if state == "failed" and reason is None:
        raise _bad("a failed report needs a reason")
    if state not in ("failed", "rolled_back") and reason is not None:
        raise _bad("only failed and rolled_back reports carry a reason")
    detail = doc.get("detail", "")
    if not isinstance(detail, str) or len(detail) > MAX_DETAIL:
        raise _bad(f"detail must be text of at most {MAX_DETAIL} characters")
    signature = _signature(doc.get("signature"))
    return UpdateReport(
        vehicle_id=vehicle_id,
        offer_id=_match(doc.get("offer_id"), OFFER_ID, "offer_id", _DecodeBad),
        nonce=_match(doc.get("nonce"), NONCE, "nonce", _DecodeBad),
        seq=seq,
        ts_us=ts_us,
        state=state,
        ecu=_match(doc.get("ecu"), ECU_NAME, "ecu", _DecodeBad),
        before=_software(doc.get("before"), "before"),
        after=_software(doc.get("after"), "after"),
        target=_software(doc.get("target"), "target"),
        key_id=_match(doc.get("key_id"), SHA256_HEX, "key_id", _DecodeBad),
        reason=reason,
        detail=detail,
        signature=signature,
        signed_bytes=signing_bytes(doc),
    )


class _DecodeBad(DecodeError):
    def __init__(self, detail: str) -> None:
        super().__init__(DeadLetterReason.BAD_UPDATE_REPORT, detail)


def _bad(detail: str) -> DecodeError:
    return _DecodeBad(detail)


def _software(value: Any, what: str) -> Software:
    if not isinstance(value, dict):
        raise _bad(f"{what} must be an object {{version, sha256}}")
    sha = value.get("sha256")
    if sha is not None:
        sha = _match(sha, SHA256_HEX, f"{what}.sha256", _DecodeBad)
    return Software(_text(value.get("version"), f"{what}.version", _DecodeBad), sha)


def _signature(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 88:
        raise _bad("signature must be the standard base64 of a 64-byte Ed25519 signature")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("signature is not valid base64") from None
    if len(raw) != 64:
        raise _bad("signature must be 64 bytes")
    return raw


def _match(value: Any, pattern: re.Pattern[str], what: str, error: type[Exception]) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise error(f"{what} {str(value)[:40]!r} must match {pattern.pattern}")
    return value


def _text(value: Any, what: str, error: type[Exception]) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT or not value.isprintable():
        raise error(f"{what} must be printable text of 1 to {MAX_TEXT} characters")
    return value


def _check_time(value: Any, what: str, error: type[Exception]) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**62:
        raise error(f"{what} must be an integer (microseconds since the Unix epoch)")
    return value
