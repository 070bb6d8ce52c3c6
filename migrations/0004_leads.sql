-- 0004_leads.sql
--
-- What vox-leads needs beyond the seed schema.

-- The time of the score a contact holds: a score computed earlier never
-- overwrites a newer one, whatever order the events arrive in.
ALTER TABLE contacts ADD COLUMN lead_scored_at timestamptz;

-- A scorer may rate a call before vox-calls has recorded it (they read
-- different consumers). An alert must not wait for, or be refused for
-- lack of, the call row: the alert keeps the call id without the
-- foreign key. The unique (org, contact, call) key stays.
ALTER TABLE hot_lead_alerts DROP CONSTRAINT hot_lead_alerts_call_id_fkey;

-- hot_lead_alerts.published_at follows the outbox: the alert row's id is
-- the outbox msg_id of its alert.hot_lead message.
CREATE FUNCTION hot_lead_alerts_published() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE hot_lead_alerts SET published_at = NEW.published_at
     WHERE id = NEW.msg_id::uuid AND published_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER vox_outbox_hot_lead_published
    AFTER UPDATE OF published_at ON vox_outbox
    FOR EACH ROW
    WHEN (NEW.published_at IS NOT NULL AND NEW.subject LIKE 'alert.hot\_lead.%')
    EXECUTE FUNCTION hot_lead_alerts_published();
