-- 0001_seed_schema.sql
--
-- Baseline PostgreSQL 15 schema of the system being replaced (Voxanne AI),
-- rebuilt from its schema document (shared seed 000_6410bab8f6cdb94d.txt).
-- 29 tables: 9 production, 2 billing, 18 configuration (the document says
-- 28/17 but lists 18 configuration tables).
--
-- Conventions:
--   * Table and column names are the seed's, even where odd.
--   * Every timestamp is timestamptz (the seed: "UTC, timestamp with time zone").
--   * Columns the seed does not mark "nullable" are NOT NULL.
--   * Enumerated columns get a CHECK named <table>_<column>_check.
--   * No unique constraint is DEFERRABLE: a deferrable unique constraint
--     cannot be an ON CONFLICT arbiter, which broke every upsert in the
--     old system.
--   * gen_random_uuid() is built in since PG13, so no extension is needed.
--
-- The migration runner wraps this file in a transaction: no BEGIN/COMMIT here.

-- ---------------------------------------------------------------------------
-- Tenant context for row-level security
-- ---------------------------------------------------------------------------

-- The current tenant comes from the session/transaction setting app.org_id.
-- Unset or empty yields NULL, and "org_id = NULL" matches nothing, so a
-- session that forgot to set it sees no rows (fail closed).
CREATE FUNCTION app_org_id() RETURNS uuid
LANGUAGE sql STABLE
AS $$
    SELECT NULLIF(current_setting('app.org_id', true), '')::uuid
$$;

-- ---------------------------------------------------------------------------
-- Production tables
-- ---------------------------------------------------------------------------

CREATE TABLE organizations (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name                  text        NOT NULL,
    email                 text        NOT NULL,
    phone                 text,
    website               text,
    plan                  text        NOT NULL DEFAULT 'starter',
    stripe_customer_id    text,
    wallet_balance_pence  integer     DEFAULT 0,
    debt_limit_pence      integer     NOT NULL DEFAULT 500,
    -- Legacy: kept because the old system has it; billing ignores it.
    wallet_markup_percent integer     NOT NULL DEFAULT 50,
    telephony_mode        text        NOT NULL DEFAULT 'none',
    settings              jsonb       DEFAULT '{}'::jsonb,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_plan_check
        CHECK (plan IN ('starter', 'professional', 'enterprise')),
    CONSTRAINT organizations_telephony_mode_check
        CHECK (telephony_mode IN ('byoc', 'managed', 'none')),
    CONSTRAINT organizations_debt_limit_pence_check
        CHECK (debt_limit_pence >= 0)
);
CREATE INDEX idx_organizations_name               ON organizations (name);
CREATE INDEX idx_organizations_email              ON organizations (email);
CREATE INDEX idx_organizations_plan               ON organizations (plan);
CREATE INDEX idx_organizations_stripe_customer_id ON organizations (stripe_customer_id);
CREATE INDEX idx_organizations_telephony_mode     ON organizations (telephony_mode);

CREATE TABLE profiles (
    -- In the old system this was the Supabase auth user id; the default only
    -- matters for rows created without an external identity.
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email      text        NOT NULL,
    full_name  text,
    avatar_url text,
    role       text        NOT NULL DEFAULT 'user',
    phone      text,
    status     text        NOT NULL DEFAULT 'active',
    last_login timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT profiles_role_check   CHECK (role IN ('admin', 'manager', 'user')),
    CONSTRAINT profiles_status_check CHECK (status IN ('active', 'inactive', 'suspended'))
);
CREATE INDEX idx_profiles_org_id ON profiles (org_id);
CREATE INDEX idx_profiles_email  ON profiles (email);
CREATE INDEX idx_profiles_role   ON profiles (role);
CREATE INDEX idx_profiles_status ON profiles (status);

