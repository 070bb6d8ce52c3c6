-- 0009_write_path_keys.sql
--
-- What a call costs the database, second pass (the first is 0006). Per
-- call, vox-calls and vox-billing write a calls row, a call_charges row
-- and a ledger row; every index on them is an entry to write and every
-- per-row foreign key a lookup and a row lock. This migration keeps what
-- a query or a guarantee needs, and says for each what it serves.
--
-- The idempotency decision: processed_webhook_events keeps the seed's
-- meaning, a payment webhook processed (vox-billing writes one per
-- payment.succeeded / payment.refunded, removed after
-- VOX_WEBHOOK_RETENTION_H). Call and lead events write none since this
-- release: nothing read those rows, and the permanent idempotency is on
-- natural keys: calls.id (the merge), call_charges.call_id, the ledger's
-- partial unique keys (call_id, payment intent, refund id).
--
-- On a large database the index builds below hold their table's lock for
-- the time of a build: run it with the actors stopped, or build the new
-- indexes beforehand with CREATE INDEX CONCURRENTLY under the same names.

-- ---- time-ordered ids --------------------------------------------------
--
-- A random UUID primary key puts every insert on a random leaf of its
-- B-tree: on a table larger than memory, a page read and a full-page WAL
-- image per row. A UUID of version 7 (RFC 9562) starts with the Unix time
-- in milliseconds, so new keys land on the right edge of the index. The
-- 48 bits of time replace the first six bytes of gen_random_uuid(); the
-- version nibble becomes 7 (bits 52 and 53 set on top of version 4's
-- 0100); the variant bits stay gen_random_uuid()'s.
CREATE FUNCTION vox_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(
                        floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                        FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

-- The append-only and insert-mostly tables whose ids the database draws.
-- (calls.id is the bridge's call_id; vox_outbox has a bigint identity.)
ALTER TABLE credit_transactions ALTER COLUMN id SET DEFAULT vox_uuid_v7();
ALTER TABLE processed_webhook_events ALTER COLUMN id SET DEFAULT vox_uuid_v7();
ALTER TABLE hot_lead_alerts ALTER COLUMN id SET DEFAULT vox_uuid_v7();
ALTER TABLE contacts ALTER COLUMN id SET DEFAULT vox_uuid_v7();

-- ---- indexes -----------------------------------------------------------

-- credit_transactions keeps, per query:
--   credit_transactions_pkey          rows by id
--   credit_transactions_org_seq_key   an org's chain in order: query.ledger
--                                     (org_id, seq < cursor ORDER BY seq),
--                                     the chain check, the org cascade;
--                                     unique: one link per place
--   idx_credit_txn_org_type_seq       query.ledger filtered by type
--   credit_transactions_call_key,     the permanent idempotency keys
--   _topup_key, _refund_key           (a deduction per call, a top-up per
--                                     intent, a refund per refund id)
--   idx_credit_txn_refund_pi          the refunds of an intent (over-refund)
--   idx_credit_txn_stripe_pi          the seed's lookup by intent (deductions
--                                     have none: no entry per call)
--   idx_credit_txn_created_at         time ranges of reports: BRIN below
CREATE UNIQUE INDEX credit_transactions_org_seq_key
    ON credit_transactions (org_id, seq);
-- seq is GENERATED ALWAYS AS IDENTITY: unique without an index of its own;
-- (org_id, seq) serves every lookup the two served.
DROP INDEX IF EXISTS credit_transactions_seq_key;
DROP INDEX IF EXISTS idx_credit_txn_org_seq;
-- (org_id, type, created_at DESC): the same rows in the same order as
-- idx_credit_txn_org_type_seq, since an org's rows are written under its
-- row lock with clock_timestamp(), so created_at follows seq.
DROP INDEX IF EXISTS idx_credit_txn_type;

-- created_at of rows that are only appended grows with their place in the
-- heap: a BRIN index (a few pages for millions of rows, one summary per
-- 128 pages) answers time ranges without an entry per row.
DROP INDEX IF EXISTS idx_credit_txn_created_at;
CREATE INDEX idx_credit_txn_created_at ON credit_transactions USING brin (created_at);
-- calls are inserted at call.started and updated in place (HOT, 0006);
-- created_at is the call's start, close to arrival order.
DROP INDEX IF EXISTS idx_calls_created_at;
CREATE INDEX idx_calls_created_at ON calls USING brin (created_at);
-- calls keeps: calls_pkey (the merge), idx_calls_org_created_id (query.calls,
-- the org cascade), idx_calls_contact_id (a contact's calls, and the
-- ON DELETE SET NULL of contacts).

-- A prefix of contacts_org_id_phone_key (org_id, phone), which answers the
-- same org lookups and the org cascade.
DROP INDEX IF EXISTS idx_contacts_org_id;

-- ---- the org reference, once per statement ---------------------------
--
-- A foreign key checks every inserted row on its own: one lookup and one
-- FOR KEY SHARE lock of the org row per call, per charge, per ledger row,
-- though a batch names a few orgs and vox-billing holds their rows locked
-- already. The three tables of the call path check their org once per
-- statement instead, with the same guarantee: every org a statement names
-- is locked FOR KEY SHARE (so it cannot be deleted under the new rows) and
-- must exist, or the statement fails with the foreign key's SQLSTATE 23503.
-- SECURITY DEFINER, as a foreign key's check runs as the table's owner.
CREATE FUNCTION vox_check_org_refs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    missing uuid;
BEGIN
    PERFORM 1 FROM organizations o
        WHERE o.id IN (SELECT DISTINCT n.org_id FROM new_rows n)
        ORDER BY o.id FOR KEY SHARE;
    SELECT n.org_id INTO missing FROM new_rows n
        WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = n.org_id)
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "%" names org_id %, which is not in organizations',
            TG_TABLE_NAME, missing
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$;

-- An update that moves a row to another org (vox never does) is checked
-- row by row; the trigger fires only when org_id is in the SET list.
CREATE FUNCTION vox_check_org_ref_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM 1 FROM organizations o WHERE o.id = NEW.org_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'update on table "%" names org_id %, which is not in organizations',
            TG_TABLE_NAME, NEW.org_id
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END
$$;

-- What ON DELETE CASCADE did.
CREATE FUNCTION vox_org_cascade() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM call_charges WHERE org_id = OLD.id;
    DELETE FROM credit_transactions WHERE org_id = OLD.id;
    DELETE FROM calls WHERE org_id = OLD.id;
    RETURN NULL;
END
$$;

ALTER TABLE calls DROP CONSTRAINT IF EXISTS calls_org_id_fkey;
ALTER TABLE credit_transactions DROP CONSTRAINT IF EXISTS credit_transactions_org_id_fkey;
ALTER TABLE call_charges DROP CONSTRAINT IF EXISTS call_charges_org_id_fkey;

CREATE TRIGGER calls_org_ref AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vox_check_org_refs();
CREATE TRIGGER credit_transactions_org_ref AFTER INSERT ON credit_transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vox_check_org_refs();
CREATE TRIGGER call_charges_org_ref AFTER INSERT ON call_charges
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vox_check_org_refs();

CREATE TRIGGER calls_org_move BEFORE UPDATE OF org_id ON calls
    FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id)
    EXECUTE FUNCTION vox_check_org_ref_row();
CREATE TRIGGER call_charges_org_move BEFORE UPDATE OF org_id ON call_charges
    FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id)
    EXECUTE FUNCTION vox_check_org_ref_row();
-- (credit_transactions refuses every UPDATE: 0003's append-only trigger.)

CREATE TRIGGER organizations_cascade AFTER DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION vox_org_cascade();
