-- The service-centre API's core (package `api`, docs/api.md): a person's resolve of an alarm,
-- the engineer role and the read audit log (below).
-- A resolve clears the alarm (cleared_at: the later of its newest data time and the wall clock of
-- the act), records who and when (resolved_at is wall clock, like acknowledged_at), and writes a
-- 'resolved' history row. Until the detector's own clear rule holds (a 'cleared' history row after
-- the resolve), findings of the same episode do not raise it again (analytics.alarms).
ALTER TABLE alarms
    ADD COLUMN IF NOT EXISTS resolved_at timestamptz,
    ADD COLUMN IF NOT EXISTS resolved_by text;
ALTER TABLE alarms DROP CONSTRAINT IF EXISTS alarms_resolved_check;
ALTER TABLE alarms ADD CONSTRAINT alarms_resolved_check CHECK (
    (resolved_at IS NULL) = (resolved_by IS NULL) AND (resolved_at IS NULL OR cleared_at IS NOT NULL)
);

ALTER TABLE alarm_history DROP CONSTRAINT IF EXISTS alarm_history_change_check;
ALTER TABLE alarm_history ADD CONSTRAINT alarm_history_change_check
    CHECK (change IN ('raised', 'escalated', 'cleared', 'acknowledged', 'resolved'));

-- The alarm lists' keyset order (newest raise first, then id).
CREATE INDEX IF NOT EXISTS alarms_raised_idx ON alarms (raised_at DESC, alarm_id DESC);

-- The engineer role: fleet-wide reads of vehicles and alarms, no owner data, coarse positions.
-- Like an admin it names no centre and no fleet.
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'service_centre', 'fleet_operator', 'engineer'));

-- The read audit log: which principal read which vehicles' data, and when. One row per request
-- (every vehicle whose data it answered with), written in batches by the API (api.read_audit) and
-- read by admins (GET /v1/audit/reads).
CREATE TABLE IF NOT EXISTS api_read_audit (
    audit_id    bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL,
    principal   text        NOT NULL,
    path        text        NOT NULL,
    vehicle_ids text[]      NOT NULL
);
CREATE INDEX IF NOT EXISTS api_read_audit_at_idx ON api_read_audit (at DESC, audit_id DESC);
CREATE INDEX IF NOT EXISTS api_read_audit_vehicles_idx ON api_read_audit USING gin (vehicle_ids);
