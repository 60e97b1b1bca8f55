"""Prometheus metrics of the ingest service (exposed by `fleet ingest --metrics-port`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter("fleet_ingest_messages_total", "MQTT messages received")
SAMPLES = Counter("fleet_ingest_samples_total", "Signal values stored")
ROWS = Counter("fleet_ingest_rows_total", "Telemetry rows stored")
DUPLICATES = Counter("fleet_ingest_duplicate_batches_total", "Batches skipped as already stored")
DEAD_LETTERS = Counter("fleet_ingest_dead_letters_total", "Payloads dead-lettered", ["reason"])
STORAGE_FAILURES = Counter("fleet_ingest_storage_failures_total", "Flushes that failed and were retried")
BROKER_DISCONNECTS = Counter("fleet_ingest_broker_disconnects_total", "Lost broker connections")
FLUSH_SECONDS = Histogram(
    "fleet_ingest_flush_seconds",
    "Time to triage and store one flush",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
