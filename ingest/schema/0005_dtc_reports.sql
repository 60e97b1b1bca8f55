-- DTC reports (contract.dtc, `fleetpulse.dtc.v1`): each row is a vehicle's whole set of stored
-- codes at one moment of its clock. The key makes a redelivered report idempotent.
CREATE TABLE IF NOT EXISTS dtc_reports (
    vehicle_id       text        NOT NULL,
    ts               timestamptz NOT NULL,
    codes            text[]      NOT NULL,
    firmware_version text        NOT NULL DEFAULT '',
    received_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle_id, ts, codes)
);
CREATE INDEX IF NOT EXISTS dtc_reports_ts_idx ON dtc_reports (ts);
CREATE INDEX IF NOT EXISTS dtc_reports_codes_idx ON dtc_reports USING gin (codes);

-- The codes each vehicle reports now: its newest report (an empty set means cleared).
CREATE OR REPLACE VIEW vehicle_dtc_current AS
SELECT DISTINCT ON (vehicle_id) vehicle_id, ts, codes, firmware_version
FROM dtc_reports
ORDER BY vehicle_id, ts DESC;
