-- 0003_calls_and_billing.sql
--
-- What vox-calls and vox-billing need beyond the seed schema. The seed's
-- applied migration is never edited; everything here is additive or a
-- relaxation, so an existing database of the replaced system upgrades in
-- place.

-- ---------------------------------------------------------------------------
-- Calls: a call.ended that arrives before (or without) its call.started
-- creates the row from its own fields, which may lack the direction and
-- the numbers; a late call.started fills them in.
-- ---------------------------------------------------------------------------
ALTER TABLE calls
    ALTER COLUMN call_direction DROP NOT NULL,
    ALTER COLUMN from_number DROP NOT NULL,
    ALTER COLUMN to_number DROP NOT NULL,
    ADD COLUMN ended_at timestamptz;

-- ---------------------------------------------------------------------------
-- The wallet
-- ---------------------------------------------------------------------------
UPDATE organizations SET wallet_balance_pence = 0 WHERE wallet_balance_pence IS NULL;
ALTER TABLE organizations
    ALTER COLUMN wallet_balance_pence SET DEFAULT 0,
    ALTER COLUMN wallet_balance_pence SET NOT NULL,
    -- Charges the debt limit kept us from taking: revenue owed, never lost.
    ADD COLUMN unbilled_pence bigint NOT NULL DEFAULT 0
        CONSTRAINT organizations_unbilled_pence_check CHECK (unbilled_pence >= 0),
    -- alert.low_balance fires when a deduction crosses below this.
    ADD COLUMN low_balance_pence integer NOT NULL DEFAULT 1000
        CONSTRAINT organizations_low_balance_pence_check CHECK (low_balance_pence >= 0),
    -- One alert per crossing: set when an alert fires, cleared when the
    -- balance climbs back above the line.
    ADD COLUMN low_balance_alerted boolean NOT NULL DEFAULT false,
    ADD COLUMN debt_limit_alerted boolean NOT NULL DEFAULT false;

-- ---------------------------------------------------------------------------
-- The ledger
-- ---------------------------------------------------------------------------
ALTER TABLE credit_transactions
    -- The order of the balance chain per org: allocated under the org's
    -- row lock, so it is the order in which balances moved.
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN call_id uuid,
    ADD COLUMN stripe_refund_id text,
    ADD COLUMN shortfall_pence integer NOT NULL DEFAULT 0
        CONSTRAINT credit_transactions_shortfall_pence_check CHECK (shortfall_pence >= 0),
    ADD COLUMN event_id text,
    -- The seed made the payment intent unique for every row; a refund
    -- names the intent it refunds, so uniqueness moves to one partial
    -- index per kind of key below.
    DROP CONSTRAINT credit_transactions_stripe_payment_intent_id_key;

-- Signed amounts: + top-up, - refund, - (or 0 when all of it was shortfall)
-- deduction. NOT VALID: rows of the replaced system are not re-checked.
ALTER TABLE credit_transactions
    ADD CONSTRAINT credit_transactions_sign_check CHECK (
        (type = 'topup' AND amount_pence > 0)
        OR (type = 'refund' AND amount_pence < 0)
        OR (type = 'deduction' AND amount_pence <= 0)) NOT VALID;

-- Permanent idempotency keys (plain unique indexes: never deferrable).
CREATE UNIQUE INDEX credit_transactions_topup_key
    ON credit_transactions (stripe_payment_intent_id) WHERE type = 'topup';
CREATE UNIQUE INDEX credit_transactions_refund_key
    ON credit_transactions (stripe_refund_id) WHERE type = 'refund';
CREATE UNIQUE INDEX credit_transactions_call_key
    ON credit_transactions (call_id) WHERE type = 'deduction';
CREATE UNIQUE INDEX credit_transactions_seq_key ON credit_transactions (seq);
CREATE INDEX idx_credit_txn_org_seq ON credit_transactions (org_id, seq);
CREATE INDEX idx_credit_txn_refund_pi ON credit_transactions (stripe_payment_intent_id)
    WHERE type = 'refund';

-- The ledger is immutable: rows are only ever added.
CREATE FUNCTION credit_transactions_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit_transactions is append-only';
END
$$;
CREATE TRIGGER credit_transactions_no_update
    BEFORE UPDATE ON credit_transactions
    FOR EACH ROW EXECUTE FUNCTION credit_transactions_immutable();

-- One row per billed call, including calls of 0 s that write no ledger
-- row: the permanent record that a call_id was charged and how, against
-- which a repeated call.ended is a no-op and a different one a conflict.
CREATE TABLE call_charges (
    call_id          uuid        PRIMARY KEY,
    org_id           uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    duration_seconds integer     NOT NULL CHECK (duration_seconds >= 0),
    rate_per_minute  integer     NOT NULL CHECK (rate_per_minute > 0),
    charge_pence     integer     NOT NULL CHECK (charge_pence >= 0),
    deducted_pence   integer     NOT NULL CHECK (deducted_pence >= 0),
    shortfall_pence  integer     NOT NULL CHECK (shortfall_pence >= 0),
    event_id         text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT call_charges_sum_check
        CHECK (deducted_pence + shortfall_pence = charge_pence)
);
CREATE INDEX idx_call_charges_org_id ON call_charges (org_id);
ALTER TABLE call_charges ENABLE ROW LEVEL SECURITY;
CREATE POLICY call_charges_org_isolation ON call_charges
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());
GRANT SELECT ON call_charges TO vox_reader;
