-- Plain PostgreSQL: the 10-minute aggregate is a rollup table, refreshed incrementally by
-- fleet_refresh_10m() (called by fleet_maintain(), i.e. `fleet maintain` and ingest's maintenance
-- loop, and by the fleet queries before they read). Same columns as the TimescaleDB continuous
-- aggregate; buckets are date_bin('10 minutes', ts, epoch).
CREATE TABLE IF NOT EXISTS telemetry_10m (
    vehicle_id       text             NOT NULL,
    bucket           timestamptz      NOT NULL,
    n_rows           bigint           NOT NULL,
    speed_n          bigint           NOT NULL,
    speed_sum_kmh    double precision,
    latitude_ts      timestamptz,
    latitude_deg     double precision,
    longitude_ts     timestamptz,
    longitude_deg    double precision,
    fuel_level_ts    timestamptz,
    fuel_level_pct   real,
    traction_soc_ts  timestamptz,
    traction_soc_pct real,
    PRIMARY KEY (vehicle_id, bucket)
);
CREATE INDEX IF NOT EXISTS telemetry_10m_bucket_idx ON telemetry_10m (bucket);

-- Re-aggregate every bucket a pending range touches, from the raw rows, and take those pending
-- rows. Overlapping ranges of one vehicle are merged first, so each raw row is counted once.
-- Serialised by an advisory lock (a second caller waits, then finds nothing left to do). Returns
-- how many pending rows it took.
CREATE OR REPLACE FUNCTION fleet_refresh_10m() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    taken integer;
    vids text[];
    los timestamptz[];
    his timestamptz[];
BEGIN
    PERFORM pg_advisory_xact_lock(7366214);
    WITH claimed AS (
        DELETE FROM telemetry_10m_pending RETURNING vehicle_id, first_ts, last_ts
    ), ranges AS (
        SELECT vehicle_id,
               date_bin(INTERVAL '10 minutes', first_ts, TIMESTAMPTZ 'epoch') AS lo,
               date_bin(INTERVAL '10 minutes', last_ts, TIMESTAMPTZ 'epoch') + INTERVAL '10 minutes' AS hi
        FROM claimed
    ), ordered AS (
        SELECT vehicle_id, lo, hi,
               max(hi) OVER (PARTITION BY vehicle_id ORDER BY lo, hi
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
        FROM ranges
    ), islands AS (
        SELECT vehicle_id, lo, hi,
               sum(CASE WHEN reach IS NULL OR lo > reach THEN 1 ELSE 0 END)
                   OVER (PARTITION BY vehicle_id ORDER BY lo, hi) AS island
        FROM ordered
    ), merged AS (
        SELECT vehicle_id, min(lo) AS lo, max(hi) AS hi FROM islands GROUP BY vehicle_id, island
    )
    SELECT (SELECT count(*) FROM claimed), array_agg(vehicle_id), array_agg(lo), array_agg(hi)
    INTO taken, vids, los, his
    FROM merged;
    IF taken = 0 THEN
        RETURN 0;
    END IF;
    DELETE FROM telemetry_10m a
    USING unnest(vids, los, his) AS m(vehicle_id, lo, hi)
    WHERE a.vehicle_id = m.vehicle_id AND a.bucket >= m.lo AND a.bucket < m.hi;
    INSERT INTO telemetry_10m
    SELECT t.vehicle_id,
           date_bin(INTERVAL '10 minutes', t.ts, TIMESTAMPTZ 'epoch') AS bucket,
           count(*),
           count(t.speed_kmh),
           sum(t.speed_kmh::double precision),
           max(t.ts) FILTER (WHERE t.latitude_deg IS NOT NULL),
           (array_agg(t.latitude_deg ORDER BY t.ts DESC) FILTER (WHERE t.latitude_deg IS NOT NULL))[1],
           max(t.ts) FILTER (WHERE t.longitude_deg IS NOT NULL),
           (array_agg(t.longitude_deg ORDER BY t.ts DESC) FILTER (WHERE t.longitude_deg IS NOT NULL))[1],
           max(t.ts) FILTER (WHERE t.fuel_level_pct IS NOT NULL),
           (array_agg(t.fuel_level_pct ORDER BY t.ts DESC) FILTER (WHERE t.fuel_level_pct IS NOT NULL))[1],
           max(t.ts) FILTER (WHERE t.traction_soc_pct IS NOT NULL),
           (array_agg(t.traction_soc_pct ORDER BY t.ts DESC) FILTER (WHERE t.traction_soc_pct IS NOT NULL))[1]
    FROM unnest(vids, los, his) AS m(vehicle_id, lo, hi)
    JOIN telemetry t ON t.vehicle_id = m.vehicle_id AND t.ts >= m.lo AND t.ts < m.hi
    GROUP BY 1, 2;
    RETURN taken;
END $$;

-- fleet_maintain() of 0003, plus: the 10-minute aggregate refreshed, and its rows past raw
-- retention dropped (they hold positions, so they are kept no longer than the raw rows).
CREATE OR REPLACE FUNCTION fleet_maintain() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    created integer;
    dropped integer := 0;
    pruned bigint;
    refreshed integer;
    keep_raw interval := (SELECT value FROM fleet_meta WHERE key = 'retention_raw')::interval;
    part record;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7366212) THEN
        RETURN 'skipped: another session is maintaining';
    END IF;
    created := fleet_ensure_partitions(current_date - 2, current_date + 7);
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'telemetry'::regclass AND c.relname ~ '^telemetry_p[0-9]{8}$'
          AND to_date(substr(c.relname, 12), 'YYYYMMDD') + 1 < (now() - keep_raw)::date
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    -- Very late rows outside every daily partition wait in the default partition; same retention.
    DELETE FROM telemetry_default WHERE ts < now() - keep_raw;
    IF (SELECT ispopulated FROM pg_matviews WHERE matviewname = 'telemetry_hourly') THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY telemetry_hourly;
        REFRESH MATERIALIZED VIEW CONCURRENTLY telemetry_daily;
    ELSE
        REFRESH MATERIALIZED VIEW telemetry_hourly;
        REFRESH MATERIALIZED VIEW telemetry_daily;
    END IF;
    refreshed := fleet_refresh_10m();
    DELETE FROM telemetry_10m WHERE bucket < now() - keep_raw;
    DELETE FROM ingest_batches
    WHERE last_ts < now() - (SELECT value FROM fleet_meta WHERE key = 'retention_ledger')::interval;
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN format('native: %s partitions created, %s dropped, aggregates refreshed (10-minute: %s '
                  'pending ranges), ledger pruned %s', created, dropped, refreshed, pruned);
END $$;
