-- The service-centre API's core (package `api`, docs/api.md): a person's resolve of an alarm,
-- and the engineer role (below).
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
