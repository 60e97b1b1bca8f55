-- Ingest updates every sending vehicle's `vehicles.last_seen_at` and its `vehicle_latest` row in every
-- flush (issue 14). On full pages such an update writes the new row version to another page and
-- adds it to every index of the table (six on `vehicles`). With free room on the page the update is
-- HOT (heap-only: no index entry) and the page is pruned in place. Half of each page is left free.
-- Pages written before keep their layout until their rows move; no table rewrite is forced here.
ALTER TABLE vehicles SET (fillfactor = 50);
ALTER TABLE vehicle_latest SET (fillfactor = 50);
