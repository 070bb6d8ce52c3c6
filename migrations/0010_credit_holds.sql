-- 0010_credit_holds.sql
--
-- Credit holds: a call in progress reserves credit. billing.authorize
-- with hold places one (exactly once per org and call_id: the primary
-- key), counted against what the org can spend, balance + debt limit -
-- active holds; the call's call.ended settles it in the batch that
-- charges the call (the charge is the real duration, never the hold's);
-- one never settled expires after VOX_HOLD_EXPIRY_S. A call.ended with
-- no hold leaves a settled row of 0, so a hold asked for later places
-- nothing. Holds are never ledger rows: the ledger stays the truth of
-- money moved; this table is money reserved.
CREATE TABLE credit_holds (
    org_id       uuid        NOT NULL REFERENCES organizations (id),
    call_id      uuid        NOT NULL,
    amount_pence bigint      NOT NULL CHECK (amount_pence >= 0),
    -- whether the org could spend the whole hold when it was placed (a
    -- hold that does not fit is recorded as such; it still counts)
    fits         boolean     NOT NULL,
    state        text        NOT NULL DEFAULT 'active'
                 CHECK (state IN ('active', 'settled', 'expired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    PRIMARY KEY (org_id, call_id),
    CHECK ((state = 'active') = (ended_at IS NULL))
);
-- what is held, and what expires: active holds only
CREATE INDEX idx_credit_holds_active ON credit_holds (org_id) WHERE state = 'active';
CREATE INDEX idx_credit_holds_expiry ON credit_holds (expires_at) WHERE state = 'active';
ALTER TABLE credit_holds ENABLE ROW LEVEL SECURITY;
CREATE POLICY credit_holds_org_isolation ON credit_holds
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());
GRANT SELECT ON credit_holds TO vox_reader;
