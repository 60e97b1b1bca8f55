-- The road-hazard map (package `analytics.hazards`, docs/hazards.md). Nothing here names a vehicle
-- or keeps a trajectory: an event carries a keyed pseudonym that links one vehicle's events only
-- within one coarse area (H3 resolution 6, about 36 km²), so that distinct vehicles can be counted;
-- a pass carries a key of its own visit, so that re-running the job counts it once; and event
-- positions are coarsened to an H3 cell of resolution 13 (about 44 m²). An owner's erasure leaves
-- these tables as they are: they hold nothing personal. Times are data times (the vehicles' clocks).
CREATE TABLE IF NOT EXISTS hazard_secrets (
    name   text PRIMARY KEY,
    secret bytea NOT NULL
);
-- The pseudonym key: random per database (gen_random_uuid draws from a strong random source).
INSERT INTO hazard_secrets (name, secret)
SELECT 'pseudonym', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
ON CONFLICT (name) DO NOTHING;

CREATE TABLE IF NOT EXISTS hazard_sites (
    site_id            bigserial PRIMARY KEY,
    kind               text             NOT NULL CHECK (kind IN ('pothole', 'slippery', 'junction')),
    lat                double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon                double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    axis_deg           double precision CHECK (axis_deg >= 0 AND axis_deg < 180),
    half_length_m      double precision NOT NULL DEFAULT 0 CHECK (half_length_m >= 0),
    state              text             NOT NULL DEFAULT 'candidate'
        CHECK (state IN ('candidate', 'confirmed', 'retracted', 'expired')),
    events             integer          NOT NULL DEFAULT 0,
    vehicles           integer          NOT NULL DEFAULT 0,
    passes             integer          NOT NULL DEFAULT 0,
    event_passes       integer          NOT NULL DEFAULT 0,
    clean_passes       integer          NOT NULL DEFAULT 0,
    rate_lower         double precision NOT NULL DEFAULT 0,
    confidence         double precision NOT NULL DEFAULT 0,
    first_event_at     timestamptz,
    last_event_at      timestamptz,
    -- When it was on the map, in data time: [[from_ns, until_ns or null], ...].
    reported           jsonb            NOT NULL DEFAULT '[]'::jsonb,
    thresholds_version text             NOT NULL DEFAULT '',
    updated_at         timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS hazard_sites_live_idx ON hazard_sites (kind) WHERE state <> 'expired';

CREATE TABLE IF NOT EXISTS hazard_events (
    vehicle_key bigint      NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('pothole', 'slippery', 'junction')),
    ts          timestamptz NOT NULL,
    site_id     bigint      NOT NULL REFERENCES hazard_sites (site_id) ON DELETE CASCADE,
    cell        bigint      NOT NULL,
    heading_deg real,
    speed_ms    real,
    magnitude   real,
    PRIMARY KEY (vehicle_key, kind, ts)
);
CREATE INDEX IF NOT EXISTS hazard_events_site_idx ON hazard_events (site_id, ts);

CREATE TABLE IF NOT EXISTS hazard_passes (
    site_id    bigint      NOT NULL REFERENCES hazard_sites (site_id) ON DELETE CASCADE,
    visit_key  bigint      NOT NULL,
    ts         timestamptz NOT NULL,
    with_event boolean     NOT NULL,
    PRIMARY KEY (site_id, visit_key)
);
CREATE INDEX IF NOT EXISTS hazard_passes_site_idx ON hazard_passes (site_id, ts);
