-- The server side of the OTA loop (package `ota`, docs/ota.md §6): offers published from an outbox,
-- and the UNECE R156 audit register of every vehicle and update.

-- An offer is recorded (with the member's state) in the campaign step's transaction, and published
-- on the vehicle's command topic after that commits. `published_at` is set once the broker
-- acknowledged it (PUBACK); an offer the broker did not take stays NULL and is published again by
-- the next step, so a broker that is down loses nothing.
ALTER TABLE update_offers
    ADD COLUMN IF NOT EXISTS published_at       timestamptz,
    ADD COLUMN IF NOT EXISTS publish_attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_publish_error text;
-- Offers recorded before this migration were sent by whoever recorded them.
UPDATE update_offers SET published_at = created_at WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS update_offers_unpublished_idx ON update_offers (created_at) WHERE published_at IS NULL;

-- An accepted report is applied (its campaign member, the vehicle's inventory, the audit register) by
-- the report step, which sets `applied_at` in the same transaction. A report accepted by something
-- else (`fleet ota verify-reports`) is applied at the next report step: nothing verified is skipped.
ALTER TABLE update_reports ADD COLUMN IF NOT EXISTS applied_at timestamptz;
CREATE INDEX IF NOT EXISTS update_reports_unapplied_idx ON update_reports (offer_id, seq)
    WHERE verdict = 'accepted' AND applied_at IS NULL;

-- The audit register (UNECE R156 §7.1.1: software versions and their integrity data before and after
-- each update, the compatibility check, the result). Append-only: rows are added as offers are made
-- and as verified reports are recorded, and never changed or deleted (a trigger refuses it). No
-- foreign keys, so the register outlives the deletion of a vehicle, campaign or remedy.
CREATE TABLE IF NOT EXISTS ota_audit (
    audit_id            bigserial   PRIMARY KEY,
    at                  timestamptz NOT NULL,  -- offered/incompatible: the check; report: the vehicle's time (never after receipt)
    recorded_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    event               text        NOT NULL CHECK (event IN ('offered', 'incompatible', 'report')),
    vehicle_id          text        NOT NULL,
    offer_id            text,       -- NULL for `incompatible`: nothing was offered
    campaign_id         bigint,
    remedy_id           bigint,
    ecu                 text        NOT NULL,
    target              text,       -- the TUF target name
    target_version      text        NOT NULL,
    target_sha256       text,
    target_hardware_ids text[],
    vehicle_hardware_id text,       -- the ECU's hardware id in the vehicle's last reported inventory
    compatible          boolean,    -- offered/incompatible: the result of the check
    compatibility       text,       -- offered/incompatible: what was checked, in words
    seq                 integer,    -- report: its seq within the offer
    state               text,       -- report: the report's state
    reason              text,       -- report: the vehicle's reason (failed, rolled_back)
    before_version      text,
    before_sha256       text,
    after_version       text,
    after_sha256        text,
    report_id           bigint      UNIQUE,  -- report: the accepted report (update_reports)
    CHECK ((event = 'report') = (report_id IS NOT NULL)),
    CHECK ((event = 'incompatible') = (offer_id IS NULL))
);
CREATE INDEX IF NOT EXISTS ota_audit_vehicle_idx ON ota_audit (vehicle_id, at);
CREATE INDEX IF NOT EXISTS ota_audit_offer_idx ON ota_audit (offer_id, at) WHERE offer_id IS NOT NULL;

CREATE OR REPLACE FUNCTION ota_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ota_audit is append-only (UNECE R156 register): % refused', TG_OP;
END
$$;
DROP TRIGGER IF EXISTS ota_audit_no_change ON ota_audit;
CREATE TRIGGER ota_audit_no_change BEFORE UPDATE OR DELETE ON ota_audit
    FOR EACH ROW EXECUTE FUNCTION ota_audit_append_only();
DROP TRIGGER IF EXISTS ota_audit_no_truncate ON ota_audit;
CREATE TRIGGER ota_audit_no_truncate BEFORE TRUNCATE ON ota_audit
    FOR EACH STATEMENT EXECUTE FUNCTION ota_audit_append_only();

-- One row per vehicle and update (an offer, or a refused compatibility check): the check and its
-- result, the software before (the first accepted report's, else the inventory when offered) and
-- after (the newest accepted report's), and the final result with its time. The notices shown to
-- the owner are joined by `ota.audit` from the notifications of the member's remedy.
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
         ELSE 'in_progress' END AS result,
    CASE WHEN last.state IN ('committed', 'rolled_back', 'failed') THEN last.at END AS result_at,
    last.reason AS result_reason
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
WHERE o.event IN ('offered', 'incompatible');
