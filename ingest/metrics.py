"""Prometheus metrics of the ingest service (exposed by `fleet ingest --metrics-port`).

What to watch: `rate(fleet_ingest_samples_total[1m])` is samples/s; `fleet_ingest_flush_seconds`
is the storage latency of one flush; `fleet_ingest_lag_seconds` is commit time minus the newest
sample time of each stored batch (vehicle batching + broker + ingest + database); dead letters are
counted by reason and dedupe hits as duplicate batches.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ingest.store import WriteResult

MESSAGES = Counter("fleet_ingest_messages_total", "MQTT messages received")
SAMPLES = Counter("fleet_ingest_samples_total", "Signal values stored")
ROWS = Counter("fleet_ingest_rows_total", "Telemetry rows stored")
BATCHES = Counter("fleet_ingest_batches_total", "Batches stored (new in the ledger)")
DUPLICATES = Counter(
    "fleet_ingest_duplicate_batches_total", "Batches skipped as already stored (dedupe hits)"
)
DTC_REPORTS = Counter("fleet_ingest_dtc_reports_total", "DTC reports stored")
DTC_DUPLICATES = Counter("fleet_ingest_dtc_duplicate_reports_total", "DTC reports skipped as already stored")
UPDATE_REPORTS = Counter("fleet_ingest_update_reports_total", "OTA update reports stored")
DEAD_LETTERS = Counter("fleet_ingest_dead_letters_total", "Payloads dead-lettered", ["reason"])
STORAGE_FAILURES = Counter("fleet_ingest_storage_failures_total", "Flushes that failed and were retried")
BROKER_DISCONNECTS = Counter("fleet_ingest_broker_disconnects_total", "Lost broker connections")
LAST_COMMIT = Gauge(
    "fleet_ingest_last_commit_timestamp_seconds",
    "Unix time of the newest committed flush (alert when it stops moving while messages arrive)",
)
BUFFERED = Gauge("fleet_ingest_buffered_messages", "Messages received and not yet cut into a flush")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
FLUSH_SECONDS = Histogram(
    "fleet_ingest_flush_seconds", "Time to store one flush (one transaction)", buckets=_LATENCY_BUCKETS
)
PREPARE_SECONDS = Histogram(
    "fleet_ingest_prepare_seconds",
    "Time to decode, validate and COPY-encode one flush",
    buckets=_LATENCY_BUCKETS,
)
STATEMENT_SECONDS = Histogram(
    "fleet_ingest_store_statement_seconds",
    "Time of each statement of a flush's transaction (ledger, vehicles, rows, latest, ..., commit)",
    ["statement"],
    buckets=_LATENCY_BUCKETS,
)
LAG_BUCKETS = (
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1, 1.5, 2, 3, 5, 10, 30, 60, 300, 3600,
)  # fmt: skip
LAG = Histogram(
    "fleet_ingest_lag_seconds",
    "Commit time minus the newest sample time, per stored batch",
    buckets=LAG_BUCKETS,
)


def record_write(result: WriteResult) -> None:
    """Count one stored flush."""
    SAMPLES.inc(result.samples)
    ROWS.inc(result.rows)
    BATCHES.inc(result.batches)
    DUPLICATES.inc(result.duplicates)
    DTC_REPORTS.inc(result.dtc_reports)
    DTC_DUPLICATES.inc(result.dtc_duplicates)
    UPDATE_REPORTS.inc(result.update_reports)
    for reason in result.dead_reasons:
        DEAD_LETTERS.labels(reason=reason).inc()
    for statement, seconds in result.statement_s:
        STATEMENT_SECONDS.labels(statement=statement).observe(seconds)
    LAST_COMMIT.set(result.committed_at_ns / 1e9)
    committed_us = result.committed_at_ns // 1000
    for newest_us in result.newest_ts_us:
        LAG.observe(max(0.0, (committed_us - newest_us) / 1e6))
