-- Fleet queries (docs/fleet-queries.md): a 10-minute aggregate per vehicle, the record of which
-- parts of it late data has made stale, and API tokens for fleet operators.
--
-- `telemetry_10m` (a continuous aggregate on TimescaleDB, a rollup table on plain PostgreSQL; the
-- mode-specific files) has one row per vehicle and 10-minute bucket aligned to the Unix epoch:
-- rows, speed samples and their sum (the average is sum / count, so late rows re-aggregate
-- exactly), and per position and energy signal the newest non-NULL value with its time (what a
-- fleet query asked about a past time needs).
--
-- Staleness: every new batch in the ledger (`ingest_batches`, written in the same transaction as
-- its rows) adds its vehicle and time range to `telemetry_10m_pending`, by a trigger, so no writer
-- can forget it. A refresh re-aggregates exactly the 10-minute buckets those ranges touch, from
-- the raw rows, and then deletes the pending rows it took. A batch that commits while a refresh
-- runs keeps its pending row for the next refresh, so no late row is ever left out.
CREATE TABLE IF NOT EXISTS telemetry_10m_pending (
    id          bigserial   PRIMARY KEY,
    vehicle_id  text        NOT NULL,
    first_ts    timestamptz NOT NULL,
    last_ts     timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS telemetry_10m_pending_vehicle_idx ON telemetry_10m_pending (vehicle_id, first_ts);

CREATE OR REPLACE FUNCTION fleet_note_pending_10m() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO telemetry_10m_pending (vehicle_id, first_ts, last_ts, received_at)
    SELECT vehicle_id, least(first_ts, last_ts), greatest(first_ts, last_ts), received_at FROM new_batches;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS ingest_batches_pending_10m ON ingest_batches;
CREATE TRIGGER ingest_batches_pending_10m AFTER INSERT ON ingest_batches
    REFERENCING NEW TABLE AS new_batches FOR EACH STATEMENT EXECUTE FUNCTION fleet_note_pending_10m();

-- Telemetry stored before this migration: each vehicle's whole time range is pending once, so the
-- first refresh aggregates it (min and max per vehicle come from the (vehicle_id, ts) index).
INSERT INTO telemetry_10m_pending (vehicle_id, first_ts, last_ts)
SELECT v.vehicle_id, r.lo, r.hi
FROM vehicles v
CROSS JOIN LATERAL (SELECT min(t.ts) AS lo, max(t.ts) AS hi FROM telemetry t WHERE t.vehicle_id = v.vehicle_id) r
WHERE r.lo IS NOT NULL;

-- API tokens: a fleet operator's token names the fleets it may query (one or more).
ALTER TABLE api_tokens
    DROP CONSTRAINT IF EXISTS api_tokens_role_check,
    DROP CONSTRAINT IF EXISTS api_tokens_check,
    ADD COLUMN IF NOT EXISTS fleet_ids text[];
ALTER TABLE api_tokens
    ADD CONSTRAINT api_tokens_role_check CHECK (role IN ('admin', 'service_centre', 'fleet_operator')),
    ADD CONSTRAINT api_tokens_scope_check CHECK (
        (role = 'service_centre') = (service_centre_id IS NOT NULL)
        AND (role = 'fleet_operator') = (fleet_ids IS NOT NULL)
        AND (fleet_ids IS NULL OR cardinality(fleet_ids) > 0)
    );
