"""Versioned, idempotent schema migrations (see `migrate`)."""

from ingest.schema.migrate import MigrationReport, StorageMode, migrate

__all__ = ["MigrationReport", "StorageMode", "migrate"]
