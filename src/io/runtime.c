/*
 * runtime.c - the consume loop (see runtime.h).
 *
 * Each input runs two threads: a fetcher that pulls a batch and decodes it
 * while the writer applies the previous one (a queue of one batch between
 * them), and a writer that owns the Postgres connection and does every
 * ack, nak, term and dead letter. Keeping all message dispositions on the
 * writer makes the order "commit, then ack" hold by construction.
 */
#include "io/runtime.h"

#include "core/buf.h"
#include "core/dispose.h"
#include "core/jsack.h"
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

#define RC(f) offsetof(vox_runtime_config, f)

const vox_cfg_var vox_runtime_vars[] = {
	{"VOX_BATCH", VOX_CFG_INT, "1024", 1, 4096, NULL, RC(batch),
	 "most messages committed in one transaction (a batch holds what has"
	 " arrived, up to this)"},
	{"VOX_BATCH_KB", VOX_CFG_INT, "8192", 64, 1048576, NULL, RC(batch_kb),
	 "most message bytes in one transaction, in KiB"},
	{"VOX_FETCH_WAIT_MS", VOX_CFG_INT, "500", 50, 30000, NULL,
	 RC(fetch_wait_ms), "how long an idle fetch waits for the first message"},
	{"VOX_ACK_WAIT_S", VOX_CFG_INT, "30", 1, 3600, NULL, RC(ack_wait_s),
	 "consumer AckWait: redelivery after this without an ack"},
	{"VOX_MAX_ACK_PENDING", VOX_CFG_INT, "4096", 1, 1000000, NULL,
	 RC(max_ack_pending), "consumer MaxAckPending"},
	{"VOX_MAX_DELIVER", VOX_CFG_INT, "-1", -1, 1000000, NULL,
	 RC(max_deliver), "consumer MaxDeliver: only -1 (unlimited) is accepted,"
	 " since JetStream drops a message after its last delivery"},
	{"VOX_STREAM_REPLICAS", VOX_CFG_INT, "1", 1, 5, NULL, RC(replicas),
	 "replicas of the streams (3 on a cluster)"},
	{"VOX_STREAM_MAX_AGE_H", VOX_CFG_INT, "168", 1, 87600, NULL,
	 RC(max_age_h), "EVENTS and ALERTS retention in hours"},
	{"VOX_DLQ_MAX_AGE_H", VOX_CFG_INT, "720", 1, 87600, NULL,
	 RC(dlq_max_age_h), "DLQ retention in hours"},
	{"VOX_STREAM_MAX_MB", VOX_CFG_INT, "-1", -1, 100000000, NULL,
	 RC(max_bytes_mb), "size limit of each stream in MiB (-1: none)"},
	{"VOX_DUPLICATE_WINDOW_S", VOX_CFG_INT, "120", 1, 86400, NULL,
	 RC(dup_window_s), "JetStream duplicate window"},
	{"VOX_DEFER_DELIVERIES", VOX_CFG_INT, "10", 1, 100000, NULL,
	 RC(defer_deliveries),
	 "deferrals of a message that waits for another (a refund before its"
	 " payment) before it is dead-lettered"},
	{"VOX_RETRY_MAX_MS", VOX_CFG_INT, "30000", 100, 3600000, NULL,
	 RC(retry_max_ms), "longest delay between retries"},
	{"VOX_OUTBOX_INTERVAL_MS", VOX_CFG_INT, "1000", 10, 600000, NULL,
	 RC(outbox_interval_ms), "how often unpublished outbox rows are healed"},
	{"VOX_OUTBOX_AGE_MS", VOX_CFG_INT, "2000", 0, 600000, NULL,
	 RC(outbox_age_ms), "outbox rows older than this are healed"},
	{"VOX_OUTBOX_KEEP_H", VOX_CFG_INT, "24", 1, 8760, NULL,
	 RC(outbox_keep_h), "published outbox rows are purged after this"},
	{"VOX_FAULT", VOX_CFG_ENUM, "none", 0, 0,
	 "none|after-commit|after-publish", RC(fault),
	 "fault injection for crash tests: exit at that point"},
};
const size_t vox_runtime_nvars = VOX_NELEM(vox_runtime_vars);

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
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Sleep up to ms, waking early when the runtime is stopping. */
static void nap(vox_runtime *rt, int64_t ms)
{
	while (ms > 0 && !atomic_load(&rt->stop)) {
		int64_t step = ms > 50 ? 50 : ms;
		sleep_ms(step);
		ms -= step;
	}
}

static void batch_free(batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nlists; i++)
		natsMsgList_Destroy(&b->lists[i]);
	free(b->lists);
	free(b->items);
	free(b);
}

void vox_item_reject(vox_item *it, vox_status st, const char *fmt, ...)
{
	va_list ap;
	it->result = st;
	it->code = NULL;
	it->defer = false;
	va_start(ap, fmt);
	vsnprintf(it->reason, sizeof(it->reason), fmt, ap);
	va_end(ap);
}

void vox_item_defer(vox_item *it, vox_status st, const char *fmt, ...)
{
	va_list ap;
	it->result = st;
	it->code = NULL;
	it->defer = true;
	va_start(ap, fmt);
	vsnprintf(it->reason, sizeof(it->reason), fmt, ap);
	va_end(ap);
}

/* ---- streams and consumers -------------------------------------------- */

static vox_status subscribe(vox_runtime *rt, input_rt *in, char *err,
			    size_t errlen);

static vox_status ensure_consumer(vox_runtime *rt, input_rt *in, char *err,
				  size_t errlen)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	jsConsumerConfig_Init(&cc);
	cc.Durable = in->def.durable;
	cc.Description = rt->actor;
	cc.FilterSubject = in->def.filter;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = rt->cfg.ack_wait_s * 1000000000LL;
	cc.MaxDeliver = rt->cfg.max_deliver;
	cc.MaxAckPending = rt->cfg.max_ack_pending;
	cc.MaxRequestBatch = rt->cfg.batch;
	cc.Replicas = rt->cfg.replicas;
	natsStatus s = js_AddConsumer(&ci, rt->js, VOX_STREAM_EVENTS, &cc, NULL, &jerr);
	if (s != NATS_OK && jerr != 0) {
		/* exists with other settings: update what may be updated */
		jsConsumerInfo_Destroy(ci);
		ci = NULL;
		jerr = 0;
		s = js_UpdateConsumer(&ci, rt->js, VOX_STREAM_EVENTS, &cc, NULL, &jerr);
	}
	jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK) {
		snprintf(err, errlen, "consumer %s: %s (%d)", in->def.durable,
			 nats_GetLastError(NULL), (int)jerr);
		return vox_nats_status(s) == VOX_E_INTERNAL ? VOX_E_CONFIG
							    : vox_nats_status(s);
	}
	return subscribe(rt, in, err, errlen);
}

static vox_status subscribe(vox_runtime *rt, input_rt *in, char *err,
			    size_t errlen)
{
	natsStatus s = vox_pull_open(&in->pull, rt->nc, rt->cfg.inbox_prefix,
				     VOX_STREAM_EVENTS, in->def.durable);
	if (s != NATS_OK) {
		snprintf(err, errlen, "subscribe %s: %s", in->def.durable,
			 natsStatus_GetText(s));
		return vox_nats_status(s);
	}
	return VOX_OK;
}

/* ---- carrying out dispositions ------------------------------------------- */

static vox_dispose_cfg dispose_cfg(const vox_runtime *rt)
{
	return (vox_dispose_cfg){rt->cfg.retry_max_ms, rt->cfg.defer_deliveries};
}

/*
 * Every ack, nak and term goes through here, under the input's lock, and
 * marks the item settled: the progress ticker (ticker_main) reports only
 * items still unsettled, and never at the same time as a disposition.
 */
