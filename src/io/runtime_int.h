/*
 * runtime_int.h - the consume loop's own types and the functions its files
 * share; not for use outside src/io/runtime*.c.
 *
 * Each input runs two threads: a fetcher that pulls a batch and decodes it
 * while the writer applies the previous one (a queue of one batch between
 * them), and a writer that owns the Postgres connection and does every
 * ack, nak, term and dead letter. Keeping all message dispositions on the
 * writer makes the order "commit, then ack" hold by construction.
 *
 *   runtime.c          settings, lifecycle, keeper and ticker threads
 *   runtime_consume.c  consumers, the pull, the fetcher thread
 *   runtime_write.c    the writer thread: transactions and dispositions
 *   runtime_outbox.c   emitted messages: outbox rows, publish, heal
 *   runtime_dlq.c      dead letters
 */
#ifndef VOX_RUNTIME_INT_H
#define VOX_RUNTIME_INT_H

#include "io/runtime.h"

#include "core/buf.h"
#include "core/dispose.h"
#include "core/jsack.h"
#include "core/metrics.h"
#include "io/log.h"
#include "io/natsconn.h"
#include "io/pg.h"
#include "io/pull.h"
#include "vox/client.h"
#include "vox/subjects.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

/* ---- batches and the queue between fetcher and writer ----------------- */

/* What the fetcher gathered for one transaction: the fetches since the
 * writer took the last batch, up to VOX_BATCH messages and VOX_BATCH_KB. */
typedef struct batch {
	natsMsgList *lists; /* own the messages */
	size_t nlists, caplists;
	vox_item *items;
	size_t n, cap;
	size_t bytes;
	int64_t progress_ms; /* fetched, or last reported in progress */
} batch;

typedef struct emitted {
	char *msg_id;
	char *subject;
	unsigned char *payload;
	size_t len;
	int64_t id; /* outbox row */
} emitted;

struct vox_tx {
	vox_runtime *rt;
	PGconn *pg;
	const char *actor;
	emitted *rows;
	size_t nrows, caprows;
};

typedef struct input_rt {
	vox_runtime *rt;
	vox_input def;
	vox_pull *pull;
	pthread_t fetcher, writer;
	bool threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	batch *queued; /* at most one batch waits */
	bool writer_busy; /* the writer holds a batch */
	bool fetcher_done;
	uint64_t pending; /* the consumer's pending count at the last fetch */
	atomic_uint_fast64_t lag; /* messages behind: the last delivery's or
				   * the last consumer info's count */
	PGconn *pg;
	int64_t backoff_ms;     /* the writer's pause after a wait */
	uint64_t commits;       /* transactions this input committed */
	uint64_t applied;       /* messages those transactions applied */
	bool replan;            /* prepare the statements again (growth) */
	vox_suspects suspects;  /* data failures still without evidence */
	vox_breaker breaker;
	vox_fault_log flog;
	int64_t fault_since_ms; /* start of the outage being logged */
	batch *inhand;          /* the batch the writer holds (progress) */
	/* dead letters: published asynchronously on their own context; the
	 * ack handler records the stream sequences JetStream stored */
	jsCtx *dlq_js;
	pthread_mutex_t dlq_lock;
	uint64_t *dlq_stored;
	size_t ndlq_stored, capdlq_stored;
} input_rt;

struct vox_runtime {
	natsConnection *nc;
	jsCtx *js;
	char *actor;
	char *pg_dsn;
	vox_runtime_config cfg;
	vox_handler handler;
	input_rt *inputs;
	size_t ninputs;
	atomic_bool stop;
	bool started;
	pthread_t ticker; /* progress of long batches */
	bool ticking;
	/* housekeeping (outbox healing and purge, the handler's tick) on a
	 * thread and a connection of its own, off the writers' path */
	pthread_t keeper;
	bool keeping;
	atomic_bool writers_done;
	PGconn *keeper_pg;
	/* outbox rows JetStream stored whose mark failed: marked again
	 * before anything is healed, and never published twice meanwhile */
	pthread_mutex_t outbox_lock;
	int64_t *unmarked;
	size_t nunmarked, capunmarked;
	/* statistics */
	atomic_uint_fast64_t received, batches, acked, dead_letters, naked,
		redelivered, committed, isolated, outbox_published, lag,
		deferred, faults, last_sqlstate, outbox_refused;
	vox_counter_set dl_reasons;   /* dead letters by reason */
	vox_counter_set fault_classes; /* faults by SQLSTATE class */
	vox_hist batch_size;          /* messages per committed transaction */
	vox_hist apply_us;            /* a batch's transaction, in µs */
	atomic_int_fast64_t outbox_age_ms; /* oldest unpublished row, -1 unknown */
	atomic_int_fast64_t heartbeat_ms;  /* the ticker's last round */
};

/* How a message is settled (vox_rt_settle_msg). */
typedef enum how { HOW_ACK, HOW_NAK, HOW_TERM } how;

/* runtime.c */
int64_t vox_rt_now_ms(void);
int64_t vox_rt_now_us(void);
void vox_rt_nap(vox_runtime *rt, int64_t ms);

/* runtime_consume.c */
void vox_rt_batch_free(batch *b);
/* Create the input's durable consumer, or update it to the settings. */
vox_status vox_rt_ensure_consumer(vox_runtime *rt, input_rt *in, char *err,
				  size_t errlen) VOX_MUST_CHECK;
/* Open the input's pull (its private inbox). */
vox_status vox_rt_subscribe(vox_runtime *rt, input_rt *in, char *err,
			    size_t errlen) VOX_MUST_CHECK;
void *vox_rt_fetcher_main(void *arg);

/* runtime_write.c */
void vox_rt_settle_msg(input_rt *in, vox_item *it, how h, int64_t delay_ms);
void vox_rt_nak_waiting(input_rt *in, vox_item *it);
void vox_rt_report_progress(const vox_runtime *rt, batch *b, int64_t now);
void *vox_rt_writer_main(void *arg);

/* runtime_outbox.c */
void vox_rt_tx_release(vox_tx *tx);
void vox_rt_fault(vox_runtime *rt, const char *point);
void vox_rt_flush_outbox(vox_runtime *rt, input_rt *in, vox_tx *tx);
void vox_rt_heal_outbox(vox_runtime *rt, PGconn *pg, int64_t age_ms);
void vox_rt_purge_outbox(vox_runtime *rt, PGconn *pg);
/* Measure the age of the oldest unpublished row (outbox_age_ms). */
void vox_rt_outbox_age(vox_runtime *rt, PGconn *pg);

/* runtime_dlq.c */
void vox_rt_dead_letter_acked(jsCtx *js, natsMsg *m, jsPubAck *pa,
			      jsPubAckErr *pae, void *closure);
void vox_rt_dead_letter_all(vox_runtime *rt, input_rt *in, vox_item **items,
			    size_t n);

#endif
