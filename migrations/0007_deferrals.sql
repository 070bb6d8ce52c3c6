-- Deferrals of the consume loop (src/io/runtime.c). A message that waits
-- for another (a refund before the payment it refunds) is put back on
-- purpose, and dead-lettered once it has been deferred
-- VOX_DEFER_DELIVERIES times. JetStream's delivery count cannot tell those
-- deliveries from the ones naked because the database was at fault, so
-- the deferrals are counted here, in the same transaction as the batch
-- that deferred the message: an outage never spends a message's window.
--
-- One row per deferred message of a consumer (consumer, stream sequence);
-- msg_id guards against a sequence reused by a recreated stream. A row
-- goes when its message is applied or dead-lettered; rows older than 30
-- days (a purged stream) are removed by the outbox healer's purge.
CREATE TABLE vox_deferrals (
    consumer    text        NOT NULL,
    stream_seq  bigint      NOT NULL,
    msg_id      text        NOT NULL,
    deferrals   integer     NOT NULL DEFAULT 1 CHECK (deferrals > 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream_seq)
);
