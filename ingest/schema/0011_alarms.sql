-- Alarms (package `analytics`): what the detectors found, one active alarm per (vehicle, fault),
-- with every change of state kept (ThingsBoard's lifecycle: severity only escalates while active;
-- cleared and acknowledged are independent). Times named `*_at` without `recorded` are data times
-- (the vehicle's clock of the rows a finding rests on); `recorded_at` is when the job wrote it.
CREATE TABLE IF NOT EXISTS alarms (
    alarm_id           bigserial PRIMARY KEY,
    vehicle_id         text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    fault              text        NOT NULL,
    severity           text        NOT NULL
        CHECK (severity IN ('CRITICAL', 'MAJOR', 'MINOR', 'WARNING', 'INDETERMINATE')),
    raised_at          timestamptz NOT NULL,
    since_at           timestamptz,
    updated_at         timestamptz NOT NULL,
    cleared_at         timestamptz,
    acknowledged_at    timestamptz,
    acknowledged_by    text,
    explanation        text        NOT NULL DEFAULT '',
    evidence           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    thresholds_version text        NOT NULL DEFAULT '',
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (cleared_at IS NULL OR cleared_at >= raised_at),
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS alarms_one_active_idx ON alarms (vehicle_id, fault) WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS alarms_vehicle_idx ON alarms (vehicle_id, fault, raised_at DESC);
CREATE INDEX IF NOT EXISTS alarms_active_idx ON alarms (severity) WHERE cleared_at IS NULL;

CREATE TABLE IF NOT EXISTS alarm_history (
    alarm_id    bigint      NOT NULL REFERENCES alarms (alarm_id) ON DELETE CASCADE,
    change      text        NOT NULL CHECK (change IN ('raised', 'escalated', 'cleared', 'acknowledged')),
    at          timestamptz NOT NULL,
    severity    text        NOT NULL,
    cause       text        NOT NULL,
    evidence    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alarm_id, change, at)
);

-- Each analytics job's watermark on arrival (`ingest_batches.received_at`, `dtc_reports.received_at`):
-- data that arrives late is analysed when it arrives.
CREATE TABLE IF NOT EXISTS analytics_watermarks (
    job         text        PRIMARY KEY,
    received_at timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Fleet-level software findings: a DTC whose rate depends on an ECU's software version.
CREATE TABLE IF NOT EXISTS software_issues (
    ecu              text        NOT NULL,
    software_version text        NOT NULL,
    code             text        NOT NULL,
    cure_version     text,
    vehicles_on      integer     NOT NULL,
    reporting_on     integer     NOT NULL,
    vehicles_off     integer     NOT NULL,
    reporting_off    integer     NOT NULL,
    p_value          double precision NOT NULL,
    found_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ecu, software_version, code)
);
CREATE INDEX IF NOT EXISTS dtc_reports_received_brin ON dtc_reports USING brin (received_at);
-- (ingest_batches has a BRIN index on received_at in native mode; add it in both, it is small.)
CREATE INDEX IF NOT EXISTS ingest_batches_received_brin ON ingest_batches USING brin (received_at);