typedef enum how { HOW_ACK, HOW_NAK, HOW_TERM } how;

static void settle_msg(input_rt *in, vox_item *it, how h, int64_t delay_ms)
{
	vox_runtime *rt = in->rt;
	pthread_mutex_lock(&in->lock);
	switch (h) {
	case HOW_ACK:
		if (vox_pull_settle(rt->nc, it->msg, VOX_ACK, 0) == NATS_OK)
			atomic_fetch_add(&rt->acked, 1);
		/* a lost ack means a redelivery, which idempotency absorbs */
		break;
	case HOW_NAK:
		(void)vox_pull_settle(rt->nc, it->msg, VOX_NAK, delay_ms);
		atomic_fetch_add(&rt->naked, 1);
		break;
	case HOW_TERM:
		(void)vox_pull_settle(rt->nc, it->msg, VOX_TERM, 0);
		break;
	}
	it->settled = true;
	pthread_mutex_unlock(&in->lock);
}

/* Nak an item that was not applied: its batch waits (or the loop stops). */
static void nak_waiting(input_rt *in, vox_item *it)
{
	vox_dispose_cfg c = dispose_cfg(in->rt);
	vox_item_outcome o = {.verdict = VOX_VERDICT_NOT_RUN,
			      .delivered = it->delivered,
			      .stopping = atomic_load(&in->rt->stop)};
	settle_msg(in, it, HOW_NAK, vox_dispose(&c, &o).delay_ms);
}

/* Tell JetStream that the unsettled items of a batch are still being worked
 * on, when a third of AckWait has passed since the last report: neither a
 * long transaction, a long isolation round nor a slow dead letter lets
 * AckWait redeliver them meanwhile. Called with in->lock held. */
static void report_progress(const vox_runtime *rt, batch *b, int64_t now)
{
	if (b == NULL || !vox_progress_due(now, b->progress_ms,
					   rt->cfg.ack_wait_s * 1000))
		return;
	for (size_t i = 0; i < b->n; i++)
		if (!b->items[i].settled)
			(void)vox_pull_settle(rt->nc, b->items[i].msg,
					      VOX_PROGRESS, 0);
	b->progress_ms = now;
}

/* Header values may not hold CR/LF; keep them printable. */
static void header_safe(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* The stable code for a status the handler or the store reported. */
static const char *code_for(vox_status st)
{
	switch (st) {
	case VOX_E_CONFLICT: return "conflict";
	case VOX_E_UNKNOWN_ORG: return "unknown_org";
	case VOX_E_NOT_FOUND: return "not_found";
	case VOX_E_TOO_LARGE: return "too_large";
	case VOX_E_INVALID: return "invalid";
	case VOX_E_DECODE: return "decode";
	case VOX_E_ORG_MISMATCH: return "org_mismatch";
	default: return "internal";
	}
}

/* The dead letter of an item: its bytes on dlq.<subject> with the reason
 * in headers, and a Nats-Msg-Id of its own so that a repeat is dropped. */
static natsStatus dead_letter_msg(natsMsg **out, vox_runtime *rt,
				  const vox_item *it)
{
	const char *code = it->code ? it->code : code_for(it->result);
	natsMsg *m = NULL;
	char subject[512], seq[32], status[16], msgid[256], reason[200];
	const char *orig_id = NULL;

	snprintf(subject, sizeof(subject), "%s%s", VOX_DLQ_PREFIX,
		 natsMsg_GetSubject(it->msg));
	snprintf(seq, sizeof(seq), "%" PRIu64, it->stream_seq);
	snprintf(status, sizeof(status), "%d", vox_status_code(it->result));
	snprintf(msgid, sizeof(msgid), "dlq:%s:%" PRIu64, rt->actor, it->stream_seq);
	snprintf(reason, sizeof(reason), "%s", it->reason);
	header_safe(reason);

	natsStatus s = natsMsg_Create(&m, subject, NULL, natsMsg_GetData(it->msg),
				      natsMsg_GetDataLength(it->msg));
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_ERROR, reason);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_ERROR_CODE, status);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Vox-Error-Reason", code);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_STREAM_SEQ, seq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_ACTOR, rt->actor);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", msgid);
	if (s == NATS_OK && natsMsgHeader_Get(it->msg, "Nats-Msg-Id", &orig_id) == NATS_OK)
		s = natsMsgHeader_Set(m, "Vox-Original-Msg-Id", orig_id);
	if (s != NATS_OK) {
		natsMsg_Destroy(m);
		return s;
	}
	*out = m;
	return NATS_OK;
}

/* Called by libnats for each dead letter's publish ack; the message is
 * ours to destroy (libnats hands it over to an AckHandler). */
static void dead_letter_acked(jsCtx *js, natsMsg *m, jsPubAck *pa,
			      jsPubAckErr *pae, void *closure)
{
	input_rt *in = closure;
	const char *seq = NULL;
	VOX_UNUSED(js);
	VOX_UNUSED(pae);
	if (pa != NULL && natsMsgHeader_Get(m, VOX_HDR_STREAM_SEQ, &seq) == NATS_OK) {
		pthread_mutex_lock(&in->dlq_lock);
		if (in->ndlq_stored == in->capdlq_stored) {
			in->capdlq_stored = in->capdlq_stored ? in->capdlq_stored * 2 : 64;
			in->dlq_stored = vox_realloc(in->dlq_stored,
						     in->capdlq_stored * sizeof(uint64_t));
		}
		in->dlq_stored[in->ndlq_stored++] = strtoull(seq, NULL, 10);
		pthread_mutex_unlock(&in->dlq_lock);
	}
	natsMsg_Destroy(m);
}

static bool dead_letter_stored(input_rt *in, uint64_t seq)
{
	bool found = false;
	pthread_mutex_lock(&in->dlq_lock);
	for (size_t i = 0; i < in->ndlq_stored && !found; i++)
		found = in->dlq_stored[i] == seq;
	pthread_mutex_unlock(&in->dlq_lock);
	return found;
}

/*
 * Dead-letter items: publish every dead letter at once, wait (bounded by a
 * third of AckWait, at most 5 s) for JetStream to store them, then
 * terminate each original whose copy was stored. One that was not is
 * naked instead: nothing is lost, and its repeat carries the same
 * Nats-Msg-Id, so the DLQ keeps one copy.
 */
static void dead_letter_all(vox_runtime *rt, input_rt *in, vox_item **items,
			    size_t n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&in->dlq_lock);
	in->ndlq_stored = 0;
	pthread_mutex_unlock(&in->dlq_lock);
	for (size_t i = 0; i < n; i++) {
		natsMsg *m = NULL;
		if (dead_letter_msg(&m, rt, items[i]) == NATS_OK)
			(void)js_PublishMsgAsync(in->dlq_js, &m, NULL);
		natsMsg_Destroy(m); /* NULL once libnats took it */
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = rt->cfg.ack_wait_s * 1000 / 3;
	if (po.MaxWait > 5000)
		po.MaxWait = 5000;
	if (js_PublishAsyncComplete(in->dlq_js, &po) != NATS_OK) {
		natsMsgList late = {0};
		if (js_PublishAsyncGetPendingList(&late, in->dlq_js) == NATS_OK)
			natsMsgList_Destroy(&late);
	}
	for (size_t i = 0; i < n; i++) {
		vox_item *it = items[i];
		const char *code = it->code ? it->code : code_for(it->result);
		char reason[200];
		snprintf(reason, sizeof(reason), "%s", it->reason);
		header_safe(reason);
		if (dead_letter_stored(in, it->stream_seq)) {
			settle_msg(in, it, HOW_TERM, 0);
			atomic_fetch_add(&rt->dead_letters, 1);
			vox_warn("msg=\"dead letter\" subject=%s seq=%" PRIu64
				 " code=%s status=%d reason=\"%s\"",
				 natsMsg_GetSubject(it->msg), it->stream_seq, code,
				 vox_status_code(it->result), reason);
		} else {
			vox_warn("msg=\"dead letter not stored, will retry\" seq=%" PRIu64,
				 it->stream_seq);
			nak_waiting(in, it);
		}
	}
}

