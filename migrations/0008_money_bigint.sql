-- 0008_money_bigint.sql
--
-- Money in bigint. The seed's integer columns cap a wallet, a debt limit
-- or a single ledger amount at 2^31 - 1 of the minor unit (about 21
-- million in pounds or dollars); past that a statement fails and the event
-- that caused it is lost to a retry loop. vox computes money in int64
-- everywhere, and the planner refuses what would overflow it
-- (src/core/billing.c), so the columns that hold money become bigint:
-- balances, debt limits, thresholds, every amount of the ledger and of
-- call_charges. unbilled_pence was bigint from the start (0003).
--
-- Numbered 0008 (0007 is another change): the runner applies every
-- migration not yet recorded, in name order, so the two may arrive in
-- either order.
--
-- What depends on these columns was checked: no view reads them, no
-- row-level-security policy names them (the policies test org_id/id), no
-- index covers them, and no function of the schema takes or returns
-- money (cleanup_old_webhook_events returns a row count; the triggers take
-- no arguments). The check constraints on them are carried over by
-- ALTER TYPE as they are: credit_transactions_sign_check stays NOT VALID,
-- so the rows of the replaced system are still not re-checked. The
-- append-only trigger of the ledger does not fire: a type change rewrites
-- the table, it does not UPDATE rows.
--
-- Each ALTER TABLE rewrites its table once under an ACCESS EXCLUSIVE lock:
-- run it with the actors stopped or expect them to wait for it.

ALTER TABLE organizations
    ALTER COLUMN wallet_balance_pence TYPE bigint,
    ALTER COLUMN debt_limit_pence TYPE bigint,
    ALTER COLUMN low_balance_pence TYPE bigint;

ALTER TABLE credit_transactions
    ALTER COLUMN amount_pence TYPE bigint,
    ALTER COLUMN balance_before_pence TYPE bigint,
    ALTER COLUMN balance_after_pence TYPE bigint,
    ALTER COLUMN shortfall_pence TYPE bigint;

-- duration_seconds (0..86400) and rate_per_minute (VOX_RATE_PER_MINUTE,
-- at most 100000) are not money and stay integer.
ALTER TABLE call_charges
    ALTER COLUMN charge_pence TYPE bigint,
    ALTER COLUMN deducted_pence TYPE bigint,
    ALTER COLUMN shortfall_pence TYPE bigint;
