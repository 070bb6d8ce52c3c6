/*
 * dispose.h - the consume loop's decisions, as pure functions: given what
 * happened to a batch and to each of its messages, what the loop does with
 * each one (ack, nak with a delay, dead-letter, run again, isolate, report
 * progress). src/io/runtime_write.c only carries the decisions out.
 *
 * The rule behind every decision: a dead letter means "this message can
 * never succeed". Only a definite defect of the message earns one (the
 * decoder's or the handler's refusal, or a data error the database raised
 * for that message alone while it took others). A fault of the world
 * around the message (the database read-only, a timeout, a missing GRANT,
 * column or table, a full disk, a lost connection, anything unknown)
 * makes the message wait and be retried with a growing delay.
 */
#ifndef VOX_DISPOSE_H
#define VOX_DISPOSE_H

#include "core/common.h"

/* What kind of failure a transaction met. */
typedef enum vox_fault {
	VOX_FAULT_NONE = 0, /* it committed */
	VOX_FAULT_RETRY,    /* 40001, 40P01: run the same transaction again */
	VOX_FAULT_DATA,     /* 22xxx, 23xxx, or a refusal status: a message
			     * may be at fault; isolation finds out which */
	VOX_FAULT_WORLD,    /* everything else: wait and retry */
} vox_fault;

/*
 * The class of a failed transaction from its status and the SQLSTATE the
 * server reported (NULL or "" when there was none, as when the connection
 * was lost). A SQLSTATE decides when there is one (except that a handler
 * returning VOX_E_RETRY for a class 22/23 error, a race it recognised,
 * gets its re-run); otherwise the status:
 * VOX_E_RETRY is RETRY, the refusal statuses (decode, invalid, conflict,
 * unknown org, not found, too large, org mismatch) are DATA, every other
 * status (transient ones, internal, config, crypto, ...) is WORLD.
 */
vox_fault vox_fault_of(vox_status st, const char *sqlstate);

/* Short name of a class for logs and statistics: "none", "retry", ... */
const char *vox_fault_str(vox_fault f);

/* ---- a failed batch ------------------------------------------------------ */

typedef enum vox_step {
	VOX_STEP_SETTLE,  /* it committed: settle each message (vox_dispose) */
	VOX_STEP_RERUN,   /* run the same transaction again at once */
	VOX_STEP_WAIT,    /* nak every message with its delay and back off */
	VOX_STEP_ISOLATE, /* run each message in a transaction of its own */
} vox_step;

typedef struct vox_batch_outcome {
	vox_fault fault;     /* NONE when it committed */
	int reruns;          /* times this transaction already ran again */
	bool may_isolate;    /* the breaker allows an isolation round now */
} vox_batch_outcome;

/* At most this many immediate re-runs of a transaction that met RETRY. */
#define VOX_MAX_RERUNS 3

/* The next step for a batch (or an isolated message's own transaction,
 * which is a batch of one). */
vox_step vox_dispose_batch(const vox_batch_outcome *o);

/* ---- one message ------------------------------------------------------- */

typedef enum vox_verdict {
	VOX_VERDICT_UNDECODABLE, /* the decoder or validator refused it */
	VOX_VERDICT_APPLIED,     /* committed */
	VOX_VERDICT_REFUSED,     /* refused by the handler (vox_item_reject),
				  * committed with no effect */
	VOX_VERDICT_DEFERRED,    /* deferred by the handler (vox_item_defer) */
	VOX_VERDICT_FAILED,      /* its own transaction failed (fault given) */
	VOX_VERDICT_NOT_RUN,     /* not applied: its batch waits, or the loop
				  * stops before reaching it */
} vox_verdict;

typedef struct vox_item_outcome {
	vox_verdict verdict;
	vox_fault fault;      /* FAILED only */
	uint64_t delivered;   /* JetStream's count, 1 on the first delivery */
	int64_t deferrals;    /* DEFERRED: times deferred, this one included */
	bool evidence;        /* FAILED with DATA: the database took other
			       * messages meanwhile (see vox_suspects) */
	bool stopping;        /* the actor is shutting down */
} vox_item_outcome;

typedef enum vox_action {
	VOX_ACT_ACK,
	VOX_ACT_NAK,          /* redeliver after delay_ms */
	VOX_ACT_DEAD_LETTER,  /* republish to dlq.<subject>, then terminate */
} vox_action;

typedef struct vox_disposition {
	vox_action action;
	int64_t delay_ms;     /* NAK only */
	const char *rule;     /* which row of the table decided (for tests
			       * and debug logs) */
} vox_disposition;

