/*
 * runtime.h - the consume loop every consuming actor shares. It fetches
 * batches from the actor's durable pull consumers, decodes and validates
 * them in the pure core, dead-letters what can never succeed, hands the
 * rest to the actor's handler inside one Postgres transaction, commits,
 * then acknowledges; messages the handler emits go through a transactional
 * outbox and are published after the commit.
 *
 * Nothing is acknowledged that was not committed. What happens to each
 * message is decided by the pure policy of core/dispose.h: a fault of the
 * world (the database down, read-only, timing out, missing a GRANT, a
 * column or a table; NATS away) naks the batch with a growing delay and
 * the runtime reconnects by itself; only a definite defect of a message
 * (the decoder's or the handler's refusal, or a data error the database
 * raised for that message alone) earns a dead letter.
 */
#ifndef VOX_RUNTIME_H
#define VOX_RUNTIME_H

#include "core/config.h"
#include "vox/event.h"

#include <libpq-fe.h>
#include <nats/nats.h>

/* One message of a batch, as the handler sees it. */
typedef struct vox_item {
	natsMsg *msg;        /* borrowed; valid during apply */
	vox_event ev;        /* decoded; its strings point into msg */
	uint64_t stream_seq; /* sequence in the EVENTS stream */
	uint64_t delivered;  /* 1 on the first delivery */
	vox_error err;       /* a refusal when err.status != VOX_OK: set by
				the decoder, vox_item_reject or vox_item_defer,
				and carried to the dead letter's headers */
	bool defer;          /* refused for now only (vox_item_defer) */
	int64_t deferrals;   /* set by the runtime: times deferred so far */
	bool settled;        /* the runtime acked, naked or terminated it */
} vox_item;

/* Whether the item was refused (by the decoder or the handler). */
static inline bool vox_item_refused(const vox_item *it)
{
	return it->err.status != VOX_OK;
}

/* Refuse one item permanently (VOX_E_CONFLICT, VOX_E_UNKNOWN_ORG, ...)
 * with a stable reason ("conflict", "unknown_org", ...), the field at
 * fault (or NULL) and what is wrong, as vox_error_set: the handler must
 * then leave no effect of it; the runtime dead-letters it after the
 * commit. */
void vox_item_reject(vox_item *it, vox_status st, const char *reason,
		     const char *field, const char *fmt, ...) VOX_PRINTF(5, 6);

/* Refuse one item for now: what it depends on may not have arrived yet
 * (a refund before the payment it refunds). As with vox_item_reject the
 * handler leaves no effect of it; the runtime naks it with the growing
 * retry delay and, once it has been deferred VOX_DEFER_DELIVERIES times
 * (counted in the database with the batch; deliveries naked because of a
 * fault do not count), dead-letters it with st and the reason. */
void vox_item_defer(vox_item *it, vox_status st, const char *reason,
		    const char *field, const char *fmt, ...) VOX_PRINTF(5, 6);

/* The open transaction a handler works in. */
typedef struct vox_tx vox_tx;

PGconn *vox_tx_pg(vox_tx *tx);

/*
 * Emit a message (an alert) from this transaction: it is written to the
 * outbox now and published after the commit, with its alert id as
 * Nats-Msg-Id, on "<kind>.<org_id>". A message whose id was emitted
 * before is not emitted again. VOX_E_INVALID if ev breaks the contract.
 */
vox_status vox_tx_emit(vox_tx *tx, const vox_event *ev) VOX_MUST_CHECK;

typedef struct vox_handler {
	/* Called after every (re)connection to Postgres: prepare statements.
	 * May be NULL. */
	vox_status (*prepare)(void *ctx, PGconn *c);
	/*
	 * Apply items (stream order) inside an open transaction. Return
	 * VOX_OK to commit. Any other status rolls back; what follows is
	 * decided by the class of the failure (vox_fault_of: the SQLSTATE
	 * of the first error on the connection if there was one, else this
	 * status): VOX_E_RETRY runs the batch again; a refusal status or a
	 * data error isolates the failing message; anything else waits.
	 */
	vox_status (*apply)(void *ctx, vox_tx *tx, vox_item *items, size_t n);
	/* Called between batches (about every VOX_OUTBOX_INTERVAL_MS) by one
	 * thread of the instance, outside any transaction: periodic chores
	 * such as retention. May be NULL. */
	void (*tick)(void *ctx, PGconn *c);
	void *ctx;
} vox_handler;

