-- 0006_write_path.sql
--
-- The write path: every event costs index entries, and the seed indexed
-- some columns twice or indexed columns no query of ours, or of the
-- replaced system's reports, can use selectively. Each index dropped here
-- is either an exact duplicate or a prefix of another index that serves
-- the same lookups (and the ON DELETE CASCADE of organizations).

-- A second copy of processed_webhook_events_event_id_key (UNIQUE).
DROP INDEX IF EXISTS idx_webhook_events_event_id;

-- Prefixes of idx_calls_org_created_id (0005) and idx_credit_txn_org_seq
-- (0003): the same org lookups, answered by the longer index.
DROP INDEX IF EXISTS idx_calls_org_id;
DROP INDEX IF EXISTS idx_credit_txn_org_id;

-- Two or three distinct values each: a scan of half a table is never
-- helped by them, and an indexed status makes every call.ended an update
-- of all of calls' indexes instead of a heap-only (HOT) update. Status
-- and direction filters run inside an org, on idx_calls_org_created_id.
DROP INDEX IF EXISTS idx_calls_status;
DROP INDEX IF EXISTS idx_calls_call_direction;

-- Room on each page for a call's call.ended to land next to its
-- call.started (a HOT update needs free space on the same page). Applies
-- to pages written from now on.
ALTER TABLE calls SET (fillfactor = 80);
