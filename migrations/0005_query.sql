-- 0005_query.sql
--
-- What vox-query needs: indexes that serve its keyset pages in order, so
-- that a page costs the same at the end of a long history as at its start.
-- vox-query reads as a role that is a member of vox_reader (see
-- README.md, Queries); the grants are in 0001 and 0003.

-- query.calls: newest first by (created_at, id), optionally bounded in time.
CREATE INDEX idx_calls_org_created_id ON calls (org_id, created_at, id);

-- query.transactions with a type filter: newest first by seq.
CREATE INDEX idx_credit_txn_org_type_seq ON credit_transactions (org_id, type, seq);

-- query.hot_leads: newest first by (created_at, id).
CREATE INDEX idx_hot_lead_alerts_org_created_id
    ON hot_lead_alerts (org_id, created_at, id);
