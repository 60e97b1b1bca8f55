-- Driving scores (package `analytics`, docs/driving-score.md). Migration 0012 is the hazard map's.
--
-- The road network the analytics know (`fleet roads import FILE.geojson`): one row per polyline,
-- keyed by a hash of its coordinates, so importing the same file again changes nothing. Limits in
-- km/h, NULL when unknown. The bounding box lets a job load only the roads near its vehicles.
CREATE TABLE IF NOT EXISTS road_segments (
    segment_key  text PRIMARY KEY,
    road_class   text NOT NULL DEFAULT '',
    name         text NOT NULL DEFAULT '',
    maxspeed_kmh double precision CHECK (maxspeed_kmh IS NULL OR maxspeed_kmh > 0),
    oneway       boolean NOT NULL DEFAULT false,
    lon          double precision[] NOT NULL,
    lat          double precision[] NOT NULL,
    min_lat      double precision NOT NULL,
    max_lat      double precision NOT NULL,
    min_lon      double precision NOT NULL,
    max_lon      double precision NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(lon) = cardinality(lat) AND cardinality(lon) >= 2)
);
CREATE INDEX IF NOT EXISTS road_segments_bbox_idx ON road_segments (min_lat, max_lat);

-- Trips and their scores, one row per (vehicle, start of the trip), rewritten by the analysis job
-- while the trip grows or late data changes it. Times are the vehicle's clock; `components` holds
-- every measured quantity and each penalty of the score.
CREATE TABLE IF NOT EXISTS trips (
    vehicle_id          text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz NOT NULL,
    distance_km         double precision NOT NULL CHECK (distance_km >= 0),
    duration_s          double precision NOT NULL CHECK (duration_s >= 0),
    harsh_brakes        integer     NOT NULL CHECK (harsh_brakes >= 0),
    harsh_accelerations integer     NOT NULL CHECK (harsh_accelerations >= 0),
    harsh_corners       integer     NOT NULL CHECK (harsh_corners >= 0),
    speeding_share      double precision,  -- NULL: no known limit on the trip
    night_share         double precision NOT NULL,
    score               double precision NOT NULL CHECK (score BETWEEN 0 AND 100),
    components          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    thresholds_version  text        NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle_id, started_at),
    CHECK (ended_at >= started_at)
);
