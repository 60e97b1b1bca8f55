-- The newest status message of each vehicle (contract.status): connected or not, and the edge
-- agent's check-in (campaign and agent version, queue depth, dropped data) kept whole.
CREATE TABLE IF NOT EXISTS vehicle_status (
    vehicle_id  text        PRIMARY KEY,
    state       text        NOT NULL CHECK (state IN ('online', 'offline')),
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    reported_at timestamptz NOT NULL
);
