-- Fleet scale, shared by both storage modes (the mode-specific part is in the .timescale/.native file).
-- The batch ledger is pruned by age (fleet_maintain): a BRIN index on last_ts makes that cheap.
CREATE INDEX IF NOT EXISTS ingest_batches_last_ts_brin ON ingest_batches USING brin (last_ts);

-- Retention settings read by fleet_maintain() and, in TimescaleDB mode, used for the policies below.
-- raw: telemetry rows; hourly: telemetry_hourly; ledger: (vehicle, seq) idempotency keys. The ledger
-- must outlive ingest's accepted past window (30 days by default), else a very late redelivery could
-- be stored twice.
INSERT INTO fleet_meta (key, value) VALUES
    ('retention_raw', '180 days'),
    ('retention_hourly', '2 years'),
    ('retention_ledger', '31 days')
ON CONFLICT (key) DO NOTHING;