/* ---- the outbox -------------------------------------------------------- */

PGconn *vox_tx_pg(vox_tx *tx)
{
	return tx->pg;
}

static void tx_release(vox_tx *tx)
{
	for (size_t i = 0; i < tx->nrows; i++) {
		free(tx->rows[i].msg_id);
		free(tx->rows[i].subject);
		free(tx->rows[i].payload);
	}
	free(tx->rows);
	tx->rows = NULL;
	tx->nrows = tx->caprows = 0;
}

vox_status vox_tx_emit(vox_tx *tx, const vox_event *ev)
{
	unsigned char *payload = NULL;
	size_t len = 0;
	vox_decode_error err;
	char subject[256], msgid[160];
	vox_status st = vox_event_encode(ev, &payload, &len, &err);
	if (st != VOX_OK ||
	    !vox_subject_format(subject, sizeof(subject), ev->kind,
				vox_event_org(ev)->s)) {
		/* An alert never blocks its effect: the money or the lead it
		 * announces is applied, and this (a defect of vox, not of the
		 * event) is logged and counted. */
		vox_error("msg=\"alert not emitted: it breaks the contract\""
			  " kind=%s reason=\"%s\"", vox_event_kind_name(ev->kind),
			  st != VOX_OK ? err.message : "bad subject");
		atomic_fetch_add(&tx->rt->outbox_refused, 1);
		free(payload);
		return VOX_OK;
	}
	vox_str id = vox_event_msg_id(ev);
	snprintf(msgid, sizeof(msgid), "%.*s", (int)id.len, id.ptr);
	const char *params[4] = {msgid, subject, (const char *)payload, tx->actor};
	int lengths[4] = {0, 0, (int)len, 0};
	int formats[4] = {0, 0, 1, 0};
	PGresult *r = PQexecParams(tx->pg,
				   "INSERT INTO vox_outbox (msg_id, subject, payload, actor)"
				   " VALUES ($1, $2, $3, $4)"
				   " ON CONFLICT (msg_id) DO NOTHING RETURNING id",
				   4, NULL, params, lengths, formats, 0);
	st = vox_pg_status(tx->pg, r);
	if (st == VOX_OK && PQntuples(r) == 1) {
		if (tx->nrows == tx->caprows) {
			tx->caprows = tx->caprows ? tx->caprows * 2 : 8;
			tx->rows = vox_realloc(tx->rows, tx->caprows * sizeof(*tx->rows));
		}
		emitted *e = &tx->rows[tx->nrows++];
		e->msg_id = vox_strndup(msgid, strlen(msgid));
		e->subject = vox_strndup(subject, strlen(subject));
		e->payload = payload;
		e->len = len;
		e->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		payload = NULL;
	}
	PQclear(r);
	free(payload);
	return st;
}

/* Publish rows with their msg ids, each waiting for JetStream, until one
 * fails; the ids of those stored (or recognised as duplicates) go to
 * acked, which has room for n. Returns how many were stored. */
static size_t publish_rows(vox_runtime *rt, const emitted *rows, size_t n,
			   int64_t *acked)
{
	size_t ok = 0;
	for (size_t i = 0; i < n; i++) {
		natsMsg *m = NULL;
		jsPubAck *pa = NULL;
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = 5000;
		po.MsgId = rows[i].msg_id;
		natsStatus s = natsMsg_Create(&m, rows[i].subject, NULL,
					      (const char *)rows[i].payload,
					      (int)rows[i].len);
		if (s == NATS_OK)
			s = js_PublishMsg(&pa, rt->js, m, &po, NULL);
		if (s == NATS_OK)
			acked[ok++] = rows[i].id;
		jsPubAck_Destroy(pa);
		natsMsg_Destroy(m);
		if (s != NATS_OK) {
			vox_warn("msg=\"outbox publish failed, will heal\""
				 " msg_id=%s error=\"%s\"", rows[i].msg_id,
				 natsStatus_GetText(s));
			break;
		}
	}
	atomic_fetch_add(&rt->outbox_published, ok);
	return ok;
}

static void fault(vox_runtime *rt, const char *point)
{
	if (strcmp(rt->cfg.fault, point) == 0) {
		vox_warn("msg=\"fault injected, exiting\" point=%s", point);
		fflush(stderr);
		_exit(3);
	}
}

static void ids_array(vox_pg_array *a, const int64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vox_pg_array_int(a, ids[i]);
}

static vox_status mark_published(PGconn *pg, const int64_t *ids, size_t n)
{
	vox_pg_params p;
	vox_pg_params_init(&p);
	ids_array(vox_pg_params_array(&p, VOX_PG_INT8), ids, n);
	vox_status st = vox_pg_run_sql(pg,
				       "UPDATE vox_outbox SET published_at = now()"
				       " WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
				       &p, NULL);
	vox_pg_params_release(&p);
	return st;
}

/* Remember stored rows whose mark failed (the database went away between
 * the publish and the mark): the healer skips them, and the next
 * housekeeping marks them, so they are never published twice. */
static void keep_unmarked(vox_runtime *rt, const int64_t *ids, size_t n)
{
	pthread_mutex_lock(&rt->outbox_lock);
	for (size_t i = 0; i < n; i++) {
		if (rt->nunmarked == rt->capunmarked) {
			rt->capunmarked = rt->capunmarked ? rt->capunmarked * 2 : 64;
			rt->unmarked = vox_realloc(rt->unmarked,
						   rt->capunmarked * sizeof(int64_t));
		}
		rt->unmarked[rt->nunmarked++] = ids[i];
	}
	pthread_mutex_unlock(&rt->outbox_lock);
}

/* Mark rows JetStream stored; a failed mark is kept for a retry. */
static void mark_or_keep(vox_runtime *rt, PGconn *pg, const int64_t *ids,
			 size_t n)
{
	if (n == 0)
		return;
	if (!pg || mark_published(pg, ids, n) != VOX_OK) {
		vox_warn("msg=\"outbox mark failed, will mark again\" rows=%zu", n);
		keep_unmarked(rt, ids, n);
	}
}

/* Retry the marks that failed earlier. */
static void mark_again(vox_runtime *rt, PGconn *pg)
{
	pthread_mutex_lock(&rt->outbox_lock);
	size_t n = rt->nunmarked;
	int64_t *ids = n ? vox_malloc(n * sizeof(*ids)) : NULL;
	if (n)
		memcpy(ids, rt->unmarked, n * sizeof(*ids));
	rt->nunmarked = 0;
	pthread_mutex_unlock(&rt->outbox_lock);
	if (n) {
		mark_or_keep(rt, pg, ids, n);
		free(ids);
	}
}

/* Publish what this transaction emitted, after its commit. A failure
 * leaves the rows not stored to the healer. */
static void flush_outbox(vox_runtime *rt, input_rt *in, vox_tx *tx)
{
	if (tx->nrows == 0)
		return;
	int64_t *acked = vox_malloc(tx->nrows * sizeof(*acked));
	size_t ok = publish_rows(rt, tx->rows, tx->nrows, acked);
	if (ok == tx->nrows)
		fault(rt, "after-publish");
	mark_or_keep(rt, in->pg, acked, ok);
	free(acked);
}

static uint64_t be64(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | u[i];
	return v;
}

/* Publish unpublished rows older than age_ms (left by a crash or a NATS
 * outage), several instances at once thanks to SKIP LOCKED. Rows whose
 * publish was stored but whose mark is pending are left alone. */