CREATE TABLE contacts (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    phone             text        NOT NULL,
    email             text,
    first_name        text        NOT NULL DEFAULT '',
    last_name         text        NOT NULL DEFAULT '',
    lead_status       text        NOT NULL DEFAULT 'cold',
    lead_score        integer,
    notes             text,
    last_contacted_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contacts_lead_status_check
        CHECK (lead_status IN ('hot', 'warm', 'cold', 'contacted')),
    CONSTRAINT contacts_lead_score_check
        CHECK (lead_score BETWEEN 0 AND 100),
    -- One contact per phone number per tenant; the arbiter for contact upserts.
    CONSTRAINT contacts_org_id_phone_key UNIQUE (org_id, phone)
);
CREATE INDEX idx_contacts_org_id      ON contacts (org_id);
CREATE INDEX idx_contacts_phone       ON contacts (phone);
CREATE INDEX idx_contacts_lead_status ON contacts (lead_status);
CREATE INDEX idx_contacts_lead_score  ON contacts (lead_score);

CREATE TABLE calls (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contact_id        uuid        REFERENCES contacts (id) ON DELETE SET NULL,
    call_direction    text        NOT NULL,
    from_number       text        NOT NULL,
    to_number         text        NOT NULL,
    duration_seconds  integer,
    status            text        NOT NULL DEFAULT 'pending',
    transcript        text,
    summary           text,
    sentiment_label   text,
    sentiment_score   numeric,
    sentiment_summary text,
    sentiment_urgency text,
    phone_number      text,
    caller_name       text,
    vapi_call_id      text,
    recording_url     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT calls_call_direction_check
        CHECK (call_direction IN ('inbound', 'outbound')),
    CONSTRAINT calls_status_check
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
    CONSTRAINT calls_sentiment_label_check
        CHECK (sentiment_label IN ('positive', 'neutral', 'negative')),
    CONSTRAINT calls_sentiment_urgency_check
        CHECK (sentiment_urgency IN ('low', 'medium', 'high', 'critical')),
    CONSTRAINT calls_sentiment_score_check
        CHECK (sentiment_score BETWEEN 0 AND 1),
    CONSTRAINT calls_duration_seconds_check
        CHECK (duration_seconds >= 0)
);
CREATE INDEX idx_calls_org_id         ON calls (org_id);
CREATE INDEX idx_calls_call_direction ON calls (call_direction);
CREATE INDEX idx_calls_created_at     ON calls (created_at);
CREATE INDEX idx_calls_status         ON calls (status);
-- Not in the seed: backs the ON DELETE SET NULL from contacts, which would
-- otherwise scan calls for every deleted contact.
CREATE INDEX idx_calls_contact_id     ON calls (contact_id);

CREATE TABLE appointments (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Nullable although the seed does not say so: ON DELETE SET NULL needs it.
    contact_id       uuid        REFERENCES contacts (id) ON DELETE SET NULL,
    title            text        NOT NULL,
    description      text,
    scheduled_at     timestamptz NOT NULL,
    duration_minutes integer     NOT NULL DEFAULT 30,
    status           text        NOT NULL DEFAULT 'scheduled',
    location         text,
    notes            text,
    reminder_sent_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT appointments_status_check
        CHECK (status IN ('scheduled', 'completed', 'cancelled', 'no-show')),
    CONSTRAINT appointments_duration_minutes_check
        CHECK (duration_minutes > 0)
);
CREATE INDEX idx_appointments_org_id       ON appointments (org_id);
CREATE INDEX idx_appointments_scheduled_at ON appointments (scheduled_at);
CREATE INDEX idx_appointments_status       ON appointments (status);
CREATE INDEX idx_appointments_contact_id   ON appointments (contact_id);

CREATE TABLE call_tracking (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    call_id      uuid        REFERENCES calls (id) ON DELETE SET NULL,
    -- The seed lists no FK here, but its validation rules require every
    -- contact_id to reference contacts.
    contact_id   uuid        REFERENCES contacts (id) ON DELETE SET NULL,
    tracked_url  text        NOT NULL,
    utm_source   text,
    utm_medium   text,
    utm_campaign text,
    device_type  text,
    browser      text,
    os           text,
    ip_address   text,
    location     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT call_tracking_device_type_check
        CHECK (device_type IN ('mobile', 'desktop', 'unknown'))
);
CREATE INDEX idx_call_tracking_org_id     ON call_tracking (org_id);
CREATE INDEX idx_call_tracking_call_id    ON call_tracking (call_id);
CREATE INDEX idx_call_tracking_created_at ON call_tracking (created_at);
CREATE INDEX idx_call_tracking_utm_source ON call_tracking (utm_source);
CREATE INDEX idx_call_tracking_contact_id ON call_tracking (contact_id);

