-- Privacy (package `api.privacy`, docs/privacy.md): the record of erasure requests, and the
-- retention of each data class that `fleet maintain` enforces beyond raw telemetry (0003).

-- One row per erasure carried out. The owner is kept only as a SHA-256 of their id: the record
-- proves an erasure happened without naming anyone.
CREATE TABLE IF NOT EXISTS erasures (
    erasure_id   bigserial   PRIMARY KEY,
    owner_ref    text        NOT NULL,
    requested_by text        NOT NULL,
    reason       text        NOT NULL DEFAULT '',
    report       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    done_at      timestamptz NOT NULL DEFAULT now()
);

-- Retention per data class (PostgreSQL intervals; change with UPDATE fleet_meta).
INSERT INTO fleet_meta (key, value) VALUES
    ('retention_dead_letters', '30 days'),
    ('retention_notification_texts', '365 days'),
    ('retention_hazard_evidence', '365 days'),
    ('retention_trips', '2 years')
ON CONFLICT (key) DO NOTHING;
