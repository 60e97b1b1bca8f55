-- API bearer tokens, stored as SHA-256 hashes only. role: admin | service_centre.
CREATE TABLE IF NOT EXISTS api_tokens (
    token_sha256      bytea PRIMARY KEY,
    name              text        NOT NULL,
    role              text        NOT NULL CHECK (role IN ('admin', 'service_centre')),
    service_centre_id text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz,
    CHECK ((role = 'service_centre') = (service_centre_id IS NOT NULL))
);
