-- Core objects shared by both storage modes. Telemetry itself is in the mode-specific file.
CREATE TABLE IF NOT EXISTS fleet_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS vehicles (
    vehicle_id        text PRIMARY KEY,
    registered_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz,
    model             text,
    service_centre_id text
);
CREATE INDEX IF NOT EXISTS vehicles_service_centre_idx ON vehicles (service_centre_id);

-- One row per accepted MQTT batch: (vehicle_id, seq) makes redelivered batches idempotent.
CREATE TABLE IF NOT EXISTS ingest_batches (
    vehicle_id  text        NOT NULL,
    seq         bigint      NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    first_ts    timestamptz NOT NULL,
    last_ts     timestamptz NOT NULL,
    n_rows      integer     NOT NULL,
    n_samples   integer     NOT NULL,
    PRIMARY KEY (vehicle_id, seq)
);

-- Latest value and time of every signal per vehicle, merged on ingest.
CREATE TABLE IF NOT EXISTS vehicle_latest (
    vehicle_id text PRIMARY KEY REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    ts         timestamptz NOT NULL,
    signals    jsonb       NOT NULL
);

-- Payloads that could not be accepted, kept whole with the reason. Nothing is dropped silently.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text        NOT NULL,
    vehicle_id  text,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    payload     bytea       NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received_idx ON dead_letters (received_at);
CREATE INDEX IF NOT EXISTS dead_letters_reason_idx ON dead_letters (reason);