static void heal_outbox(vox_runtime *rt, PGconn *pg, int64_t age_ms)
{
	char msg[256], age[32];
	PGresult *r = NULL;
	emitted *rows = NULL;
	int64_t *acked = NULL;
	size_t n = 0;
	vox_pg_array skip;
	vox_pg_array_init(&skip, VOX_PG_INT8);
	mark_again(rt, pg);
	if (!pg || vox_pg_exec(pg, "BEGIN", msg, sizeof(msg)) != VOX_OK)
		goto done;
	pthread_mutex_lock(&rt->outbox_lock);
	ids_array(&skip, rt->unmarked, rt->nunmarked);
	pthread_mutex_unlock(&rt->outbox_lock);
	snprintf(age, sizeof(age), "%" PRId64 " milliseconds", age_ms);
	int lengths[2] = {0, 0}, formats[2] = {0, 1};
	const char *params[2] = {age, vox_pg_array_bytes(&skip, &lengths[1])};
	r = PQexecParams(pg,
			 "SELECT id, msg_id, subject, payload FROM vox_outbox"
			 " WHERE published_at IS NULL"
			 " AND created_at < now() - $1::interval"
			 " AND id <> ALL($2::bigint[])"
			 " ORDER BY id LIMIT 256 FOR UPDATE SKIP LOCKED",
			 2, NULL, params, lengths, formats, 1);
	if (vox_pg_status(pg, r) != VOX_OK)
		goto out;
	n = (size_t)PQntuples(r);
	if (n == 0)
		goto out;
	rows = vox_calloc(n, sizeof(*rows));
	acked = vox_malloc(n * sizeof(*acked));
	for (size_t i = 0; i < n; i++) {
		rows[i].id = (int64_t)be64(PQgetvalue(r, (int)i, 0));
		rows[i].msg_id = vox_strndup(PQgetvalue(r, (int)i, 1),
					     (size_t)PQgetlength(r, (int)i, 1));
		rows[i].subject = vox_strndup(PQgetvalue(r, (int)i, 2),
					      (size_t)PQgetlength(r, (int)i, 2));
		rows[i].len = (size_t)PQgetlength(r, (int)i, 3);
		rows[i].payload = vox_malloc(rows[i].len);
		memcpy(rows[i].payload, PQgetvalue(r, (int)i, 3), rows[i].len);
	}
	size_t ok = publish_rows(rt, rows, n, acked);
	if (ok > 0 && mark_published(pg, acked, ok) == VOX_OK)
		vox_info("msg=\"outbox healed\" published=%zu", ok);
	else if (ok > 0)
		keep_unmarked(rt, acked, ok);
out:
	PQclear(r);
	for (size_t i = 0; i < n && rows; i++) {
		free(rows[i].msg_id);
		free(rows[i].subject);
		free(rows[i].payload);
	}
	free(rows);
	free(acked);
	if (vox_pg_exec(pg, "COMMIT", msg, sizeof(msg)) != VOX_OK)
		vox_debug("msg=\"outbox heal not committed\" error=\"%s\"", msg);
done:
	vox_pg_array_release(&skip);
}

static void purge_outbox(vox_runtime *rt, PGconn *pg)
{
	char keep[32];
	snprintf(keep, sizeof(keep), "%" PRId64 " hours", rt->cfg.outbox_keep_h);
	const char *params[1] = {keep};
	/* in chunks: no long transaction and no long lock on a large table */
	for (int round = 0; round < 100; round++) {
		PGresult *r = PQexecParams(pg,
			"DELETE FROM vox_outbox WHERE id IN (SELECT id FROM vox_outbox"
			" WHERE published_at < now() - $1::interval LIMIT 5000)",
			1, NULL, params, NULL, NULL, 0);
		bool more = vox_pg_status(pg, r) == VOX_OK && strtoll(PQcmdTuples(r), NULL, 10) == 5000;
		PQclear(r);
		if (!more)
			break;
	}
	/* deferral counts of messages long gone (a purged stream) */
	PGresult *r = PQexec(pg, "DELETE FROM vox_deferrals WHERE updated_at < now() - interval '30 days'");
	PQclear(r);
}

/* ---- Postgres ---------------------------------------------------------- */

/* A connection with its statements prepared, or false with fail filled. */
static bool pg_ready(vox_runtime *rt, input_rt *in, vox_pg_error *fail)
{
	char err[sizeof(fail->message) - 16];
	memset(fail, 0, sizeof(*fail));
	if (in->pg && PQstatus(in->pg) == CONNECTION_OK && in->replan &&
	    rt->handler.prepare) {
		/* new plans for tables that have grown (vox_replan_due); a
		 * failure drops the connection, and the next one prepares */
		in->replan = false;
		PGresult *r = PQexec(in->pg, "DEALLOCATE ALL");
		vox_status st = vox_pg_status(in->pg, r);
		PQclear(r);
		if (st != VOX_OK ||
		    rt->handler.prepare(rt->handler.ctx, in->pg) != VOX_OK) {
			PQfinish(in->pg);
			in->pg = NULL;
		}
	}
	if (in->pg && PQstatus(in->pg) == CONNECTION_OK)
		return true;
	if (in->pg) {
		PQfinish(in->pg);
		in->pg = NULL;
	}
	PGconn *c = NULL;
	if (vox_pg_connect(&c, rt->pg_dsn, err, sizeof(err)) != VOX_OK) {
		fail->status = VOX_E_UNAVAILABLE;
		snprintf(fail->message, sizeof(fail->message), "%s", err);
		return false;
	}
	if (vox_pg_track_errors(c) != VOX_OK ||
	    (rt->handler.prepare && rt->handler.prepare(rt->handler.ctx, c) != VOX_OK)) {
		/* a missing column or table, a permission: the world's fault */
		vox_pg_first_error(fail, c);
		if (fail->status == VOX_OK)
			fail->status = VOX_E_UNAVAILABLE;
		memcpy(err, fail->message, sizeof(err) - 1);
		err[sizeof(err) - 1] = '\0';
		snprintf(fail->message, sizeof(fail->message), "prepare: %s", err);
		PQfinish(c);
		return false;
	}
	in->pg = c;
	return true;
}

/* Count the deferrals of the items the handler deferred, in the batch's
 * own transaction: a message put back while the database was at fault
 * was never deferred, so its window of VOX_DEFER_DELIVERIES is whole
 * afterwards. Rows of items resolved now are removed. */
static vox_status count_deferrals(vox_runtime *rt, input_rt *in, vox_item *arr,
				  size_t n)
{
	vox_pg_params put, drop;
	vox_status st = VOX_OK;
	PGresult *r = NULL;
	vox_pg_params_init(&put);
	vox_pg_params_init(&drop);
	vox_pg_params_text(&put, in->def.durable);
	vox_pg_array *seqs = vox_pg_params_array(&put, VOX_PG_INT8);
	vox_pg_array *ids = vox_pg_params_array(&put, VOX_PG_TEXT);
	vox_pg_params_text(&drop, in->def.durable);
	vox_pg_array *done = vox_pg_params_array(&drop, VOX_PG_INT8);
	for (size_t i = 0; i < n; i++) {
		if (arr[i].result != VOX_OK && arr[i].defer) {
			vox_pg_array_int(seqs, (int64_t)arr[i].stream_seq);
			vox_str id = vox_event_msg_id(&arr[i].ev);
			vox_pg_array_str(ids, id.ptr ? id.ptr : "", id.len);
		} else if (arr[i].delivered > 1) {
			vox_pg_array_int(done, (int64_t)arr[i].stream_seq);
		}
	}
	if (seqs->n) {
		st = vox_pg_run_sql(in->pg,
			"INSERT INTO vox_deferrals AS d (consumer, stream_seq, msg_id)"
			" SELECT $1, s, m FROM unnest($2::bigint[], $3::text[]) AS t(s, m)"
			" ON CONFLICT (consumer, stream_seq) DO UPDATE SET"
			"  deferrals = CASE WHEN d.msg_id = EXCLUDED.msg_id"
			"   THEN d.deferrals + 1 ELSE 1 END,"
			"  msg_id = EXCLUDED.msg_id, updated_at = now()"
			" RETURNING stream_seq, deferrals", &put, &r);
		for (int row = 0; st == VOX_OK && row < PQntuples(r); row++) {
			uint64_t seq = strtoull(PQgetvalue(r, row, 0), NULL, 10);
			int64_t count = strtoll(PQgetvalue(r, row, 1), NULL, 10);
			for (size_t i = 0; i < n; i++) {
				if (arr[i].stream_seq != seq || !arr[i].defer)
					continue;
				arr[i].deferrals = count;
				if (count >= rt->cfg.defer_deliveries)
					vox_pg_array_int(done, (int64_t)seq);
			}
		}
		PQclear(r);
	}
	if (st == VOX_OK && done->n)
		st = vox_pg_run_sql(in->pg,
				    "DELETE FROM vox_deferrals WHERE consumer = $1"
				    " AND stream_seq = ANY($2::bigint[])",
				    &drop, NULL);
	vox_pg_params_release(&put);
	vox_pg_params_release(&drop);
	return st;
}

