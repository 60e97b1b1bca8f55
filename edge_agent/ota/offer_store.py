"""The offers the agent holds, on disk, so that a restart carries on with them.

Owns: one JSON file per pending offer under `<state_dir>/ota/offers/`, each written atomically and
durably (`edge_agent.ota.durable.write_atomic`), and the ids of the offers already finished
(`done.json`, the newest DONE_KEPT), so that a repeated offer is ignored. A record holds the offer
as received, when it came, the owner's consent, its phase (`received` -> `verified` ->
`installing`), the verified artifact, the software before, the report states already sent and the
preconditions it last waited for. What is done with them is `edge_agent.ota.client`'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from contract.update import OfferError, Software, UpdateOffer, parse_update_offer
from edge_agent.ota.durable import write_atomic

log = logging.getLogger(__name__)

RECEIVED, VERIFIED, INSTALLING = "received", "verified", "installing"
PHASES = (RECEIVED, VERIFIED, INSTALLING)
DONE_KEPT = 256


@dataclass(frozen=True)
class OfferRecord:
    offer: UpdateOffer
    received_at_us: int
    before: Software
    phase: str = RECEIVED
    consent: bool | None = None  # None: no answer yet
    artifact: dict[str, Any] | None = None  # VerifiedTarget's fields once verified (path as text)
    reported: tuple[str, ...] = ()  # report states sent (progress and results)
    waiting_for: tuple[str, ...] = ()  # the preconditions of the last waiting report

    @property
    def offer_id(self) -> str:
        return self.offer.offer_id

    def to_json(self) -> bytes:
        doc = {
            "offer": self.offer.as_json(),
            "received_at_us": self.received_at_us,
            "before": self.before.as_json(),
            "phase": self.phase,
            "consent": self.consent,
            "artifact": self.artifact,
            "reported": list(self.reported),
            "waiting_for": list(self.waiting_for),
        }
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> OfferRecord:
        """Raises ValueError for a record that does not parse."""
        try:
            doc = json.loads(data)
            offer = parse_update_offer(json.dumps(doc["offer"]).encode())
            before = doc["before"]
            phase = doc["phase"]
            if phase not in PHASES:
                raise ValueError(f"unknown phase {phase!r}")
            consent = doc.get("consent")
            artifact = doc.get("artifact")
            if consent not in (None, True, False) or not (artifact is None or isinstance(artifact, dict)):
                raise ValueError("bad consent or artifact")
            return cls(
                offer=offer,
                received_at_us=int(doc["received_at_us"]),
                before=Software(str(before["version"]), before.get("sha256")),
                phase=phase,
                consent=consent,
                artifact=artifact,
                reported=tuple(str(s) for s in doc.get("reported", [])),
                waiting_for=tuple(str(s) for s in doc.get("waiting_for", [])),
            )
        except (KeyError, TypeError, ValueError, OfferError) as exc:
            raise ValueError(f"unreadable offer record: {exc}"[:200]) from None


class OfferStore:
    """Used by the OTA worker (and at start-up, before it runs): one thread at a time."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._done_path = directory / "done.json"

    def load(self) -> list[OfferRecord]:
        """Every pending record, oldest first; an unreadable one is moved aside (`.corrupt-<ns>`)
        and logged. Never raises."""
        records = []
        try:
            paths = sorted(self.dir.glob("offer-*.json")) if self.dir.exists() else []
        except OSError as exc:
            log.error("cannot list the OTA offers in %s: %s", self.dir, exc)
            return []
        for path in paths:
            try:
                records.append(OfferRecord.from_json(path.read_bytes()))
            except (OSError, ValueError) as exc:
                log.error("OTA offer record %s: %s; moved aside", path.name, exc)
                with contextlib.suppress(OSError):
                    path.rename(path.with_name(f"{path.name}.corrupt-{time.time_ns()}"))
        return sorted(records, key=lambda r: r.received_at_us)

    def save(self, record: OfferRecord) -> None:
        """Write the record durably. Raises OSError."""
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(record.offer_id), record.to_json())

    def update(self, record: OfferRecord, **changes: Any) -> OfferRecord:
        """Save `record` with `changes`; returns it. Raises OSError."""
        new = replace(record, **changes)
        self.save(new)
        return new

    def finish(self, offer_id: str) -> None:
        """Remember the offer as done and drop its record. Raises OSError."""
        done = self.done_ids()
        if offer_id not in done:
            done = [*done, offer_id][-DONE_KEPT:]
            self.dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self._done_path, json.dumps(done).encode())
        with contextlib.suppress(FileNotFoundError):
            self._path(offer_id).unlink()

    def done_ids(self) -> list[str]:
        try:
            doc = json.loads(self._done_path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.error("OTA done list %s unreadable (%s); starting a new one", self._done_path, exc)
            return []
        return [str(x) for x in doc] if isinstance(doc, list) else []

    def _path(self, offer_id: str) -> Path:
        # offer ids match [A-Za-z0-9_.-]{1,64} (contract.update.OFFER_ID); the prefix keeps "." and
        # ".." from being names of their own
        return self.dir / f"offer-{offer_id}.json"


def as_dict(obj: Any) -> dict[str, Any]:
    """A dataclass's fields with paths as text (for `OfferRecord.artifact`)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(obj).items()}
