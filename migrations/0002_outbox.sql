-- 0002_outbox.sql
--
-- The transactional outbox of the actor runtime. A message an actor emits
-- (an alert) is written here in the same transaction as the effect that
-- caused it, and published to NATS after the commit with msg_id as its
-- Nats-Msg-Id. A crash between commit and publish leaves the row
-- unpublished; the next run (or another instance) publishes it, and
-- JetStream's duplicate window drops a second copy.

CREATE TABLE vox_outbox (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id       text        NOT NULL,
    subject      text        NOT NULL,
    payload      bytea       NOT NULL,
    actor        text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    -- Emitting the same message twice (a redelivered event) is a no-op.
    CONSTRAINT vox_outbox_msg_id_key UNIQUE (msg_id)
);

-- The healer's scan: unpublished rows, oldest first.
CREATE INDEX idx_vox_outbox_unpublished ON vox_outbox (id)
    WHERE published_at IS NULL;
-- The purge of published rows.
CREATE INDEX idx_vox_outbox_published_at ON vox_outbox (published_at)
    WHERE published_at IS NOT NULL;