/*
 * Run apply over items in one transaction. VOX_OK: it committed and the
 * items carry the handler's verdicts. Otherwise it was rolled back and
 * fail holds the first error: its status, the SQLSTATE the server sent
 * and the message.
 */
static vox_status run_tx(vox_runtime *rt, input_rt *in, vox_item **items,
			 size_t n, vox_tx *tx, vox_pg_error *fail)
{
	char why[256];
	tx->pg = in->pg;
	tx->actor = rt->actor;
	tx->rt = rt;
	memset(fail, 0, sizeof(*fail));
	vox_pg_reset_error(in->pg);
	/* apply sees a contiguous array: copy the pointers' targets in */
	vox_item *arr = vox_malloc(n * sizeof(*arr));
	for (size_t i = 0; i < n; i++)
		arr[i] = *items[i];
	vox_status st = vox_pg_exec(in->pg, "BEGIN", why, sizeof(why));
	if (st == VOX_OK)
		st = rt->handler.apply(rt->handler.ctx, tx, arr, n);
	if (st == VOX_OK)
		st = count_deferrals(rt, in, arr, n);
	if (st == VOX_OK)
		st = vox_pg_exec(in->pg, "COMMIT", why, sizeof(why));
	if (st == VOX_OK) {
		for (size_t i = 0; i < n; i++) {
			items[i]->result = arr[i].result;
			items[i]->code = arr[i].code;
			items[i]->defer = arr[i].defer;
			items[i]->deferrals = arr[i].deferrals;
			memcpy(items[i]->reason, arr[i].reason, sizeof(arr[i].reason));
		}
	} else {
		vox_pg_first_error(fail, in->pg);
		if (fail->status == VOX_OK) {
			/* the handler's own status, no database error */
			fail->status = st;
			snprintf(fail->message, sizeof(fail->message), "handler: %s",
				 vox_status_str(st));
		}
		if (PQstatus(in->pg) == CONNECTION_OK &&
		    PQtransactionStatus(in->pg) != PQTRANS_IDLE) {
			char ignored[64];
			vox_status rb = vox_pg_exec(in->pg, "ROLLBACK", ignored,
						    sizeof(ignored));
			VOX_UNUSED(rb);
		}
		tx_release(tx);
		if (PQstatus(in->pg) != CONNECTION_OK)
			fail->status = VOX_E_UNAVAILABLE;
	}
	free(arr);
	return st;
}

/* ---- the steps of a batch --------------------------------------------------- */

static uint64_t pack_sqlstate(const char *s)
{
	uint64_t v = 0;
	for (size_t i = 0; i < 5 && s[i]; i++)
		v |= (uint64_t)(unsigned char)s[i] << (8 * i);
	return v;
}

/* Whether a committed transaction applied anything: only that is evidence
 * that the database takes messages (one that only deferred or refused
 * items is not). */
static size_t applied_count(vox_item **items, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += items[i]->result == VOX_OK;
	return k;
}

/* A transaction committed on this input. */
static void committed(vox_runtime *rt, input_rt *in, size_t applied)
{
	atomic_fetch_add(&rt->committed, 1);
	if (applied == 0)
		return;
	in->commits++;
	if (vox_replan_due(in->applied, in->applied + applied))
		in->replan = true;
	in->applied += applied;
	vox_breaker_commit(&in->breaker);
	in->backoff_ms = 0;
	if (vox_fault_log_commit(&in->flog))
		vox_info("msg=\"database fault over\" input=%s waited_ms=%" PRId64,
			 in->def.durable, now_ms() - in->fault_since_ms);
}

/* A fault of the world: count it, log it once per outage, and pause the
 * writer (growing, capped) so that it does not spin. */
static void wait_fault(vox_runtime *rt, input_rt *in, const vox_pg_error *fail,
		       const char *what)
{
	atomic_fetch_add(&rt->faults, 1);
	atomic_store(&rt->last_sqlstate, pack_sqlstate(fail->sqlstate));
	if (vox_fault_log_failure(&in->flog, fail->sqlstate)) {
		in->fault_since_ms = now_ms();
		vox_warn("msg=\"database fault, messages wait\" input=%s what=\"%s\""
			 " sqlstate=%s status=%s error=\"%s\"", in->def.durable, what,
			 fail->sqlstate[0] ? fail->sqlstate : "none",
			 vox_status_str(fail->status), fail->message);
	}
	in->backoff_ms = vox_backoff_next(in->backoff_ms, rt->cfg.retry_max_ms);
	nap(rt, in->backoff_ms);
}

/* After a commit: ack what was applied, nak what the handler deferred (while
 * its deferrals last), dead-letter what it refused, publish the outbox. */
static void settle(vox_runtime *rt, input_rt *in, vox_item **items, size_t n,
		   vox_tx *tx)
{
	vox_dispose_cfg c = dispose_cfg(rt);
	vox_item **dl = vox_malloc(n * sizeof(*dl));
	size_t ndl = 0;
	if (tx->nrows)
		fault(rt, "after-commit");
	for (size_t i = 0; i < n; i++) {
		vox_item *it = items[i];
		vox_item_outcome o = {
			.verdict = it->result == VOX_OK ? VOX_VERDICT_APPLIED
				   : it->defer ? VOX_VERDICT_DEFERRED
					       : VOX_VERDICT_REFUSED,
			.delivered = it->delivered,
			.deferrals = it->deferrals,
			.stopping = atomic_load(&rt->stop),
		};
		vox_disposition d = vox_dispose(&c, &o);
		vox_suspects_forget(&in->suspects, it->stream_seq);
		switch (d.action) {
		case VOX_ACT_ACK:
			settle_msg(in, it, HOW_ACK, 0);
			break;
		case VOX_ACT_NAK:
			vox_info("msg=\"deferred\" input=%s stream_seq=%" PRIu64
				 " deferrals=%" PRId64 " reason=\"%s\"",
				 in->def.durable, it->stream_seq, it->deferrals,
				 it->reason);
			atomic_fetch_add(&rt->deferred, 1);
			settle_msg(in, it, HOW_NAK, d.delay_ms);
			break;
		case VOX_ACT_DEAD_LETTER:
			dl[ndl++] = it;
			break;
		}
	}
	dead_letter_all(rt, in, dl, ndl);
	free(dl);
	flush_outbox(rt, in, tx);
	tx_release(tx);
}

