-- Plain PostgreSQL: the same logical objects as TimescaleDB mode. Daily partitions (0001) stand in
-- for chunks, BRIN indexes for cheap time-range scans, and materialized views refreshed by
-- fleet_maintain() stand in for continuous aggregates; retention drops whole daily partitions.
CREATE INDEX IF NOT EXISTS ingest_batches_received_brin ON ingest_batches USING brin (received_at);

CREATE MATERIALIZED VIEW telemetry_hourly AS
SELECT date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
       vehicle_id,
       count(*)                                 AS n_rows,
       avg(speed_kmh)                           AS speed_avg_kmh,
       max(speed_kmh)                           AS speed_max_kmh,
       max(engine_speed_rpm)                    AS engine_speed_max_rpm,
       max(coolant_temp_c)                      AS coolant_temp_max_c,
       min(battery_12v_v)                       AS battery_12v_min_v,
       min(traction_soc_pct)                    AS traction_soc_min_pct,
       min(fuel_level_pct)                      AS fuel_level_min_pct,
       least(min(tire_fl_kpa), min(tire_fr_kpa), min(tire_rl_kpa), min(tire_rr_kpa)) AS tire_min_kpa,
       min(odometer_km)                         AS odometer_min_km,
       max(odometer_km)                         AS odometer_max_km,
       min(accel_long_ms2)                      AS accel_long_min_ms2,
       count(*) FILTER (WHERE abs_engaged)      AS abs_engaged_rows
FROM telemetry
GROUP BY 1, 2
WITH NO DATA;
CREATE UNIQUE INDEX telemetry_hourly_key ON telemetry_hourly (vehicle_id, bucket);

CREATE MATERIALIZED VIEW telemetry_daily AS
SELECT date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
       vehicle_id,
       count(*)                                 AS n_rows,
       avg(speed_kmh)                           AS speed_avg_kmh,
       max(speed_kmh)                           AS speed_max_kmh,
       max(engine_speed_rpm)                    AS engine_speed_max_rpm,
       max(coolant_temp_c)                      AS coolant_temp_max_c,
       min(battery_12v_v)                       AS battery_12v_min_v,
       min(traction_soc_pct)                    AS traction_soc_min_pct,
       min(fuel_level_pct)                      AS fuel_level_min_pct,
       least(min(tire_fl_kpa), min(tire_fr_kpa), min(tire_rl_kpa), min(tire_rr_kpa)) AS tire_min_kpa,
       min(odometer_km)                         AS odometer_min_km,
       max(odometer_km)                         AS odometer_max_km,
       min(accel_long_ms2)                      AS accel_long_min_ms2,
       count(*) FILTER (WHERE abs_engaged)      AS abs_engaged_rows
FROM telemetry
GROUP BY 1, 2
WITH NO DATA;
CREATE UNIQUE INDEX telemetry_daily_key ON telemetry_daily (vehicle_id, bucket);

-- Partitions ahead, aggregates refreshed (concurrently once populated, so readers never block),
-- partitions past raw retention dropped, ledger pruned. Returns a summary. Called by ingest every
-- few minutes and by `fleet maintain`; several callers at once are safe: only one does the work.
CREATE OR REPLACE FUNCTION fleet_maintain() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    created integer;
    dropped integer := 0;
    pruned bigint;
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
    DELETE FROM ingest_batches
    WHERE last_ts < now() - (SELECT value FROM fleet_meta WHERE key = 'retention_ledger')::interval;
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN format('native: %s partitions created, %s dropped, aggregates refreshed, ledger pruned %s',
                  created, dropped, pruned);
END $$;