/* Where an actor reads from: one durable pull consumer on EVENTS. */
typedef struct vox_input {
	const char *durable; /* consumer name, e.g. "vox-billing-calls" */
	const char *filter;  /* subject filter, e.g. "call.ended.*" */
} vox_input;

/* Runtime settings, parsed from VOX_* variables (vox_runtime_vars). */
typedef struct vox_runtime_config {
	int64_t batch;             /* most messages in one transaction */
	int64_t batch_kb;          /* most message bytes in one, in KiB */
	int64_t fetch_wait_ms;     /* how long an idle fetch waits */
	int64_t ack_wait_s;        /* consumer AckWait */
	int64_t max_ack_pending;   /* consumer MaxAckPending */
	int64_t max_deliver;       /* consumer MaxDeliver: -1 (unlimited) only */
	int64_t replicas;          /* stream replicas */
	int64_t max_age_h;         /* EVENTS/ALERTS retention */
	int64_t dlq_max_age_h;     /* DLQ retention */
	int64_t max_bytes_mb;      /* per stream, -1 unlimited */
	int64_t dup_window_s;      /* JetStream duplicate window */
	int64_t retry_max_ms;      /* cap of the nak and reconnect delays */
	int64_t defer_deliveries;  /* deliveries of a deferred item before its
				    * dead letter */
	int64_t outbox_interval_ms;/* outbox healer period */
	int64_t outbox_age_ms;     /* unpublished rows older than this are healed */
	int64_t outbox_keep_h;     /* published rows are purged after this */
	const char *fault;         /* test fault injection, "" in production */
	/* deliveries arrive under this inbox prefix (the connection's, see
	 * vox_nats_inbox_prefix); not a variable: NULL or "" is "_INBOX" */
	const char *inbox_prefix;
} vox_runtime_config;

extern const vox_cfg_var vox_runtime_vars[];
extern const size_t vox_runtime_nvars;

typedef struct vox_runtime vox_runtime;

/* Checks that a table's ranges cannot express: a finite VOX_MAX_DELIVER
 * would let JetStream drop a message after its last delivery without a
 * dead letter, and a VOX_MAX_ACK_PENDING below 2 x VOX_BATCH would stall
 * deliveries while a batch is written; both are refused. Appends one
 * line per problem to errors; VOX_E_CONFIG if there was one. */
vox_status vox_runtime_config_check(const vox_runtime_config *cfg,
				    vox_buf *errors) VOX_MUST_CHECK;

/*
 * Create the runtime of an actor: ensures its consumers and subscribes.
 * nc is borrowed. actor names the actor in logs and dead letters.
 */
vox_status vox_runtime_new(vox_runtime **out, natsConnection *nc,
			   const char *actor, const char *pg_dsn,
			   const vox_runtime_config *cfg,
			   const vox_input *inputs, size_t ninputs,
			   const vox_handler *handler, char *err,
			   size_t errlen) VOX_MUST_CHECK;

/* Start the fetch and apply threads. */
vox_status vox_runtime_start(vox_runtime *rt) VOX_MUST_CHECK;

/* Stop fetching, finish and commit the batches in hand, ack, publish the
 * outbox, join the threads. Bounded by the fetch wait plus one batch. */
void vox_runtime_stop(vox_runtime *rt);

/* Stops if needed, then frees. Accepts NULL. */
void vox_runtime_free(vox_runtime *rt);

/* Append the consume statistics as ADR-32 metadata members (strings). */
void vox_runtime_stats(vox_runtime *rt, vox_buf *members);

/* Append the consume metrics in the Prometheus text format. */
void vox_runtime_metrics(vox_runtime *rt, vox_buf *out);

/* Whether the runtime's threads went round within the last within_ms
 * (every input's lock was free at least once): the watchdog's test. */
bool vox_runtime_alive(vox_runtime *rt, int64_t within_ms);

/* Whether every input's durable consumer exists (asked of JetStream,
 * which also refreshes the consumer lag). VOX_E_NOT_FOUND when one is
 * missing; err says which. */
vox_status vox_runtime_check_consumers(vox_runtime *rt, char *err,
				       size_t errlen) VOX_MUST_CHECK;

#endif