/* The dead letter's status and code for a data error the database raised. */
static void blame(vox_item *it, const vox_pg_error *fail)
{
	if (fail->sqlstate[0] == '\0') {
		vox_item_reject(it, fail->status, "%s", fail->message);
		return;
	}
	bool integrity = strncmp(fail->sqlstate, "23", 2) == 0;
	vox_item_reject(it, VOX_E_INVALID, "database refused it: %s: %s",
			fail->sqlstate, fail->message);
	it->code = integrity ? "integrity_violation" : "data_exception";
}

/* One item in a transaction of its own, re-run on RETRY. */
static vox_step run_one(vox_runtime *rt, input_rt *in, vox_item *it,
			vox_tx *tx, vox_pg_error *fail)
{
	for (int reruns = 0;; reruns++) {
		vox_fault f = VOX_FAULT_WORLD;
		if (pg_ready(rt, in, fail))
			f = run_tx(rt, in, &it, 1, tx, fail) == VOX_OK
				? VOX_FAULT_NONE
				: vox_fault_of(fail->status, fail->sqlstate);
		vox_batch_outcome o = {f, reruns, true};
		vox_step step = vox_dispose_batch(&o);
		if (step != VOX_STEP_RERUN)
			return step;
	}
}

/*
 * One message (or more) poisons the batch: apply each in a transaction of
 * its own. A data error is held until the round ends; it is the message's
 * own only with evidence (vox_suspects): then it is dead-lettered, else it
 * waits. A fault of the world ends the round: the rest waits.
 */
static void isolate(vox_runtime *rt, input_rt *in, vox_item **items, size_t n,
		    const vox_pg_error *first)
{
	vox_dispose_cfg c = dispose_cfg(rt);
	vox_item **dl = vox_malloc(n * sizeof(*dl));
	vox_pg_error *held = vox_calloc(n, sizeof(*held));
	bool *failed = vox_calloc(n, sizeof(*failed));
	size_t ndl = 0, round_commits = 0, i;
	vox_pg_error fail;
	vox_tx tx = {0};

	atomic_fetch_add(&rt->isolated, 1);
	vox_warn("msg=\"batch failed, isolating\" input=%s size=%zu sqlstate=%s"
		 " error=\"%s\"", in->def.durable, n,
		 first->sqlstate[0] ? first->sqlstate : "none", first->message);
	for (i = 0; i < n; i++) {
		vox_step step = run_one(rt, in, items[i], &tx, &fail);
		if (step == VOX_STEP_SETTLE) {
			bool applied = items[i]->result == VOX_OK;
			committed(rt, in, applied ? 1 : 0);
			round_commits += applied;
			settle(rt, in, &items[i], 1, &tx);
		} else if (step == VOX_STEP_ISOLATE) {
			failed[i] = true;
			held[i] = fail;
		} else {
			break; /* a fault of the world: the rest waits */
		}
	}
	if (i < n) {
		for (size_t k = 0; k < n; k++)
			if (k >= i || failed[k])
				nak_waiting(in, items[k]);
		wait_fault(rt, in, &fail, "isolating");
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		if (!failed[k])
			continue;
		vox_item *it = items[k];
		vox_item_outcome o = {
			.verdict = VOX_VERDICT_FAILED,
			.fault = VOX_FAULT_DATA,
			.delivered = it->delivered,
			.evidence = vox_suspects_evidence(&in->suspects, it->stream_seq,
							  round_commits, in->commits),
			.stopping = atomic_load(&rt->stop),
		};
		vox_disposition d = vox_dispose(&c, &o);
		if (d.action == VOX_ACT_DEAD_LETTER) {
			vox_suspects_forget(&in->suspects, it->stream_seq);
			blame(it, &held[k]);
			dl[ndl++] = it;
		} else {
			vox_suspects_note(&in->suspects, it->stream_seq, in->commits);
			settle_msg(in, it, HOW_NAK, d.delay_ms);
		}
	}
	dead_letter_all(rt, in, dl, ndl);
	vox_breaker_round(&in->breaker, round_commits > 0, now_ms(),
			  rt->cfg.retry_max_ms);
	if (round_commits == 0) {
		/* every message failed the same way: not the messages' fault */
		for (size_t k = 0; k < n; k++)
			if (failed[k]) {
				wait_fault(rt, in, &held[k], "every message of the batch failed");
				break;
			}
	}
out:
	free(dl);
	free(held);
	free(failed);
}

static void process(vox_runtime *rt, input_rt *in, batch *b)
{
	vox_item **valid = vox_malloc((b->n ? b->n : 1) * sizeof(*valid));
	vox_item **dl = vox_malloc((b->n ? b->n : 1) * sizeof(*dl));
	size_t nvalid = 0, ndl = 0;
	vox_pg_error fail;
	vox_tx tx = {0};

	for (size_t i = 0; i < b->n; i++) {
		vox_item *it = &b->items[i];
		if (it->result != VOX_OK)
			dl[ndl++] = it; /* undecodable: never reaches the database */
		else
			valid[nvalid++] = it;
	}
	dead_letter_all(rt, in, dl, ndl);
	if (nvalid == 0)
		goto out;

	for (int reruns = 0;; reruns++) {
		vox_fault f = VOX_FAULT_WORLD;
		if (pg_ready(rt, in, &fail))
			f = run_tx(rt, in, valid, nvalid, &tx, &fail) == VOX_OK
				? VOX_FAULT_NONE
				: vox_fault_of(fail.status, fail.sqlstate);
		vox_batch_outcome o = {f, reruns,
				       vox_breaker_may_isolate(&in->breaker, now_ms())};
		switch (vox_dispose_batch(&o)) {
		case VOX_STEP_SETTLE:
			committed(rt, in, applied_count(valid, nvalid));
			settle(rt, in, valid, nvalid, &tx);
			goto out;
		case VOX_STEP_RERUN:
			continue;
		case VOX_STEP_WAIT:
			for (size_t i = 0; i < nvalid; i++)
				nak_waiting(in, valid[i]);
			wait_fault(rt, in, &fail, "batch not applied");
			goto out;
		case VOX_STEP_ISOLATE:
			isolate(rt, in, valid, nvalid, &fail);
			goto out;
		}
	}
out:
	free(valid);
	free(dl);
}

/* ---- threads ----------------------------------------------------------- */

/* Decode one fetched message into an item; a refusal is recorded on the
 * item (the writer dead-letters it). Returns the consumer's count of
 * messages pending behind m when JetStream delivered it. */
static uint64_t decode_item(vox_runtime *rt, natsMsg *m, vox_item *it)
{
	uint64_t pending = 0;
	vox_js_ack meta;
	vox_decode_error err;
	memset(it, 0, sizeof(*it));
	it->msg = m;
	if (vox_js_ack_parse(&meta, natsMsg_GetReply(m))) {
		it->stream_seq = meta.stream_seq;
		it->delivered = meta.delivered;
		pending = meta.pending;
		atomic_store(&rt->lag, pending);
	}
	if (it->delivered > 1)
		atomic_fetch_add(&rt->redelivered, 1);
	if (vox_event_decode_subject(&it->ev, natsMsg_GetSubject(m),
				     natsMsg_GetData(m),
				     (size_t)natsMsg_GetDataLength(m), &err) != VOX_OK) {
		it->result = err.status;
		it->code = err.code;
		snprintf(it->reason, sizeof(it->reason), "%s", err.message);
	}
	return pending;
}

/*
 * After a failed fetch (NATS went away, the consumer did not answer),
 * pull on a fresh inbox; closing the old one gives back what it still
 * had queued. It goes only once the writer holds none of its messages.
 */
static void resubscribe(vox_runtime *rt, input_rt *in)
{
	char err[256];
	pthread_mutex_lock(&in->lock);
	while (in->queued != NULL || in->writer_busy)
		pthread_cond_wait(&in->cond, &in->lock);
	pthread_mutex_unlock(&in->lock);
	vox_pull *old = in->pull;
	in->pull = NULL;
	while (!atomic_load(&rt->stop)) {
		if (subscribe(rt, in, err, sizeof(err)) == VOX_OK)
			break;
		nap(rt, 500);
	}
	vox_pull_close(old);
}

