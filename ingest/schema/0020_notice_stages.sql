-- Owner notifications about a remedy come in stages (remedies.notifications.facts, docs/notifications.md):
-- `remedy` tells what will be done (a booked visit, a scheduled patch); after an OTA update's
-- result, `update_installed` or `update_rolled_back` tells what was done (UNECE R156: the notices
-- shown to the user before and after an update). A visit's notice names its booking: when the
-- visit moves (rescheduled, rebooked after a no-show) the owner is told the new time, and the
-- notice of the old booking is withdrawn if it has not gone out. One notification per (vehicle,
-- alarm, remedy, stage, booking), whatever the retries.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS stage text NOT NULL DEFAULT 'remedy'
    CHECK (stage IN ('remedy', 'update_installed', 'update_rolled_back'));
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS booking_id bigint;  -- bookings.booking_id; no foreign key, by design
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_once;
ALTER TABLE notifications ADD CONSTRAINT notifications_once
    UNIQUE NULLS NOT DISTINCT (vehicle_id, alarm_id, remedy_id, stage, booking_id);
