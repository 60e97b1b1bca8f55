-- Owner notifications about a remedy come in stages (remedies.notifications.facts, docs/notifications.md):
-- `remedy` tells what will be done (a booked visit, a scheduled patch); after an OTA update's
-- result, `update_installed` or `update_rolled_back` tells what was done (UNECE R156: the notices
-- shown to the user before and after an update). Still one notification per (vehicle, alarm,
-- remedy) and stage, whatever the retries.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS stage text NOT NULL DEFAULT 'remedy'
    CHECK (stage IN ('remedy', 'update_installed', 'update_rolled_back'));
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_once;
ALTER TABLE notifications ADD CONSTRAINT notifications_once UNIQUE (vehicle_id, alarm_id, remedy_id, stage);