/* Room in the batch being gathered (messages, bytes), waiting while it is
 * full and the writer busy; 0 when stopping. */
static size_t wait_room(vox_runtime *rt, input_rt *in, size_t *bytes)
{
	size_t max_bytes = (size_t)rt->cfg.batch_kb * 1024, room = 0;
	pthread_mutex_lock(&in->lock);
	while (!atomic_load(&rt->stop)) {
		size_t n = in->queued ? in->queued->n : 0;
		size_t by = in->queued ? in->queued->bytes : 0;
		if (n < (size_t)rt->cfg.batch && by < max_bytes) {
			room = (size_t)rt->cfg.batch - n;
			*bytes = max_bytes - by;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&in->cond, &in->lock, &ts);
	}
	pthread_mutex_unlock(&in->lock);
	return room;
}

static natsStatus fetch(natsMsgList *list, input_rt *in, size_t count,
			size_t bytes, int64_t wait_ms)
{
	/* a message of the largest size always fits */
	size_t max_bytes = bytes > 2 * VOX_MAX_MESSAGE ? bytes : 2 * VOX_MAX_MESSAGE;
	return vox_pull_fetch(in->pull, list, count, max_bytes, wait_ms);
}

/*
 * Fetch what has arrived, up to room, without waiting for a batch to fill.
 * JetStream tells, with each message, how many are pending behind it: the
 * next pull asks for that many (the server has them, so it answers at
 * once), and only when none were pending does it wait, up to
 * VOX_FETCH_WAIT_MS, for the first new one. When instances share the
 * consumer the others may take some of those; the pull then ends after
 * FETCH_FILL_MS with what it got. NATS_TIMEOUT when nothing came.
 * Whatever a pull's answer still had on the way when it ended is taken
 * by the next one (src/io/pull.c).
 */
#define FETCH_FILL_MS 50

static natsStatus fetch_arrived(vox_runtime *rt, input_rt *in, size_t room,
				size_t bytes, natsMsgList *got)
{
	size_t want = in->pending < room ? (size_t)in->pending : room;
	natsStatus s;
	if (want > 0)
		s = fetch(got, in, want, bytes, FETCH_FILL_MS);
	else
		s = fetch(got, in, 1, bytes, rt->cfg.fetch_wait_ms);
	if (s != NATS_OK)
		in->pending = 0;
	return s;
}

/* Add the decoded messages of list to the batch being gathered. */
static void gather(vox_runtime *rt, input_rt *in, natsMsgList *list)
{
	size_t n = (size_t)list->Count, bytes = 0;
	vox_item *items = vox_calloc(n, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		in->pending = decode_item(rt, list->Msgs[i], &items[i]);
		bytes += (size_t)natsMsg_GetDataLength(list->Msgs[i]);
	}
	atomic_fetch_add(&rt->received, n);
	pthread_mutex_lock(&in->lock);
	batch *b = in->queued;
	if (b == NULL) {
		b = vox_calloc(1, sizeof(*b));
		b->progress_ms = now_ms();
		in->queued = b;
		atomic_fetch_add(&rt->batches, 1);
	}
	if (b->nlists == b->caplists) {
		b->caplists = b->caplists ? b->caplists * 2 : 4;
		b->lists = vox_realloc(b->lists, b->caplists * sizeof(*b->lists));
	}
	b->lists[b->nlists++] = *list;
	if (b->n + n > b->cap) {
		b->cap = b->n + n > 2 * b->cap ? b->n + n : 2 * b->cap;
		b->items = vox_realloc(b->items, b->cap * sizeof(*b->items));
	}
	memcpy(b->items + b->n, items, n * sizeof(*items));
	b->n += n;
	b->bytes += bytes;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
	memset(list, 0, sizeof(*list)); /* the batch owns it now */
	free(items);
}

static void *fetcher_main(void *arg)
{
	input_rt *in = arg;
	vox_runtime *rt = in->rt;
	int64_t backoff = 100;
	bool down_logged = false;

	while (!atomic_load(&rt->stop)) {
		size_t bytes = 0;
		size_t room = wait_room(rt, in, &bytes);
		if (room == 0)
			break;
		natsMsgList got;
		memset(&got, 0, sizeof(got));
		natsStatus s = fetch_arrived(rt, in, room, bytes, &got);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			if (!down_logged) {
				vox_warn("msg=\"fetch failed, retrying\" input=%s error=\"%s\"",
					 in->def.durable, natsStatus_GetText(s));
				down_logged = true;
			}
			nap(rt, backoff);
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
			resubscribe(rt, in);
			continue;
		}
		if (down_logged)
			vox_info("msg=\"fetching again\" input=%s", in->def.durable);
		down_logged = false;
		backoff = 100;
		gather(rt, in, &got);
	}
	pthread_mutex_lock(&in->lock);
	in->fetcher_done = true;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
	return NULL;
}

/* The keeper's own connection (no statements to prepare). */
static bool keeper_ready(vox_runtime *rt)
{
	char err[256];
	if (rt->keeper_pg && PQstatus(rt->keeper_pg) == CONNECTION_OK)
		return true;
	PQfinish(rt->keeper_pg);
	rt->keeper_pg = NULL;
	return vox_pg_connect(&rt->keeper_pg, rt->pg_dsn, err, sizeof(err)) == VOX_OK;
}

/*
 * Housekeeping, every VOX_OUTBOX_INTERVAL_MS on a thread and connection of
 * its own, so that no writer waits for it: the marks that failed, the
 * outbox rows left unpublished (by a crash, a NATS outage or another
 * instance), the handler's tick (retention), the purge of old rows. Once
 * the writers are done, one last pass publishes every row left.
 */
static void *keeper_main(void *arg)
{
	vox_runtime *rt = arg;
	int64_t next_purge = 0;
	for (;;) {
		bool last = atomic_load(&rt->writers_done);
		if (keeper_ready(rt)) {
			heal_outbox(rt, rt->keeper_pg, last ? 0 : rt->cfg.outbox_age_ms);
			if (!last && rt->handler.tick)
				rt->handler.tick(rt->handler.ctx, rt->keeper_pg);
			if (!last && now_ms() >= next_purge) {
				purge_outbox(rt, rt->keeper_pg);
				next_purge = now_ms() + 60000;
			}
		}
		if (last)
			break;
		for (int64_t t = 0; t < rt->cfg.outbox_interval_ms &&
				    !atomic_load(&rt->writers_done); t += 20)
			sleep_ms(20);
	}
	return NULL;
}

static void *writer_main(void *arg)
{
	input_rt *in = arg;
	vox_runtime *rt = in->rt;
	for (;;) {
		pthread_mutex_lock(&in->lock);
		if (in->queued == NULL && !in->fetcher_done) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&in->cond, &in->lock, &ts);
		}
		/* all that has been gathered goes into one transaction */
		batch *b = in->queued;
		in->queued = NULL;
		in->inhand = b;
		in->writer_busy = b != NULL;
		bool done = b == NULL && in->fetcher_done;
		pthread_cond_broadcast(&in->cond);
		pthread_mutex_unlock(&in->lock);
		if (b) {
			process(rt, in, b);
			pthread_mutex_lock(&in->lock);
			in->inhand = NULL;
			in->writer_busy = false;
			pthread_cond_broadcast(&in->cond);
			pthread_mutex_unlock(&in->lock);
			batch_free(b);
		}
		if (done)
			break;
	}
	return NULL;
}

/* Reports progress of the batches fetched and not yet settled (the one the
 * writer holds and the one queued behind it), every 200 ms. */
