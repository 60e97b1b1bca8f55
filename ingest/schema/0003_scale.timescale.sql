-- TimescaleDB: compression segmented by vehicle, retention and continuous-aggregate policies (run by
-- TimescaleDB's background workers), hourly and daily continuous aggregates.
ALTER TABLE telemetry SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'vehicle_id',
    timescaledb.compress_orderby = 'ts DESC'
);
SELECT add_compression_policy('telemetry', INTERVAL '7 days', if_not_exists => TRUE);
SELECT add_retention_policy('telemetry', INTERVAL '180 days', if_not_exists => TRUE);

-- Per vehicle per hour and per day. WITH NO DATA: creating with data cannot run in a transaction,
-- and the refresh policies fill them. The refresh window (32 days) covers ingest's accepted past
-- window, so late data is reflected; it stays inside raw retention, so dropped chunks never erase
-- aggregates.
CREATE MATERIALIZED VIEW telemetry_hourly WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
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
GROUP BY bucket, vehicle_id
WITH NO DATA;

CREATE MATERIALIZED VIEW telemetry_daily WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 day', ts) AS bucket,
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
GROUP BY bucket, vehicle_id
WITH NO DATA;

SELECT add_continuous_aggregate_policy('telemetry_hourly', start_offset => INTERVAL '32 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => TRUE);
SELECT add_continuous_aggregate_policy('telemetry_daily', start_offset => INTERVAL '32 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => TRUE);
SELECT add_retention_policy('telemetry_hourly', INTERVAL '2 years', if_not_exists => TRUE);

-- Maintenance that TimescaleDB's jobs do not cover: pruning the batch ledger. Returns a summary.
-- Safe to call from several ingest workers at once: only one does the work.
CREATE OR REPLACE FUNCTION fleet_maintain() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    pruned bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7366212) THEN
        RETURN 'skipped: another session is maintaining';
    END IF;
    DELETE FROM ingest_batches
    WHERE last_ts < now() - (SELECT value FROM fleet_meta WHERE key = 'retention_ledger')::interval;
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN format('timescale: ledger pruned %s', pruned);
END $$;