-- Global (no org_id, no RLS).
CREATE TABLE feature_flags (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text        NOT NULL,
    description        text,
    enabled            boolean     NOT NULL DEFAULT false,
    rollout_percentage integer,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feature_flags_name_key UNIQUE (name),
    CONSTRAINT feature_flags_rollout_percentage_check
        CHECK (rollout_percentage BETWEEN 0 AND 100)
);
-- Redundant with feature_flags_name_key, kept because the seed lists it.
CREATE INDEX idx_feature_flags_name    ON feature_flags (name);
CREATE INDEX idx_feature_flags_enabled ON feature_flags (enabled);

CREATE TABLE org_tools (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    tool_name  text        NOT NULL,
    enabled    boolean     NOT NULL DEFAULT true,
    config     jsonb       DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_org_tools_org_id    ON org_tools (org_id);
CREATE INDEX idx_org_tools_tool_name ON org_tools (tool_name);

CREATE TABLE onboarding_submissions (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid        REFERENCES organizations (id) ON DELETE CASCADE,
    email      text        NOT NULL,
    phone      text        NOT NULL,
    name       text        NOT NULL,
    company    text,
    message    text,
    source     text,
    ip_address text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_onboarding_submissions_org_id     ON onboarding_submissions (org_id);
CREATE INDEX idx_onboarding_submissions_email      ON onboarding_submissions (email);
CREATE INDEX idx_onboarding_submissions_created_at ON onboarding_submissions (created_at);

-- ---------------------------------------------------------------------------
-- Billing tables
-- ---------------------------------------------------------------------------

-- Append-only wallet ledger. amount_pence is unconstrained in sign: the seed
-- does not say whether deductions are stored negative.
CREATE TABLE credit_transactions (
    id                       uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                   uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    amount_pence             integer     NOT NULL,
    type                     text        NOT NULL,
    description              text,
    stripe_payment_intent_id text,
    balance_before_pence     integer,
    balance_after_pence      integer,
    created_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_transactions_type_check
        CHECK (type IN ('topup', 'deduction', 'refund')),
    -- Idempotency key for Stripe top-ups; plain (non-deferrable) so that
    -- INSERT ... ON CONFLICT (stripe_payment_intent_id) can use it.
    -- NULLs stay distinct: deductions carry no payment intent.
    CONSTRAINT credit_transactions_stripe_payment_intent_id_key
        UNIQUE (stripe_payment_intent_id)
);
CREATE INDEX idx_credit_txn_org_id     ON credit_transactions (org_id);
CREATE INDEX idx_credit_txn_created_at ON credit_transactions (created_at DESC);
CREATE INDEX idx_credit_txn_type       ON credit_transactions (org_id, type, created_at DESC);
-- Non-unique on purpose: uniqueness lives in the constraint above, and a
-- second (partial) unique index would only confuse ON CONFLICT inference.
CREATE INDEX idx_credit_txn_stripe_pi  ON credit_transactions (stripe_payment_intent_id)
    WHERE stripe_payment_intent_id IS NOT NULL;

-- Webhook idempotency (Stripe, Vapi, Twilio). org_id is NULL for events that
-- cannot be attributed to a tenant.
CREATE TABLE processed_webhook_events (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    event_data   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    org_id       uuid        REFERENCES organizations (id) ON DELETE CASCADE,
    processed_at timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT processed_webhook_events_event_id_key UNIQUE (event_id)
);
-- Redundant with the unique constraint, kept because the seed lists it.
CREATE INDEX idx_webhook_events_event_id   ON processed_webhook_events (event_id);
CREATE INDEX idx_webhook_events_event_type ON processed_webhook_events (event_type, processed_at DESC);
CREATE INDEX idx_webhook_events_org_id     ON processed_webhook_events (org_id);
CREATE INDEX idx_webhook_events_created_at ON processed_webhook_events (created_at DESC);

-- ---------------------------------------------------------------------------
-- Configuration tables
-- The seed gives only purpose, FK and column count for these; the columns
-- below are a reconstruction in its spirit.
-- ---------------------------------------------------------------------------

-- Global (no org_id, no RLS). Daily backup health checks, 90-day retention.
CREATE TABLE backup_verification_log (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    verified_at        timestamptz NOT NULL DEFAULT now(),
    status             text        NOT NULL,
    backup_id          text,
    backup_age_hours   numeric,
    critical_tables_ok boolean,
    rls_policies_ok    boolean,
    details            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error_message      text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT backup_verification_log_status_check
        CHECK (status IN ('success', 'warning', 'failure'))
);
CREATE INDEX idx_backup_verification_log_verified_at ON backup_verification_log (verified_at DESC);

-- The old table had 45 columns; this keeps the ones the platform needs and
-- leaves the long tail in config.
CREATE TABLE agents (
    id                        uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                    uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                      text        NOT NULL,
    role                      text        NOT NULL DEFAULT 'inbound',
    vapi_assistant_id         text,
    vapi_phone_number_id      text,
    phone_number              text,
    system_prompt             text,
    first_message             text,
    voice_provider            text,
    voice_id                  text,
    language                  text        NOT NULL DEFAULT 'en',
    model_provider            text,
    model                     text,
    temperature               numeric,
    max_call_duration_seconds integer,
    is_active                 boolean     NOT NULL DEFAULT true,
    config                    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agents_role_check
        CHECK (role IN ('inbound', 'outbound')),
    CONSTRAINT agents_temperature_check
        CHECK (temperature BETWEEN 0 AND 2),
    CONSTRAINT agents_max_call_duration_seconds_check
        CHECK (max_call_duration_seconds > 0)
);
CREATE INDEX idx_agents_org_id ON agents (org_id);

CREATE TABLE services (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text        NOT NULL,
    description      text,
    price            numeric,
    duration_minutes integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT services_price_check            CHECK (price >= 0),
    CONSTRAINT services_duration_minutes_check CHECK (duration_minutes > 0)
);
CREATE INDEX idx_services_org_id ON services (org_id);

CREATE TABLE knowledge_base (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    title      text        NOT NULL,
    content    text        NOT NULL,
    category   text,
    source_url text,
    version    integer     NOT NULL DEFAULT 1,
    is_active  boolean     NOT NULL DEFAULT true,
    metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT knowledge_base_version_check CHECK (version > 0)
);
CREATE INDEX idx_knowledge_base_org_id ON knowledge_base (org_id);

-- Chunks and changelog have no org_id (the seed's only FK is
-- knowledge_base_id); their RLS policy goes through the parent row.
CREATE TABLE knowledge_base_chunks (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    knowledge_base_id uuid        NOT NULL REFERENCES knowledge_base (id) ON DELETE CASCADE,
    chunk_index       integer     NOT NULL,
    content           text        NOT NULL,
    token_count       integer,
    -- pgvector is not available (no CREATE EXTENSION here); a plain float
    -- array holds the embedding.
    embedding         real[],
    metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT knowledge_base_chunks_chunk_index_check CHECK (chunk_index >= 0),
    CONSTRAINT knowledge_base_chunks_token_count_check CHECK (token_count >= 0),
    CONSTRAINT knowledge_base_chunks_knowledge_base_id_chunk_index_key
        UNIQUE (knowledge_base_id, chunk_index)
);

CREATE TABLE knowledge_base_changelog (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    knowledge_base_id uuid        NOT NULL REFERENCES knowledge_base (id) ON DELETE CASCADE,
    version           integer     NOT NULL,
    change_type       text        NOT NULL,
    previous_content  text,
    new_content       text,
    changed_by        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT knowledge_base_changelog_change_type_check
        CHECK (change_type IN ('created', 'updated', 'deleted'))
);
CREATE INDEX idx_knowledge_base_changelog_knowledge_base_id
    ON knowledge_base_changelog (knowledge_base_id);

CREATE TABLE integrations (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider       text        NOT NULL,
    status         text        NOT NULL DEFAULT 'pending',
    config         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    last_synced_at timestamptz,
    error_message  text,
    enabled        boolean     NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integrations_status_check
        CHECK (status IN ('pending', 'connected', 'disconnected', 'error')),
    -- One integration row per provider per tenant (upsert arbiter).
    CONSTRAINT integrations_org_id_provider_key UNIQUE (org_id, provider)
);

-- Secrets are stored encrypted by the application; key_version names the key
-- used so keys can be rotated row by row.
CREATE TABLE org_credentials (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider           text        NOT NULL,
    type               text        NOT NULL DEFAULT 'default',
    encrypted_config   bytea       NOT NULL,
    key_version        integer     NOT NULL,
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    is_active          boolean     NOT NULL DEFAULT true,
    last_verified_at   timestamptz,
    verification_error text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT org_credentials_provider_check
        CHECK (provider IN ('vapi', 'twilio', 'google_calendar', 'resend',
                            'elevenlabs', 'openai', 'deepgram', 'cartesia',
                            'outlook_calendar', 'hubspot', 'salesforce', 'stripe')),
    CONSTRAINT org_credentials_type_check
        CHECK (type IN ('default', 'inbound', 'outbound')),
    CONSTRAINT org_credentials_key_version_check
        CHECK (key_version > 0),
    CONSTRAINT org_credentials_org_id_provider_type_key
        UNIQUE (org_id, provider, type)
);

CREATE TABLE carrier_forwarding_rules (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    country_code       text        NOT NULL,
    carrier_name       text        NOT NULL,
    forwarding_type    text        NOT NULL DEFAULT 'unconditional',
    activation_code    text,
    deactivation_code  text,
    destination_number text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- ISO 3166-1 alpha-2.
    CONSTRAINT carrier_forwarding_rules_country_code_check
        CHECK (country_code ~ '^[A-Z]{2}$'),
    CONSTRAINT carrier_forwarding_rules_forwarding_type_check
        CHECK (forwarding_type IN ('unconditional', 'busy', 'no_answer', 'unreachable'))
);
CREATE INDEX idx_carrier_forwarding_rules_org_id ON carrier_forwarding_rules (org_id);

CREATE TABLE leads (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    phone      text,
    email      text,
    company    text,
    source     text,
    status     text        NOT NULL DEFAULT 'new',
    lead_score integer,
    notes      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT leads_status_check
        CHECK (status IN ('new', 'contacted', 'qualified', 'converted', 'lost')),
    CONSTRAINT leads_lead_score_check
        CHECK (lead_score BETWEEN 0 AND 100)
);
CREATE INDEX idx_leads_org_id ON leads (org_id);
CREATE INDEX idx_leads_status ON leads (status);

-- org_id nullable: system-level actions have no tenant.
CREATE TABLE audit_logs (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid        REFERENCES organizations (id) ON DELETE CASCADE,
    actor         text,
    action        text        NOT NULL,
    resource_type text,
    resource_id   text,
    details       jsonb       DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_audit_logs_org_id     ON audit_logs (org_id);
CREATE INDEX idx_audit_logs_created_at ON audit_logs (created_at DESC);

CREATE TABLE telephony_country_audit_log (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    old_country_code   text,
    new_country_code   text,
    old_telephony_mode text,
    new_telephony_mode text,
    changed_by         text,
    reason             text,
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT telephony_country_audit_log_old_telephony_mode_check
        CHECK (old_telephony_mode IN ('byoc', 'managed', 'none')),
    CONSTRAINT telephony_country_audit_log_new_telephony_mode_check
        CHECK (new_telephony_mode IN ('byoc', 'managed', 'none'))
);
CREATE INDEX idx_telephony_country_audit_log_org_id ON telephony_country_audit_log (org_id);

-- org_id nullable: e.g. a failed login for an unknown user has no tenant.
-- user_id deliberately has no FK so events survive profile deletion.
CREATE TABLE security_audit_log (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid        REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    uuid,
    event_type text        NOT NULL,
    severity   text        NOT NULL DEFAULT 'info',
    ip_address text,
    details    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT security_audit_log_severity_check
        CHECK (severity IN ('info', 'warning', 'critical'))
);
CREATE INDEX idx_security_audit_log_org_id     ON security_audit_log (org_id);
CREATE INDEX idx_security_audit_log_created_at ON security_audit_log (created_at DESC);

CREATE TABLE org_feature_flags (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    flag_name  text        NOT NULL,
    enabled    boolean     NOT NULL DEFAULT false,
    value      jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT org_feature_flags_org_id_flag_name_key UNIQUE (org_id, flag_name)
);

CREATE TABLE hot_lead_alerts (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contact_id       uuid        REFERENCES contacts (id) ON DELETE CASCADE,
    call_id          uuid        REFERENCES calls (id) ON DELETE SET NULL,
    lead_name        text,
    lead_phone       text,
    service_interest text,
    urgency_level    text,
    summary          text,
    lead_score       integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Set when the alert has been published (outbox style); NULL = pending.
    published_at     timestamptz,
    CONSTRAINT hot_lead_alerts_urgency_level_check
        CHECK (urgency_level IN ('high', 'medium', 'low')),
    CONSTRAINT hot_lead_alerts_lead_score_check
        CHECK (lead_score BETWEEN 0 AND 100),
    -- At most one alert per (org, contact, call), NULLs included, so that a
    -- retried insert hits ON CONFLICT instead of duplicating the alert.
    CONSTRAINT hot_lead_alerts_org_contact_call_key
        UNIQUE NULLS NOT DISTINCT (org_id, contact_id, call_id)
);
CREATE INDEX idx_hot_lead_alerts_contact_id ON hot_lead_alerts (contact_id);
CREATE INDEX idx_hot_lead_alerts_call_id    ON hot_lead_alerts (call_id);
CREATE INDEX idx_hot_lead_alerts_unpublished ON hot_lead_alerts (created_at)
    WHERE published_at IS NULL;

CREATE TABLE twilio_subaccounts (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    twilio_account_sid text        NOT NULL,
    friendly_name      text,
    status             text        NOT NULL DEFAULT 'active',
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT twilio_subaccounts_status_check
        CHECK (status IN ('active', 'suspended', 'closed')),
    -- One subaccount per tenant, and a subaccount belongs to one tenant.
    CONSTRAINT twilio_subaccounts_org_id_key UNIQUE (org_id),
    CONSTRAINT twilio_subaccounts_twilio_account_sid_key UNIQUE (twilio_account_sid)
);

CREATE TABLE escalation_rules (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text        NOT NULL,
    trigger_type    text        NOT NULL,
    trigger_value   text,
    transfer_number text,
    priority        integer     NOT NULL DEFAULT 0,
    enabled         boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT escalation_rules_trigger_type_check
        CHECK (trigger_type IN ('keyword', 'sentiment', 'urgency',
                                'transfer_request', 'manual'))
);
CREATE INDEX idx_escalation_rules_org_id ON escalation_rules (org_id);

-- Global (no org_id, no RLS).
CREATE TABLE integration_settings (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    key         text        NOT NULL,
    value       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integration_settings_key_key UNIQUE (key)
);

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------

-- Webhook idempotency only needs a short window (the seed: 24 hours).
CREATE FUNCTION cleanup_old_webhook_events(retention interval DEFAULT interval '24 hours')
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM processed_webhook_events
     WHERE created_at < now() - retention;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;

-- ---------------------------------------------------------------------------
-- Row-level security
--
-- Policies bind non-owner roles (vox_reader). RLS is ENABLEd but not FORCEd:
-- the owner role the actors connect as bypasses it and does its own org
-- scoping. That is also why the old system's "service_role_all" policies
-- are not needed.
-- ---------------------------------------------------------------------------

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_org_isolation ON organizations
    USING (id = app_org_id()) WITH CHECK (id = app_org_id());

ALTER TABLE profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY profiles_org_isolation ON profiles
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY contacts_org_isolation ON contacts
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE calls ENABLE ROW LEVEL SECURITY;
CREATE POLICY calls_org_isolation ON calls
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE appointments ENABLE ROW LEVEL SECURITY;
CREATE POLICY appointments_org_isolation ON appointments
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE call_tracking ENABLE ROW LEVEL SECURITY;
CREATE POLICY call_tracking_org_isolation ON call_tracking
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE org_tools ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_tools_org_isolation ON org_tools
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE onboarding_submissions ENABLE ROW LEVEL SECURITY;
CREATE POLICY onboarding_submissions_org_isolation ON onboarding_submissions
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE credit_transactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY credit_transactions_org_isolation ON credit_transactions
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

-- Unattributed events (org_id NULL) are visible to every tenant, as in the
-- old system.
ALTER TABLE processed_webhook_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY processed_webhook_events_org_isolation ON processed_webhook_events
    USING (org_id IS NULL OR org_id = app_org_id())
    WITH CHECK (org_id IS NULL OR org_id = app_org_id());

ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
CREATE POLICY agents_org_isolation ON agents
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE services ENABLE ROW LEVEL SECURITY;
CREATE POLICY services_org_isolation ON services
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE knowledge_base ENABLE ROW LEVEL SECURITY;
CREATE POLICY knowledge_base_org_isolation ON knowledge_base
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

-- No org_id of their own: isolate through the parent knowledge_base row
-- (which is itself RLS-filtered for the querying role).
ALTER TABLE knowledge_base_chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY knowledge_base_chunks_org_isolation ON knowledge_base_chunks
    USING (EXISTS (SELECT 1 FROM knowledge_base kb
                    WHERE kb.id = knowledge_base_chunks.knowledge_base_id
                      AND kb.org_id = app_org_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM knowledge_base kb
                         WHERE kb.id = knowledge_base_chunks.knowledge_base_id
                           AND kb.org_id = app_org_id()));

ALTER TABLE knowledge_base_changelog ENABLE ROW LEVEL SECURITY;
CREATE POLICY knowledge_base_changelog_org_isolation ON knowledge_base_changelog
    USING (EXISTS (SELECT 1 FROM knowledge_base kb
                    WHERE kb.id = knowledge_base_changelog.knowledge_base_id
                      AND kb.org_id = app_org_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM knowledge_base kb
                         WHERE kb.id = knowledge_base_changelog.knowledge_base_id
                           AND kb.org_id = app_org_id()));

ALTER TABLE integrations ENABLE ROW LEVEL SECURITY;
CREATE POLICY integrations_org_isolation ON integrations
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE org_credentials ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_credentials_org_isolation ON org_credentials
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE carrier_forwarding_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY carrier_forwarding_rules_org_isolation ON carrier_forwarding_rules
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY leads_org_isolation ON leads
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_org_isolation ON audit_logs
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE telephony_country_audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY telephony_country_audit_log_org_isolation ON telephony_country_audit_log
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE security_audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY security_audit_log_org_isolation ON security_audit_log
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE org_feature_flags ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_feature_flags_org_isolation ON org_feature_flags
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE hot_lead_alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY hot_lead_alerts_org_isolation ON hot_lead_alerts
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE twilio_subaccounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY twilio_subaccounts_org_isolation ON twilio_subaccounts
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

ALTER TABLE escalation_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY escalation_rules_org_isolation ON escalation_rules
    USING (org_id = app_org_id()) WITH CHECK (org_id = app_org_id());

-- ---------------------------------------------------------------------------
-- Read-only tenant role
-- ---------------------------------------------------------------------------

-- Roles are cluster-wide and several databases of one cluster may run this
-- migration at the same time: the existence check covers the common case,
-- and the handler covers losing the race (a concurrent CREATE ROLE surfaces
-- as duplicate_object or as unique_violation on pg_authid).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vox_reader') THEN
        CREATE ROLE vox_reader NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO vox_reader;
GRANT EXECUTE ON FUNCTION app_org_id() TO vox_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO vox_reader;