static void *ticker_main(void *arg)
{
	vox_runtime *rt = arg;
	while (!atomic_load(&rt->stop)) {
		sleep_ms(200);
		int64_t now = now_ms();
		for (size_t i = 0; i < rt->ninputs; i++) {
			input_rt *in = &rt->inputs[i];
			pthread_mutex_lock(&in->lock);
			report_progress(rt, in->inhand, now);
			report_progress(rt, in->queued, now);
			pthread_mutex_unlock(&in->lock);
		}
	}
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

vox_status vox_runtime_new(vox_runtime **out, natsConnection *nc,
			   const char *actor, const char *pg_dsn,
			   const vox_runtime_config *cfg,
			   const vox_input *inputs, size_t ninputs,
			   const vox_handler *handler, char *err, size_t errlen)
{
	vox_runtime *rt = vox_calloc(1, sizeof(*rt));
	jsOptions jo;
	vox_status st = VOX_OK;

	rt->nc = nc;
	rt->actor = vox_strndup(actor, strlen(actor));
	rt->pg_dsn = vox_strndup(pg_dsn, strlen(pg_dsn));
	rt->cfg = *cfg;
	rt->handler = *handler;
	atomic_init(&rt->stop, false);
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	jo.PublishAsync.MaxPending = 4096;
	if (natsConnection_JetStream(&rt->js, nc, &jo) != NATS_OK) {
		snprintf(err, errlen, "jetstream context: %s", nats_GetLastError(NULL));
		st = VOX_E_UNAVAILABLE;
		goto out;
	}
	pthread_mutex_init(&rt->outbox_lock, NULL);
	rt->inputs = vox_calloc(ninputs, sizeof(*rt->inputs));
	rt->ninputs = ninputs;
	for (size_t i = 0; i < ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		in->rt = rt;
		in->def = inputs[i];
		pthread_mutex_init(&in->lock, NULL);
		pthread_cond_init(&in->cond, NULL);
		pthread_mutex_init(&in->dlq_lock, NULL);
		jsOptions djo;
		jsOptions_Init(&djo);
		djo.Wait = 10000;
		djo.PublishAsync.MaxPending = 4096;
		djo.PublishAsync.AckHandler = dead_letter_acked;
		djo.PublishAsync.AckHandlerClosure = in;
		if (natsConnection_JetStream(&in->dlq_js, nc, &djo) != NATS_OK) {
			snprintf(err, errlen, "jetstream context: %s",
				 nats_GetLastError(NULL));
			st = VOX_E_UNAVAILABLE;
			goto out;
		}
		st = ensure_consumer(rt, in, err, errlen);
		if (st != VOX_OK)
			goto out;
	}
out:
	if (st != VOX_OK) {
		vox_runtime_free(rt);
		return st;
	}
	*out = rt;
	return VOX_OK;
}

vox_status vox_runtime_start(vox_runtime *rt)
{
	for (size_t i = 0; i < rt->ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		if (pthread_create(&in->fetcher, NULL, fetcher_main, in) != 0)
			return VOX_E_INTERNAL;
		if (pthread_create(&in->writer, NULL, writer_main, in) != 0)
			return VOX_E_INTERNAL;
		in->threads = true;
	}
	if (pthread_create(&rt->ticker, NULL, ticker_main, rt) != 0)
		return VOX_E_INTERNAL;
	rt->ticking = true;
	if (pthread_create(&rt->keeper, NULL, keeper_main, rt) != 0)
		return VOX_E_INTERNAL;
	rt->keeping = true;
	rt->started = true;
	return VOX_OK;
}

void vox_runtime_stop(vox_runtime *rt)
{
	atomic_store(&rt->stop, true);
	for (size_t i = 0; i < rt->ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		if (!in->threads)
			continue;
		pthread_join(in->fetcher, NULL);
		pthread_join(in->writer, NULL);
		in->threads = false;
	}
	atomic_store(&rt->writers_done, true);
	if (rt->keeping) {
		pthread_join(rt->keeper, NULL);
		rt->keeping = false;
	}
	if (rt->ticking) {
		pthread_join(rt->ticker, NULL);
		rt->ticking = false;
	}
	/* the acks are buffered by libnats: send them before anything closes */
	natsConnection_FlushTimeout(rt->nc, 5000);
}

void vox_runtime_free(vox_runtime *rt)
{
	if (!rt)
		return;
	vox_runtime_stop(rt);
	for (size_t i = 0; i < rt->ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		vox_pull_close(in->pull);
		batch_free(in->queued);
		if (in->pg)
			PQfinish(in->pg);
		jsCtx_Destroy(in->dlq_js);
		free(in->dlq_stored);
		pthread_mutex_destroy(&in->dlq_lock);
		pthread_mutex_destroy(&in->lock);
		pthread_cond_destroy(&in->cond);
	}
	free(rt->inputs);
	PQfinish(rt->keeper_pg);
	free(rt->unmarked);
	pthread_mutex_destroy(&rt->outbox_lock);
	jsCtx_Destroy(rt->js);
	free(rt->actor);
	free(rt->pg_dsn);
	free(rt);
}

vox_status vox_runtime_config_check(const vox_runtime_config *cfg,
				    vox_buf *errors)
{
	vox_status st = VOX_OK;
	if (cfg->max_deliver != -1) {
		vox_buf_printf(errors, "VOX_MAX_DELIVER: must be -1 (unlimited):"
			       " with %" PRId64 " JetStream would drop a message"
			       " after its last delivery without a dead letter\n",
			       cfg->max_deliver);
		st = VOX_E_CONFIG;
	}
	/* the batch in the transaction and the one gathered meanwhile */
	if (cfg->max_ack_pending < 2 * cfg->batch) {
		vox_buf_printf(errors, "VOX_MAX_ACK_PENDING: %" PRId64 " is below"
			       " 2 x VOX_BATCH (%" PRId64 "): JetStream would stop"
			       " delivering while a batch is written\n",
			       cfg->max_ack_pending, 2 * cfg->batch);
		st = VOX_E_CONFIG;
	}
	return st;
}

void vox_runtime_stats(vox_runtime *rt, vox_buf *m)
{
	char state[6] = {0};
	uint64_t packed = atomic_load(&rt->last_sqlstate);
	for (int i = 0; i < 5; i++)
		state[i] = (char)((packed >> (8 * i)) & 0xff);
	vox_buf_printf(m,
		       "\"consume.received\":\"%" PRIuFAST64 "\","
		       "\"consume.batches\":\"%" PRIuFAST64 "\","
		       "\"consume.committed\":\"%" PRIuFAST64 "\","
		       "\"consume.acked\":\"%" PRIuFAST64 "\","
		       "\"consume.dead_letters\":\"%" PRIuFAST64 "\","
		       "\"consume.naked\":\"%" PRIuFAST64 "\","
		       "\"consume.redelivered\":\"%" PRIuFAST64 "\","
		       "\"consume.isolated\":\"%" PRIuFAST64 "\","
		       "\"consume.deferred\":\"%" PRIuFAST64 "\","
		       "\"consume.lag\":\"%" PRIuFAST64 "\","
		       "\"consume.faults\":\"%" PRIuFAST64 "\","
		       "\"consume.last_sqlstate\":\"%s\","
		       "\"outbox.published\":\"%" PRIuFAST64 "\","
		       "\"outbox.refused\":\"%" PRIuFAST64 "\"",
		       atomic_load(&rt->received), atomic_load(&rt->batches),
		       atomic_load(&rt->committed), atomic_load(&rt->acked),
		       atomic_load(&rt->dead_letters), atomic_load(&rt->naked),
		       atomic_load(&rt->redelivered), atomic_load(&rt->isolated),
		       atomic_load(&rt->deferred),
		       atomic_load(&rt->lag), atomic_load(&rt->faults), state,
		       atomic_load(&rt->outbox_published),
		       atomic_load(&rt->outbox_refused));
}
