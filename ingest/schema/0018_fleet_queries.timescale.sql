-- TimescaleDB: the 10-minute aggregate is a continuous aggregate. time_bucket's default origin
-- (2000-01-03 00:00 UTC) is a multiple of 600 s since the Unix epoch, so its buckets are the
-- epoch-aligned ones. Materialized only: readers never scan raw rows; fleet queries first refresh
-- the buckets that `telemetry_10m_pending` names (api/fleet_queries/refresh.py), and the policy
-- below keeps it current between queries. TimescaleDB's own invalidation log re-aggregates the
-- buckets late rows touch on each refresh.
CREATE MATERIALIZED VIEW telemetry_10m WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '10 minutes', ts) AS bucket,
       vehicle_id,
       count(*)                                                        AS n_rows,
       count(speed_kmh)                                                AS speed_n,
       sum(speed_kmh::double precision)                                AS speed_sum_kmh,
       max(ts) FILTER (WHERE latitude_deg IS NOT NULL)                 AS latitude_ts,
       last(latitude_deg, ts) FILTER (WHERE latitude_deg IS NOT NULL)  AS latitude_deg,
       max(ts) FILTER (WHERE longitude_deg IS NOT NULL)                AS longitude_ts,
       last(longitude_deg, ts) FILTER (WHERE longitude_deg IS NOT NULL) AS longitude_deg,
       max(ts) FILTER (WHERE fuel_level_pct IS NOT NULL)               AS fuel_level_ts,
       last(fuel_level_pct, ts) FILTER (WHERE fuel_level_pct IS NOT NULL) AS fuel_level_pct,
       max(ts) FILTER (WHERE traction_soc_pct IS NOT NULL)             AS traction_soc_ts,
       last(traction_soc_pct, ts) FILTER (WHERE traction_soc_pct IS NOT NULL) AS traction_soc_pct
FROM telemetry
GROUP BY bucket, vehicle_id
WITH NO DATA;

SELECT add_continuous_aggregate_policy('telemetry_10m', start_offset => INTERVAL '32 days',
    end_offset => INTERVAL '10 minutes', schedule_interval => INTERVAL '5 minutes', if_not_exists => TRUE);
SELECT add_retention_policy('telemetry_10m', INTERVAL '180 days', if_not_exists => TRUE);
