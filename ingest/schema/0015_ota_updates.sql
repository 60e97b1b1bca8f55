-- Signed OTA updates (package `ota`, protocol in docs/ota.md): each vehicle's report-signing key,
-- the offers sent to vehicles with their nonces, and the vehicles' update reports as ingest stored
-- them, with the verdict `ota.reports` reaches on each.

-- A vehicle's Ed25519 public key (32 raw bytes), made when the vehicle is provisioned
-- (`fleet ota vehicle-key`). At most one active key per vehicle; a replaced key stays, revoked.
CREATE TABLE IF NOT EXISTS vehicle_keys (
    vehicle_id  text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    key_id      text        NOT NULL CHECK (key_id ~ '^[0-9a-f]{64}$'),  -- sha256(public_key), hex
    public_key  bytea       NOT NULL CHECK (length(public_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (vehicle_id, key_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS vehicle_keys_active_idx ON vehicle_keys (vehicle_id) WHERE revoked_at IS NULL;

-- Every offer sent on a vehicle's `command` topic. The nonce is the server's, random, used once:
-- a report counts only with its offer's nonce, and only with a seq above the last one accepted.
CREATE TABLE IF NOT EXISTS update_offers (
    offer_id         text        PRIMARY KEY,
    vehicle_id       text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    campaign_id      bigint      REFERENCES campaigns (campaign_id) ON DELETE SET NULL,
    nonce            text        NOT NULL UNIQUE,
    ecu              text        NOT NULL,
    target           text        NOT NULL,
    version          text        NOT NULL,
    issued_at        timestamptz NOT NULL,
    offer            jsonb       NOT NULL,  -- the offer as sent
    last_seq         integer     NOT NULL DEFAULT 0,  -- seq of the newest accepted report
    state            text,  -- state of the newest accepted report
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS update_offers_vehicle_idx ON update_offers (vehicle_id, issued_at DESC);
CREATE INDEX IF NOT EXISTS update_offers_campaign_idx ON update_offers (campaign_id) WHERE campaign_id IS NOT NULL;

-- The vehicles' update reports as ingest stored them (shape checked, signature not yet). The exact
-- payload is kept: the signature is verified over it. A redelivered report (same bytes) adds no row.
-- `verdict` is NULL until `ota.reports` judged it: 'accepted' or the reason it was refused.
CREATE TABLE IF NOT EXISTS update_reports (
    report_id      bigserial   PRIMARY KEY,
    vehicle_id     text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    offer_id       text        NOT NULL,  -- not a foreign key: a report may name an unknown offer
    seq            integer     NOT NULL,
    state          text        NOT NULL,
    reason         text,
    ts             timestamptz NOT NULL,  -- the vehicle's clock
    ecu            text        NOT NULL,
    before_version text        NOT NULL,
    before_sha256  text,
    after_version  text        NOT NULL,
    after_sha256   text,
    target_version text        NOT NULL,
    target_sha256  text,
    key_id         text        NOT NULL,
    payload        bytea       NOT NULL,
    payload_sha256 bytea       NOT NULL,
    received_at    timestamptz NOT NULL,
    verdict        text,
    verified_at    timestamptz,
    UNIQUE (vehicle_id, payload_sha256)
);
CREATE INDEX IF NOT EXISTS update_reports_unverified_idx ON update_reports (report_id) WHERE verdict IS NULL;
CREATE INDEX IF NOT EXISTS update_reports_offer_idx ON update_reports (offer_id, seq);
