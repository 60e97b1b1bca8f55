"""Ingest: MQTT telemetry batches -> triage (decode, checks) -> validation -> PostgreSQL by binary COPY.

Dead letters keep every rejected payload with its reason; (vehicle, seq) makes storage idempotent;
messages are acknowledged only after their rows are committed. See docs/scaling.md.
"""

from ingest.pipeline import DeadLetter, Envelope, Triage, triage
from ingest.schema import MigrationReport, StorageMode, migrate
from ingest.service import IngestConfig, IngestService, IngestTotals
from ingest.store import StorageUnavailable, TelemetryStore, WriteResult
from ingest.validation import ValidationPolicy

__all__ = [
    "DeadLetter",
    "Envelope",
    "IngestConfig",
    "IngestService",
    "IngestTotals",
    "MigrationReport",
    "StorageMode",
    "StorageUnavailable",
    "TelemetryStore",
    "Triage",
    "ValidationPolicy",
    "WriteResult",
    "migrate",
    "triage",
]
