-- Per-table settings for vox's busiest tables (run once as the owner after
-- `voxctl migrate`; safe to run again). Why: README.md in this folder.

-- organizations: one row per tenant, its wallet updated by every charge.
-- Room on each page for HOT updates, and vacuum after a few hundred changes.
ALTER TABLE organizations SET (fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 500);

-- calls and contacts: inserted, then updated (call.ended, lead scores).
ALTER TABLE calls SET (fillfactor = 85);
ALTER TABLE contacts SET (fillfactor = 85);

-- the append-only ledger and the outbox: insert-driven vacuum.
ALTER TABLE credit_transactions SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE call_charges SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE vox_outbox SET (autovacuum_vacuum_scale_factor = 0.02);
