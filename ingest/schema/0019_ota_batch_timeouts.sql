-- The report step judges in chunks, and offers nobody answers time out (package `ota`, docs/ota.md §6).

-- The report step claims the reports still to judge or to apply in (offer, seq) order, a chunk at a
-- time (`ota.report_step`): this index hands them over in that order without a sort.
CREATE INDEX IF NOT EXISTS update_reports_pending_idx ON update_reports (offer_id, seq, report_id)
    WHERE verdict IS NULL OR (verdict = 'accepted' AND applied_at IS NULL);

-- An offer the vehicle has not answered (no accepted report) `offer_timeout_s` after it last went
-- out (`campaign_vehicles.sent_at`: the controller's time of the broker's acknowledgement) times out:
-- the member becomes `timed_out`, which the wave gate counts apart (neither a success nor a
-- failure), until a late report moves it again. Default: three days.
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS offer_timeout_s double precision NOT NULL DEFAULT 259200;
ALTER TABLE campaigns DROP CONSTRAINT IF EXISTS campaigns_offer_timeout_s_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_offer_timeout_s_check CHECK (offer_timeout_s > 0);

ALTER TABLE campaign_vehicles ADD COLUMN IF NOT EXISTS sent_at timestamptz;
-- Offers that went out before this migration: their time counts from the offer.
UPDATE campaign_vehicles cv SET sent_at = cv.offered_at WHERE cv.sent_at IS NULL AND cv.state = 'offered'
    AND EXISTS (SELECT 1 FROM update_offers o WHERE o.campaign_id = cv.campaign_id
                AND o.vehicle_id = cv.vehicle_id AND o.published_at IS NOT NULL);

ALTER TABLE campaign_vehicles DROP CONSTRAINT IF EXISTS campaign_vehicles_state_check;
ALTER TABLE campaign_vehicles ADD CONSTRAINT campaign_vehicles_state_check CHECK (state IN (
    'pending', 'offered', 'downloading', 'installed', 'committed', 'failed', 'rolled_back', 'excluded',
    'timed_out'
));

-- The audit register records the timeout (event `timed_out`, with the offer and the reason).
ALTER TABLE ota_audit DROP CONSTRAINT IF EXISTS ota_audit_event_check;
ALTER TABLE ota_audit ADD CONSTRAINT ota_audit_event_check
    CHECK (event IN ('offered', 'incompatible', 'report', 'timed_out'));

-- The register's result is `timed_out` (at the timeout, with its reason) while no report answered
-- the offer after it timed out; a late report is the truth again.
CREATE OR REPLACE VIEW ota_audit_register AS
SELECT
    o.vehicle_id, o.offer_id, o.campaign_id, o.remedy_id, o.ecu, o.target, o.target_version,
    coalesce(o.target_sha256, last.target_sha256) AS target_sha256,
    o.target_hardware_ids, o.vehicle_hardware_id, o.compatible, o.compatibility,
    o.at AS checked_at, uo.published_at,
    coalesce(first.before_version, o.before_version) AS before_version,
    coalesce(first.before_sha256, o.before_sha256) AS before_sha256,
    last.after_version, last.after_sha256, last.state AS last_state, last.at AS last_report_at,
    CASE WHEN NOT o.compatible THEN 'not_offered'
         WHEN last.state IN ('committed', 'rolled_back', 'failed') THEN last.state
         WHEN timeout.at IS NOT NULL AND last.state IS NULL THEN 'timed_out'
         ELSE 'in_progress' END AS result,
    CASE WHEN last.state IN ('committed', 'rolled_back', 'failed') THEN last.at
         WHEN timeout.at IS NOT NULL AND last.state IS NULL THEN timeout.at END AS result_at,
    CASE WHEN last.state IS NULL THEN timeout.reason ELSE last.reason END AS result_reason
FROM ota_audit o
LEFT JOIN update_offers uo ON uo.offer_id = o.offer_id
LEFT JOIN LATERAL (
    SELECT r.before_version, r.before_sha256 FROM ota_audit r
    WHERE r.event = 'report' AND r.offer_id = o.offer_id ORDER BY r.seq, r.audit_id LIMIT 1
) first ON true
LEFT JOIN LATERAL (
    SELECT r.state, r.reason, r.at, r.after_version, r.after_sha256, r.target_sha256 FROM ota_audit r
    WHERE r.event = 'report' AND r.offer_id = o.offer_id ORDER BY r.seq DESC, r.audit_id DESC LIMIT 1
) last ON true
LEFT JOIN LATERAL (
    SELECT t.at, t.reason FROM ota_audit t
    WHERE t.event = 'timed_out' AND t.offer_id = o.offer_id ORDER BY t.audit_id DESC LIMIT 1
) timeout ON true
WHERE o.event IN ('offered', 'incompatible');
