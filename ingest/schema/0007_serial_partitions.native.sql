-- Plain PostgreSQL: fleet_ensure_partitions() (0001) serialised by a transaction-level advisory
-- lock. Without it, ingest workers starting together on a fresh database all saw a day's
-- partition missing and all ran CREATE TABLE for it; all but one failed with a unique violation
-- on pg_type (or "relation already exists") and crashed at start-up. Now a second caller waits
-- for the first to commit, then finds the partitions there and creates none. The lock is released
-- at the end of the caller's transaction; fleet_maintain() (key 7366212) calls this function, so
-- it takes 7366212 then this key, and nothing takes them in the other order.
CREATE OR REPLACE FUNCTION fleet_ensure_partitions(from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date := from_day;
    created integer := 0;
    part text;
BEGIN
    -- Before the first look at the catalogue, so every check below sees the winner's commit.
    PERFORM pg_advisory_xact_lock(7366213);
    WHILE d <= to_day LOOP
        part := format('telemetry_p%s', to_char(d, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE telemetry INCLUDING DEFAULTS)', part);
            EXECUTE format(
                'WITH moved AS (DELETE FROM telemetry_default WHERE ts >= %L::timestamptz '
                'AND ts < %L::timestamptz RETURNING *) INSERT INTO %I SELECT * FROM moved',
                d::timestamptz, (d + 1)::timestamptz, part);
            EXECUTE format('ALTER TABLE telemetry ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                part, d::timestamptz, (d + 1)::timestamptz);
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END $$;