typedef struct vox_dispose_cfg {
	int64_t retry_max_ms;     /* VOX_RETRY_MAX_MS: longest nak delay */
	int64_t defer_limit;      /* VOX_DEFER_DELIVERIES */
} vox_dispose_cfg;

/* What to do with one message. Never fails: every outcome has a row. */
vox_disposition vox_dispose(const vox_dispose_cfg *cfg,
			    const vox_item_outcome *o);

/* The growing retry delay: 250 ms for n = 1, doubling, capped at max. */
int64_t vox_retry_delay_ms(uint64_t n, int64_t max_ms);

/* The writer's own back-off after a wait: 0 -> 100 ms -> doubling, capped. */
int64_t vox_backoff_next(int64_t prev_ms, int64_t max_ms);

/* Long batches tell JetStream they are still in progress: true when
 * a third of AckWait has passed since the last report (or the start). */
bool vox_progress_due(int64_t now_ms, int64_t last_ms, int64_t ack_wait_ms);

/*
 * Whether to prepare the statements again (so that PostgreSQL plans them
 * again) after a commit took a writer's count of applied messages from
 * before to after: when it passes 512, 1,024, 2,048 ... 2^24, then every
 * 2^24. A prepared statement's generic plan is made once, at its first
 * execution (force_generic_plan, src/io/pg.c), from the tables as they
 * were then; on a first start (empty tables) it is sequential scans,
 * kept while the tables grow. Planning
 * again as the rows written double keeps the plan made for tables at
 * least half the size of what this writer added.
 */
bool vox_replan_due(uint64_t before, uint64_t after);

/* ---- evidence that a data error is the message's own -------------------- */

/*
 * A message whose own transaction failed with a data error is dead-lettered
 * only with evidence that the fault is its own: another message committed
 * in the same isolation round, or since this message last failed. Without
 * it (every message fails the same way: a constraint added by hand, a
 * schema that moved) the message waits. The suspects remember, per input,
 * the last messages that failed without evidence and the commit count at
 * that time; the memory is small and bounded, and losing it (a restart)
 * only delays a dead letter by one more delivery.
 */
#define VOX_SUSPECTS 64

typedef struct vox_suspects {
	struct {
		uint64_t seq;     /* stream sequence, 0: free */
		uint64_t commits; /* commit count when it failed */
	} slot[VOX_SUSPECTS];
	size_t next;
} vox_suspects;

/* Evidence for seq given the commits of its round and the input's
 * total commit count now. */
bool vox_suspects_evidence(const vox_suspects *s, uint64_t seq,
			   uint64_t round_commits, uint64_t commits);

/* Remember seq as failed without evidence at commit count commits. */
void vox_suspects_note(vox_suspects *s, uint64_t seq, uint64_t commits);

/* Forget seq (it was applied or dead-lettered). */
void vox_suspects_forget(vox_suspects *s, uint64_t seq);

/* ---- the breaker ---------------------------------------------------------- */

/*
 * If a whole batch fails the same way again and again, the loop stops
 * isolating and backs off: after an isolation round that committed
 * nothing, a data failure of a batch makes it wait instead of isolating,
 * until probe_at (a growing delay); then one round is tried again. Any
 * commit closes the breaker.
 */
typedef struct vox_breaker {
	int empty_rounds;   /* rounds in a row that committed nothing */
	int64_t probe_at_ms;
	int64_t delay_ms;
} vox_breaker;

bool vox_breaker_may_isolate(const vox_breaker *b, int64_t now_ms);
void vox_breaker_round(vox_breaker *b, bool committed, int64_t now_ms,
		       int64_t max_ms);
void vox_breaker_commit(vox_breaker *b);

/* ---- logging a fault once ------------------------------------------------ */

/*
 * An outage is logged when it starts, once more for each other SQLSTATE
 * it shows (a failover drops the connections first, then the database
 * turns out read-only: both are worth a line), and once when it ends;
 * however many batches wait meanwhile. The SQLSTATE of its latest failure
 * is kept.
 */
#define VOX_FAULT_LOG_STATES 8

typedef struct vox_fault_log {
	bool active;
	char sqlstate[6];                         /* the latest */
	char seen[VOX_FAULT_LOG_STATES][6];       /* logged in this outage */
	size_t nseen;
} vox_fault_log;

/* A failure with this SQLSTATE ("" if none): true when it must be logged
 * (the outage starts, or shows a SQLSTATE not logged yet). */
bool vox_fault_log_failure(vox_fault_log *l, const char *sqlstate);

/* A commit: true once, when it ends an outage. */
bool vox_fault_log_commit(vox_fault_log *l);

#endif
