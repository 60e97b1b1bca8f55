-- A digest of each dead letter's bytes. Ingest uses it to store a retained replay (the broker's
-- stored copy, resent at every subscribe) only once: a malformed retained status would otherwise be
-- dead-lettered again at every ingest restart. Also handy to group a flood of identical junk.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS payload_sha256 bytea;
UPDATE dead_letters SET payload_sha256 = sha256(payload) WHERE payload_sha256 IS NULL;
CREATE INDEX IF NOT EXISTS dead_letters_digest_idx ON dead_letters (payload_sha256);
