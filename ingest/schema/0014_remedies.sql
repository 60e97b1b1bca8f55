-- Remedies (package `remedies`): what is done about each alarm, OTA campaigns that patch software,
-- and shop-visit bookings. Every decision and change of state is kept with its reason and actor.

-- One remedy per alarm (the engine is idempotent: a rerun finds the row and adds nothing).
CREATE TABLE IF NOT EXISTS remedies (
    remedy_id   bigserial PRIMARY KEY,
    alarm_id    bigint      NOT NULL UNIQUE REFERENCES alarms (alarm_id) ON DELETE CASCADE,
    vehicle_id  text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    fault       text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('ota_patch', 'shop_visit', 'none')),
    status      text        NOT NULL CHECK (status IN (
        'none', 'waiting', 'proposed', 'scheduled', 'in_progress', 'done', 'failed', 'cancelled', 'resolved'
    )),
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    rule        text        NOT NULL DEFAULT '',  -- the catalogue entry that decided
    reason      text        NOT NULL,
    campaign_id bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS remedies_vehicle_idx ON remedies (vehicle_id, created_at DESC);
CREATE INDEX IF NOT EXISTS remedies_open_idx ON remedies (kind, status)
    WHERE status IN ('waiting', 'proposed', 'scheduled', 'in_progress');

CREATE TABLE IF NOT EXISTS remedy_history (
    remedy_id bigint      NOT NULL REFERENCES remedies (remedy_id) ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    status    text        NOT NULL,
    reason    text        NOT NULL,
    actor     text        NOT NULL DEFAULT 'engine',
    details   jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS remedy_history_idx ON remedy_history (remedy_id, at);

-- OTA campaigns (hawkBit's rollout model): one open campaign per (ECU, from, to) version triple.
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id       bigserial PRIMARY KEY,
    name              text        NOT NULL,
    ecu               text        NOT NULL,
    from_version      text,
    to_version        text        NOT NULL,
    target_filter     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status            text        NOT NULL CHECK (status IN (
        'proposed', 'approved', 'running', 'paused', 'finished', 'cancelled'
    )),
    waves_pct         double precision[] NOT NULL DEFAULT '{1,10,50,100}',
    current_wave      integer     NOT NULL DEFAULT 0,
    success_threshold double precision NOT NULL DEFAULT 0.95,
    error_threshold   double precision NOT NULL DEFAULT 0.05,
    max_failures      integer     NOT NULL DEFAULT 20,
    soak_s            double precision NOT NULL DEFAULT 3600,
    urgency           text        NOT NULL DEFAULT 'soft' CHECK (urgency IN ('soft', 'forced', 'forced_after')),
    forced_after      timestamptz,
    maintenance_window jsonb,
    consent_required  boolean     NOT NULL DEFAULT true,
    approved_by       text,
    approved_at       timestamptz,
    reason            text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS campaigns_one_open_idx
    ON campaigns (ecu, coalesce(from_version, ''), to_version) WHERE status NOT IN ('finished', 'cancelled');

CREATE TABLE IF NOT EXISTS campaign_vehicles (
    campaign_id bigint      NOT NULL REFERENCES campaigns (campaign_id) ON DELETE CASCADE,
    vehicle_id  text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    remedy_id   bigint      REFERENCES remedies (remedy_id) ON DELETE SET NULL,
    wave        integer,    -- assigned at random when the campaign starts (or when it joins)
    state       text        NOT NULL DEFAULT 'pending' CHECK (state IN (
        'pending', 'offered', 'downloading', 'installed', 'committed', 'failed', 'rolled_back', 'excluded'
    )),
    offered_at   timestamptz,
    committed_at timestamptz,  -- when the vehicle's report said committed: the soak starts
    reason       text        NOT NULL DEFAULT '',
    failure_accepted boolean NOT NULL DEFAULT false,  -- a person resumed the campaign past this failure
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, vehicle_id)
);
CREATE INDEX IF NOT EXISTS campaign_vehicles_wave_idx ON campaign_vehicles (campaign_id, wave, state);

CREATE TABLE IF NOT EXISTS campaign_history (
    campaign_id bigint      NOT NULL REFERENCES campaigns (campaign_id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    status      text        NOT NULL,
    reason      text        NOT NULL,
    actor       text        NOT NULL DEFAULT 'engine'
);

-- Shop-visit bookings: one open booking per remedy; a slot of a centre holds one booking.
CREATE TABLE IF NOT EXISTS bookings (
    booking_id        bigserial PRIMARY KEY,
    remedy_id         bigint      NOT NULL REFERENCES remedies (remedy_id) ON DELETE CASCADE,
    vehicle_id        text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    service_centre_id text        NOT NULL REFERENCES service_centres (service_centre_id),
    skill             text        NOT NULL,
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    deadline          timestamptz NOT NULL,
    late              boolean     NOT NULL DEFAULT false,  -- no centre could take it before the deadline
    distance_km       double precision,
    status            text        NOT NULL CHECK (status IN ('booked', 'completed', 'cancelled', 'no_show')),
    reason            text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE UNIQUE INDEX IF NOT EXISTS bookings_one_open_idx ON bookings (remedy_id) WHERE status = 'booked';
CREATE UNIQUE INDEX IF NOT EXISTS bookings_slot_idx ON bookings (service_centre_id, starts_at)
    WHERE status IN ('booked', 'completed');
CREATE INDEX IF NOT EXISTS bookings_centre_idx ON bookings (service_centre_id, starts_at);

CREATE TABLE IF NOT EXISTS booking_history (
    booking_id bigint      NOT NULL REFERENCES bookings (booking_id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    status     text        NOT NULL,
    starts_at  timestamptz NOT NULL,
    reason     text        NOT NULL,
    actor      text        NOT NULL DEFAULT 'engine'
);
