-- Owner notifications (package `remedies.notifications`, docs/notifications.md): the outbox.
-- One notification per (vehicle, alarm, remedy), whatever the retries and restarts; one delivery
-- per channel with its state; and every change of state with its time, for the single customer
-- view. No personal data here: owners are referred to by id, and addresses are read from `owners`
-- when a message goes out, so erasing an owner stays one DELETE (their ids here become NULL).
CREATE TABLE IF NOT EXISTS notifications (
    notification_id bigserial   PRIMARY KEY,
    vehicle_id      text        NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    alarm_id        bigint      NOT NULL REFERENCES alarms (alarm_id) ON DELETE CASCADE,
    remedy_id       bigint      NOT NULL,  -- remedies.remedy_id (migration 0014); no foreign key, by design
    critical        boolean     NOT NULL DEFAULT false,  -- a safety message: the rate limit does not apply
    facts           jsonb       NOT NULL,  -- what the message is written from (remedies.notifications.facts)
    expires_at      timestamptz,           -- nothing goes out from then on (a visit's start)
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_once UNIQUE (vehicle_id, alarm_id, remedy_id)
);
CREATE INDEX IF NOT EXISTS notifications_vehicle_idx ON notifications (vehicle_id, created_at DESC);

CREATE TABLE IF NOT EXISTS notification_deliveries (
    notification_id bigint      NOT NULL REFERENCES notifications (notification_id) ON DELETE CASCADE,
    channel         text        NOT NULL CHECK (channel IN ('in_car', 'email', 'webhook')),
    state           text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'held', 'sent', 'suppressed', 'failed')),
    reason          text,         -- held or suppressed: why (remedies.notifications.policy.Reason)
    hold_until      timestamptz,  -- held: when it is decided again; NULL: when the vehicle is parked
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- failed sends, in total
    last_error      text,
    retry_after     timestamptz,  -- failed: when a sweep tries again; NULL: refused for good
    owner_id        text        REFERENCES owners (owner_id) ON DELETE SET NULL,  -- decided for
    sent_at         timestamptz,
    message         jsonb,        -- sent: what the owner read (subject and parts; no address)
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, channel),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
    CHECK (state NOT IN ('held', 'suppressed') OR reason IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS notification_deliveries_open_idx
    ON notification_deliveries (state, hold_until) WHERE state IN ('pending', 'held', 'failed');
CREATE INDEX IF NOT EXISTS notification_deliveries_owner_sent_idx
    ON notification_deliveries (owner_id, sent_at) WHERE state = 'sent';

CREATE TABLE IF NOT EXISTS notification_events (
    event_id        bigserial   PRIMARY KEY,
    notification_id bigint      NOT NULL REFERENCES notifications (notification_id) ON DELETE CASCADE,
    channel         text,         -- NULL: the notification as a whole
    event           text        NOT NULL
        CHECK (event IN ('queued', 'held', 'sent', 'suppressed', 'attempt_failed', 'failed', 'retried')),
    reason          text,
    detail          text        NOT NULL DEFAULT '',  -- an error, with any address taken out
    owner_id        text        REFERENCES owners (owner_id) ON DELETE SET NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS notification_events_notification_idx ON notification_events (notification_id, event_id);
CREATE INDEX IF NOT EXISTS notification_events_owner_idx ON notification_events (owner_id, at);
