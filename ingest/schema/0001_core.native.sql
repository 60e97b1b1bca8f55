-- Plain PostgreSQL: telemetry partitioned by day with native range partitioning.
CREATE TABLE IF NOT EXISTS telemetry (
    ts               timestamptz NOT NULL,
    vehicle_id       text        NOT NULL,
    speed_kmh        real,
    latitude_deg     double precision,
    longitude_deg    double precision,
    heading_deg      real,
    engine_speed_rpm real,
    coolant_temp_c   real,
    battery_12v_v    real,
    traction_soc_pct real,
    tire_fl_kpa      real,
    tire_fr_kpa      real,
    tire_rl_kpa      real,
    tire_rr_kpa      real,
    odometer_km      double precision,
    accel_long_ms2   real,
    accel_lat_ms2    real,
    accel_vert_ms2   real,
    abs_engaged      boolean,
    tcs_engaged      boolean,
    fuel_level_pct   real
) PARTITION BY RANGE (ts);

-- Rows outside every daily partition (very late or far-future data) land here, never lost.
CREATE TABLE IF NOT EXISTS telemetry_default PARTITION OF telemetry DEFAULT;
CREATE INDEX IF NOT EXISTS telemetry_vehicle_ts_idx ON telemetry (vehicle_id, ts DESC);
CREATE INDEX IF NOT EXISTS telemetry_ts_brin ON telemetry USING brin (ts);

-- Create daily partitions covering [from_day, to_day]; rows already in the default partition for a
-- new day are moved into it. Returns how many partitions were created.
CREATE OR REPLACE FUNCTION fleet_ensure_partitions(from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date := from_day;
    created integer := 0;
    part text;
BEGIN
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
