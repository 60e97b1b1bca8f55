-- An API token's name identifies one active token, so `fleet token revoke NAME` and the name shown
-- for a caller mean exactly one token. Revoked tokens keep their names (history), so a name can be
-- reused once its token is revoked: that is how `fleet token create NAME --replace` rotates one.
--
-- Existing data is kept: if several active tokens share a name, the oldest keeps it and each newer
-- one is renamed NAME~2, NAME~3, ... (first free suffix). Renamed tokens keep working; a WARNING
-- names each rename (`fleet migrate` logs it) and `fleet token list` shows them.
DO $$
DECLARE
    dup record;
    candidate text;
    n integer;
BEGIN
    FOR dup IN
        SELECT token_sha256, name FROM (
            SELECT token_sha256, name,
                   row_number() OVER (PARTITION BY name ORDER BY created_at, token_sha256) AS rank
            FROM api_tokens WHERE revoked_at IS NULL
        ) ranked
        WHERE rank > 1 ORDER BY name, rank
    LOOP
        n := 2;
        LOOP
            candidate := dup.name || '~' || n;
            EXIT WHEN NOT EXISTS (
                SELECT 1 FROM api_tokens WHERE name = candidate AND revoked_at IS NULL);
            n := n + 1;
        END LOOP;
        UPDATE api_tokens SET name = candidate WHERE token_sha256 = dup.token_sha256;
        RAISE WARNING 'API token name % was shared by several active tokens: a newer one is now called %',
            quote_literal(dup.name), quote_literal(candidate);
    END LOOP;
END $$;

CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_active_name_key ON api_tokens (name) WHERE revoked_at IS NULL;
