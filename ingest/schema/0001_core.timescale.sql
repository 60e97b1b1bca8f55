-- TimescaleDB: telemetry is a hypertable with daily chunks.
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
);
SELECT create_hypertable('telemetry', 'ts', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS telemetry_vehicle_ts_idx ON telemetry (vehicle_id, ts DESC);

-- Chunks are created by TimescaleDB itself; the function exists so callers need not know the mode.
CREATE OR REPLACE FUNCTION fleet_ensure_partitions(from_day date, to_day date) RETURNS integer
LANGUAGE sql AS $$ SELECT 0 $$;
