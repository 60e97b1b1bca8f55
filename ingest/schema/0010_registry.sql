-- The fleet registry (package `registry`): who and what each vehicle is. Fleets, vehicle models
-- with the parameters detectors need, service centres, and owners. Owners hold the only personal
-- data in the database: every other table refers to them by id, so erasing an owner is one DELETE.
-- The software each vehicle reports per ECU (its check-in) is kept apart from the edge agent's own
-- version, and every change of it is kept in a history for audit (UNECE R156).
CREATE TABLE IF NOT EXISTS fleets (
    fleet_id   text PRIMARY KEY,
    name       text NOT NULL,
    operator   text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS vehicle_models (
    model_id         text PRIMARY KEY,
    make             text NOT NULL,
    model            text NOT NULL,
    powertrain       text NOT NULL CHECK (powertrain IN ('ice', 'hev', 'phev', 'bev', 'unknown')),
    cylinders        smallint NOT NULL DEFAULT 0 CHECK (cylinders BETWEEN 0 AND 16),
    tyre_placard_kpa double precision CHECK (tyre_placard_kpa > 0),
    tank_l           double precision CHECK (tank_l >= 0),
    battery_kwh      double precision CHECK (battery_kwh >= 0),
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,  -- further detector parameters, by name
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS service_centres (
    service_centre_id text PRIMARY KEY,
    name              text NOT NULL,
    lat               double precision CHECK (lat BETWEEN -90 AND 90),
    lon               double precision CHECK (lon BETWEEN -180 AND 180),
    skills            text[] NOT NULL DEFAULT '{}',
    capacity_per_day  integer NOT NULL DEFAULT 0 CHECK (capacity_per_day >= 0),
    opening_hours     jsonb NOT NULL DEFAULT '{}'::jsonb,  -- {"mon": [["08:00", "18:00"]], ...}
    time_zone         text NOT NULL DEFAULT 'UTC',
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Personal data, in this table only.
CREATE TABLE IF NOT EXISTS owners (
    owner_id          text PRIMARY KEY,
    name              text NOT NULL,
    email             text,
    phone             text,
    consent_email     boolean NOT NULL DEFAULT false,
    consent_sms       boolean NOT NULL DEFAULT false,
    consent_in_car    boolean NOT NULL DEFAULT false,
    time_zone         text NOT NULL DEFAULT 'UTC',
    quiet_hours_start time,
    quiet_hours_end   time,
    language          text NOT NULL DEFAULT 'en',
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT consent_email OR email IS NOT NULL),
    CHECK (NOT consent_sms OR phone IS NOT NULL),
    CHECK ((quiet_hours_start IS NULL) = (quiet_hours_end IS NULL))
);

-- Existing vehicles keep their data: a model or centre named before the registry existed becomes
-- a registry row of that id (powertrain unknown, no position), so that the references can be keys.
ALTER TABLE vehicles RENAME COLUMN model TO model_id;
INSERT INTO vehicle_models (model_id, make, model, powertrain)
SELECT DISTINCT model_id, '', model_id, 'unknown' FROM vehicles WHERE model_id IS NOT NULL
ON CONFLICT DO NOTHING;
INSERT INTO service_centres (service_centre_id, name)
SELECT DISTINCT service_centre_id, service_centre_id FROM vehicles WHERE service_centre_id IS NOT NULL
ON CONFLICT DO NOTHING;

ALTER TABLE vehicles
    ADD COLUMN IF NOT EXISTS vin        text UNIQUE,
    ADD COLUMN IF NOT EXISTS fleet_id   text REFERENCES fleets (fleet_id),
    ADD COLUMN IF NOT EXISTS owner_id   text REFERENCES owners (owner_id) ON DELETE SET NULL,
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT vehicles_model_fk FOREIGN KEY (model_id) REFERENCES vehicle_models (model_id),
    ADD CONSTRAINT vehicles_service_centre_fk
        FOREIGN KEY (service_centre_id) REFERENCES service_centres (service_centre_id);
CREATE INDEX IF NOT EXISTS vehicles_fleet_idx ON vehicles (fleet_id);
CREATE INDEX IF NOT EXISTS vehicles_owner_idx ON vehicles (owner_id);
CREATE INDEX IF NOT EXISTS vehicles_model_idx ON vehicles (model_id);

-- The software each ECU runs, as the vehicle last reported it, and every change of it.
CREATE TABLE IF NOT EXISTS vehicle_software (
    vehicle_id       text NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    ecu              text NOT NULL,
    software_version text NOT NULL,
    hardware_id      text NOT NULL DEFAULT '',
    reported_at      timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, ecu)
);
CREATE INDEX IF NOT EXISTS vehicle_software_version_idx ON vehicle_software (ecu, software_version);

CREATE TABLE IF NOT EXISTS software_history (
    vehicle_id       text NOT NULL,
    ecu              text NOT NULL,
    software_version text NOT NULL,
    hardware_id      text NOT NULL DEFAULT '',
    reported_at      timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, ecu, reported_at)
);

-- One meaning per field. `agent_version` is the edge agent's own package version; the vehicle's
-- ECU software travels as an inventory (`software`). DTC messages of schema v1 had one ambiguous
-- `firmware_version`; what they sent is kept as sent, under a name that says so.
ALTER TABLE vehicle_status
    ADD COLUMN IF NOT EXISTS agent_version text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS software_reported_at timestamptz;  -- the newest inventory applied
UPDATE vehicle_status SET agent_version = coalesce(details->>'agent_version', '') WHERE agent_version = '';

DROP VIEW IF EXISTS vehicle_dtc_current;
ALTER TABLE dtc_reports RENAME COLUMN firmware_version TO v1_firmware_version;
ALTER TABLE dtc_reports
    ADD COLUMN IF NOT EXISTS agent_version text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS software jsonb NOT NULL DEFAULT '{}'::jsonb;  -- {"ECM": "4.2.1", ...}

-- The codes each vehicle reports now: its newest report (an empty set means cleared).
CREATE VIEW vehicle_dtc_current AS
SELECT DISTINCT ON (vehicle_id) vehicle_id, ts, codes, agent_version, software
FROM dtc_reports
ORDER BY vehicle_id, ts DESC;
