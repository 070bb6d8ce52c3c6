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
#include "io/log.h"
#include "io/natsconn.h"
#include "io/pg.h"
#include "vox/client.h"
#include "vox/subjects.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define RC(f) offsetof(vox_runtime_config, f)

const vox_cfg_var vox_runtime_vars[] = {
	{"VOX_BATCH", VOX_CFG_INT, "256", 1, 4096, NULL, RC(batch),
	 "messages fetched and committed together"},
	{"VOX_FETCH_WAIT_MS", VOX_CFG_INT, "500", 10, 30000, NULL,
	 RC(fetch_wait_ms), "how long a fetch waits for messages"},
	{"VOX_ACK_WAIT_S", VOX_CFG_INT, "30", 1, 3600, NULL, RC(ack_wait_s),
	 "consumer AckWait: redelivery after this without an ack"},
	{"VOX_MAX_ACK_PENDING", VOX_CFG_INT, "4096", 1, 1000000, NULL,
	 RC(max_ack_pending), "consumer MaxAckPending"},
	{"VOX_MAX_DELIVER", VOX_CFG_INT, "-1", -1, 1000000, NULL,
	 RC(max_deliver), "consumer MaxDeliver (-1: unlimited)"},
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
	 "deliveries of a deferred message (a refund before its payment)"
	 " before it is dead-lettered"},
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

typedef struct batch {
	natsMsgList list; /* owns the messages */
	vox_item *items;
	size_t n;
} batch;

typedef struct emitted {
	char *msg_id;
	char *subject;
	unsigned char *payload;
	size_t len;
	int64_t id; /* outbox row */
} emitted;

struct vox_tx {
	PGconn *pg;
	const char *actor;
	emitted *rows;
	size_t nrows, caprows;
};

typedef struct input_rt {
	vox_runtime *rt;
	vox_input def;
	natsSubscription *sub;
	pthread_t fetcher, writer;
	bool threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	batch *queued; /* at most one batch waits */
	bool writer_busy; /* the writer holds a batch */
	bool fetcher_done;
	PGconn *pg;
	bool pg_down_logged;
	int64_t pg_backoff;
	int64_t next_heal_ms;
	int64_t next_purge_ms;
	bool heals; /* this input's writer runs the outbox healer */
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
	/* statistics */
	atomic_uint_fast64_t received, batches, acked, dead_letters, naked,
		redelivered, committed, isolated, outbox_published, lag,
		deferred;
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
	natsMsgList_Destroy(&b->list);
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
	jsErrCode jerr = 0;
	natsStatus s;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = VOX_STREAM_EVENTS;
	so.Consumer = in->def.durable;
	s = js_PullSubscribe(&in->sub, rt->js, in->def.filter, in->def.durable,
			     NULL, &so, &jerr);
	if (s != NATS_OK) {
		snprintf(err, errlen, "subscribe %s: %s (%d)", in->def.durable,
			 nats_GetLastError(NULL), (int)jerr);
		return vox_nats_status(s);
	}
	return VOX_OK;
}

/* ---- dispositions ------------------------------------------------------ */

static int64_t nak_delay(vox_runtime *rt, uint64_t delivered)
{
	int64_t d = 250;
	for (uint64_t i = 1; i < delivered && d < rt->cfg.retry_max_ms; i++)
		d *= 2;
	return d > rt->cfg.retry_max_ms ? rt->cfg.retry_max_ms : d;
}

static void ack(vox_runtime *rt, vox_item *it)
{
	if (natsMsg_Ack(it->msg, NULL) == NATS_OK)
		atomic_fetch_add(&rt->acked, 1);
	/* a lost ack means a redelivery, which idempotency absorbs */
}

static void nak(vox_runtime *rt, vox_item *it)
{
	natsMsg_NakWithDelay(it->msg, nak_delay(rt, it->delivered), NULL);
	atomic_fetch_add(&rt->naked, 1);
}

/* Header values may not hold CR/LF; keep them printable. */
static void header_safe(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/*
 * Dead-letter an item: republish its bytes to dlq.<subject> with the
 * reason, wait for JetStream to store it, then terminate the original.
 * If the dead letter cannot be stored, the original is naked instead, so
 * nothing is lost.
 */
static const char *code_for(vox_status st);

static void dead_letter(vox_runtime *rt, vox_item *it)
{
	const char *code = it->code ? it->code : code_for(it->result);
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsPubOptions po;
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
	if (s == NATS_OK) {
		jsPubOptions_Init(&po);
		po.MaxWait = 5000;
		s = js_PublishMsg(&pa, rt->js, m, &po, NULL);
	}
	if (s == NATS_OK) {
		natsMsg_Term(it->msg, NULL);
		atomic_fetch_add(&rt->dead_letters, 1);
		vox_warn("msg=\"dead letter\" subject=%s seq=%" PRIu64
			 " code=%s status=%s reason=\"%s\"",
			 natsMsg_GetSubject(it->msg), it->stream_seq, code,
			 status, reason);
	} else {
		vox_warn("msg=\"dead letter not stored, will retry\" seq=%" PRIu64
			 " error=\"%s\"", it->stream_seq, natsStatus_GetText(s));
		nak(rt, it);
	}
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
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
	default: return "internal";
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
	if (st != VOX_OK) {
		vox_error("msg=\"emit refused\" reason=\"%s\"", err.message);
		return st;
	}
	vox_str id = vox_event_msg_id(ev);
	snprintf(msgid, sizeof(msgid), "%.*s", (int)id.len, id.ptr);
	if (!vox_subject_format(subject, sizeof(subject), ev->kind,
				vox_event_org(ev)->s)) {
		free(payload);
		return VOX_E_INVALID;
	}
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

/* Publish rows with their msg ids and wait for JetStream; true when every
 * one was stored (or recognised as a duplicate). */
static bool publish_rows(vox_runtime *rt, const emitted *rows, size_t n)
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
			ok++;
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
	return ok == n;
}

static void fault(vox_runtime *rt, const char *point)
{
	if (strcmp(rt->cfg.fault, point) == 0) {
		vox_warn("msg=\"fault injected, exiting\" point=%s", point);
		fflush(stderr);
		_exit(3);
	}
}

static vox_status mark_published(PGconn *pg, const emitted *rows, size_t n)
{
	vox_buf ids;
	vox_buf_init(&ids);
	vox_buf_putc(&ids, '{');
	for (size_t i = 0; i < n; i++)
		vox_buf_printf(&ids, "%s%" PRId64, i ? "," : "", rows[i].id);
	vox_buf_putc(&ids, '}');
	const char *params[1] = {ids.data};
	PGresult *r = PQexecParams(pg,
				   "UPDATE vox_outbox SET published_at = now()"
				   " WHERE id = ANY($1::bigint[])",
				   1, NULL, params, NULL, NULL, 0);
	vox_status st = vox_pg_status(pg, r);
	PQclear(r);
	vox_buf_release(&ids);
	return st;
}

/* Publish what this transaction emitted, after its commit. A failure
 * leaves the rows to the healer. */
static void flush_outbox(vox_runtime *rt, input_rt *in, vox_tx *tx)
{
	if (tx->nrows == 0)
		return;
	if (publish_rows(rt, tx->rows, tx->nrows)) {
		fault(rt, "after-publish");
		vox_status st = mark_published(in->pg, tx->rows, tx->nrows);
		VOX_UNUSED(st); /* unmarked rows are re-published: deduplicated */
	}
}

static uint64_t be64(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | u[i];
	return v;
}

/* Publish unpublished rows older than outbox_age_ms (left by a crash or a
 * NATS outage), several instances at once thanks to SKIP LOCKED. */
static void heal_outbox(vox_runtime *rt, input_rt *in)
{
	char msg[256], age[32];
	PGresult *r = NULL;
	emitted *rows = NULL;
	size_t n = 0;
	if (!in->pg || vox_pg_exec(in->pg, "BEGIN", msg, sizeof(msg)) != VOX_OK)
		return;
	snprintf(age, sizeof(age), "%" PRId64 " milliseconds", rt->cfg.outbox_age_ms);
	const char *params[1] = {age};
	r = PQexecParams(in->pg,
			 "SELECT id, msg_id, subject, payload FROM vox_outbox"
			 " WHERE published_at IS NULL"
			 " AND created_at < now() - $1::interval"
			 " ORDER BY id LIMIT 256 FOR UPDATE SKIP LOCKED",
			 1, NULL, params, NULL, NULL, 1);
	if (vox_pg_status(in->pg, r) != VOX_OK)
		goto out;
	n = (size_t)PQntuples(r);
	if (n == 0)
		goto out;
	rows = vox_calloc(n, sizeof(*rows));
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
	if (publish_rows(rt, rows, n)) {
		if (mark_published(in->pg, rows, n) == VOX_OK)
			vox_info("msg=\"outbox healed\" published=%zu", n);
	}
out:
	PQclear(r);
	for (size_t i = 0; i < n && rows; i++) {
		free(rows[i].msg_id);
		free(rows[i].subject);
		free(rows[i].payload);
	}
	free(rows);
	vox_status st = vox_pg_exec(in->pg, "COMMIT", msg, sizeof(msg));
	VOX_UNUSED(st);
}

static void purge_outbox(vox_runtime *rt, input_rt *in)
{
	char keep[32];
	snprintf(keep, sizeof(keep), "%" PRId64 " hours", rt->cfg.outbox_keep_h);
	const char *params[1] = {keep};
	PGresult *r = PQexecParams(in->pg,
				   "DELETE FROM vox_outbox WHERE published_at < now() - $1::interval",
				   1, NULL, params, NULL, NULL, 0);
	PQclear(r);
}

/* ---- Postgres ---------------------------------------------------------- */

static bool pg_ready(vox_runtime *rt, input_rt *in)
{
	char err[512];
	if (in->pg && PQstatus(in->pg) == CONNECTION_OK)
		return true;
	if (in->pg) {
		PQfinish(in->pg);
		in->pg = NULL;
	}
	PGconn *c = NULL;
	if (vox_pg_connect(&c, rt->pg_dsn, err, sizeof(err)) != VOX_OK) {
		if (!in->pg_down_logged) {
			vox_error("msg=\"postgres unreachable, retrying\" input=%s"
				  " error=\"%s\"", in->def.durable, err);
			in->pg_down_logged = true;
		}
		return false;
	}
	if (rt->handler.prepare && rt->handler.prepare(rt->handler.ctx, c) != VOX_OK) {
		if (!in->pg_down_logged) {
			vox_error("msg=\"postgres prepare failed, retrying\" input=%s"
				  " error=\"%.*s\"", in->def.durable,
				  (int)strcspn(PQerrorMessage(c), "\n"),
				  PQerrorMessage(c));
			in->pg_down_logged = true;
		}
		PQfinish(c);
		return false;
	}
	if (in->pg_down_logged)
		vox_info("msg=\"postgres reachable again\" input=%s", in->def.durable);
	in->pg_down_logged = false;
	in->pg_backoff = 0;
	in->pg = c;
	return true;
}

/* Run apply over items in one transaction. On VOX_OK it committed. */
static vox_status run_tx(vox_runtime *rt, input_rt *in, vox_item **items,
			 size_t n, vox_tx *tx, char *why, size_t whylen)
{
	vox_status st;
	tx->pg = in->pg;
	tx->actor = rt->actor;
	st = vox_pg_exec(in->pg, "BEGIN", why, whylen);
	if (st != VOX_OK)
		return st;
	/* apply sees a contiguous array: copy the pointers' targets in */
	vox_item *arr = vox_malloc(n * sizeof(*arr));
	for (size_t i = 0; i < n; i++)
		arr[i] = *items[i];
	st = rt->handler.apply(rt->handler.ctx, tx, arr, n);
	if (st == VOX_OK) {
		st = vox_pg_exec(in->pg, "COMMIT", why, whylen);
	} else {
		const char *m = PQerrorMessage(in->pg);
		if (*m)
			snprintf(why, whylen, "%.*s", (int)strcspn(m, "\n"), m);
		else
			snprintf(why, whylen, "handler: %s", vox_status_str(st));
	}
	if (st == VOX_OK) {
		for (size_t i = 0; i < n; i++) {
			items[i]->result = arr[i].result;
			items[i]->code = arr[i].code;
			items[i]->defer = arr[i].defer;
			memcpy(items[i]->reason, arr[i].reason, sizeof(arr[i].reason));
		}
	} else {
		char ignored[64];
		vox_status rb = vox_pg_exec(in->pg, "ROLLBACK", ignored, sizeof(ignored));
		VOX_UNUSED(rb);
		tx_release(tx);
		if (PQstatus(in->pg) != CONNECTION_OK)
			st = VOX_E_UNAVAILABLE;
	}
	free(arr);
	return st;
}

/* After a commit: ack what was applied, nak what the handler deferred
 * (until its last allowed delivery), dead-letter what it refused, publish
 * the outbox. */
static void settle(vox_runtime *rt, input_rt *in, vox_item **items, size_t n,
		   vox_tx *tx)
{
	if (tx->nrows)
		fault(rt, "after-commit");
	atomic_fetch_add(&rt->committed, 1);
	for (size_t i = 0; i < n; i++) {
		vox_item *it = items[i];
		if (it->result == VOX_OK) {
			ack(rt, it);
		} else if (it->defer &&
			   it->delivered < (uint64_t)rt->cfg.defer_deliveries) {
			vox_info("msg=\"deferred\" input=%s stream_seq=%" PRIu64
				 " delivered=%" PRIu64 " reason=\"%s\"",
				 in->def.durable, it->stream_seq, it->delivered,
				 it->reason);
			atomic_fetch_add(&rt->deferred, 1);
			nak(rt, it);
		} else {
			dead_letter(rt, it);
		}
	}
	flush_outbox(rt, in, tx);
	tx_release(tx);
}

static void process(vox_runtime *rt, input_rt *in, batch *b)
{
	vox_item **valid = vox_malloc((b->n ? b->n : 1) * sizeof(*valid));
	size_t nvalid = 0;
	char why[512];
	vox_tx tx = {0};

	for (size_t i = 0; i < b->n; i++) {
		vox_item *it = &b->items[i];
		if (it->result != VOX_OK)
			dead_letter(rt, it);
		else
			valid[nvalid++] = it;
	}
	if (nvalid == 0)
		goto out;

	for (int attempt = 0;; attempt++) {
		if (!pg_ready(rt, in)) {
			for (size_t i = 0; i < nvalid; i++)
				nak(rt, valid[i]);
			/* do not spin while the database is away */
			in->pg_backoff = in->pg_backoff ? in->pg_backoff * 2 : 100;
			if (in->pg_backoff > rt->cfg.retry_max_ms)
				in->pg_backoff = rt->cfg.retry_max_ms;
			nap(rt, in->pg_backoff);
			goto out;
		}
		vox_status st = run_tx(rt, in, valid, nvalid, &tx, why, sizeof(why));
		if (st == VOX_OK) {
			settle(rt, in, valid, nvalid, &tx);
			goto out;
		}
		if (st == VOX_E_RETRY && attempt < 3)
			continue; /* serialization failure or deadlock: run again */
		if (vox_status_is_transient(st)) {
			vox_warn("msg=\"batch not applied, will retry\" input=%s"
				 " error=\"%s\"", in->def.durable, why);
			for (size_t i = 0; i < nvalid; i++)
				nak(rt, valid[i]);
			goto out;
		}
		break; /* permanent: isolate below */
	}

	/* One message poisons the batch: apply them one at a time. */
	atomic_fetch_add(&rt->isolated, 1);
	vox_warn("msg=\"batch failed, isolating\" input=%s size=%zu error=\"%s\"",
		 in->def.durable, nvalid, why);
	for (size_t i = 0; i < nvalid; i++) {
		vox_status st = pg_ready(rt, in)
			? run_tx(rt, in, &valid[i], 1, &tx, why, sizeof(why))
			: VOX_E_UNAVAILABLE;
		if (st == VOX_OK) {
			settle(rt, in, &valid[i], 1, &tx);
		} else if (vox_status_is_transient(st)) {
			nak(rt, valid[i]);
		} else {
			vox_item_reject(valid[i], st, "%s", why);
			dead_letter(rt, valid[i]);
		}
	}
out:
	free(valid);
}

/* ---- threads ----------------------------------------------------------- */

/* Decode one fetched message into an item; a refusal is recorded on the
 * item (the writer dead-letters it). */
static void decode_item(vox_runtime *rt, natsMsg *m, vox_item *it)
{
	jsMsgMetaData *meta = NULL;
	vox_decode_error err;
	memset(it, 0, sizeof(*it));
	it->msg = m;
	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		it->stream_seq = meta->Sequence.Stream;
		it->delivered = meta->NumDelivered;
		atomic_store(&rt->lag, meta->NumPending);
		jsMsgMetaData_Destroy(meta);
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
}

/*
 * After a failed fetch (NATS went away), pull on a fresh subscription.
 * libnats 3.4.1 can count messages of an interrupted pull request into the
 * next fetch on the same subscription and overrun its array; a new inbox
 * never sees them (the server redelivers them after AckWait). The old
 * subscription goes only once the writer holds none of its messages.
 */
static void resubscribe(vox_runtime *rt, input_rt *in)
{
	char err[256];
	pthread_mutex_lock(&in->lock);
	while (in->queued != NULL || in->writer_busy)
		pthread_cond_wait(&in->cond, &in->lock);
	pthread_mutex_unlock(&in->lock);
	natsSubscription *old = in->sub;
	in->sub = NULL;
	while (!atomic_load(&rt->stop)) {
		if (subscribe(rt, in, err, sizeof(err)) == VOX_OK)
			break;
		nap(rt, 500);
	}
	if (old) {
		natsSubscription_Unsubscribe(old);
		natsSubscription_Destroy(old);
	}
}

static void *fetcher_main(void *arg)
{
	input_rt *in = arg;
	vox_runtime *rt = in->rt;
	int64_t backoff = 100;
	bool down_logged = false;

	while (!atomic_load(&rt->stop)) {
		natsMsgList list = {0};
		jsErrCode jerr = 0;
		natsStatus s = natsSubscription_Fetch(&list, in->sub, (int)rt->cfg.batch,
						      rt->cfg.fetch_wait_ms, &jerr);
		if (s == NATS_TIMEOUT || (s == NATS_OK && list.Count == 0)) {
			natsMsgList_Destroy(&list);
			continue;
		}
		if (s != NATS_OK) {
			natsMsgList_Destroy(&list);
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

		batch *b = vox_calloc(1, sizeof(*b));
		b->list = list;
		b->n = (size_t)list.Count;
		b->items = vox_calloc(b->n, sizeof(*b->items));
		for (size_t i = 0; i < b->n; i++)
			decode_item(rt, list.Msgs[i], &b->items[i]);
		atomic_fetch_add(&rt->received, b->n);
		atomic_fetch_add(&rt->batches, 1);

		pthread_mutex_lock(&in->lock);
		while (in->queued != NULL)
			pthread_cond_wait(&in->cond, &in->lock);
		in->queued = b;
		pthread_cond_broadcast(&in->cond);
		pthread_mutex_unlock(&in->lock);
	}
	pthread_mutex_lock(&in->lock);
	in->fetcher_done = true;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
	return NULL;
}

static void housekeeping(vox_runtime *rt, input_rt *in)
{
	if (!in->heals)
		return;
	int64_t now = now_ms();
	if (now >= in->next_heal_ms) {
		if (pg_ready(rt, in)) {
			heal_outbox(rt, in);
			if (rt->handler.tick)
				rt->handler.tick(rt->handler.ctx, in->pg);
		}
		in->next_heal_ms = now + rt->cfg.outbox_interval_ms;
	}
	if (now >= in->next_purge_ms && in->pg) {
		purge_outbox(rt, in);
		in->next_purge_ms = now + 60000;
	}
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
		batch *b = in->queued;
		in->queued = NULL;
		in->writer_busy = b != NULL;
		bool done = b == NULL && in->fetcher_done;
		pthread_cond_broadcast(&in->cond);
		pthread_mutex_unlock(&in->lock);
		if (b) {
			process(rt, in, b);
			batch_free(b);
			pthread_mutex_lock(&in->lock);
			in->writer_busy = false;
			pthread_cond_broadcast(&in->cond);
			pthread_mutex_unlock(&in->lock);
		}
		if (done)
			break;
		housekeeping(rt, in);
	}
	/* publish anything left unpublished by this process's commits */
	if (in->heals && in->pg && PQstatus(in->pg) == CONNECTION_OK) {
		int64_t age = rt->cfg.outbox_age_ms;
		rt->cfg.outbox_age_ms = 0;
		heal_outbox(rt, in);
		rt->cfg.outbox_age_ms = age;
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
	rt->inputs = vox_calloc(ninputs, sizeof(*rt->inputs));
	rt->ninputs = ninputs;
	for (size_t i = 0; i < ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		in->rt = rt;
		in->def = inputs[i];
		in->heals = i == 0;
		pthread_mutex_init(&in->lock, NULL);
		pthread_cond_init(&in->cond, NULL);
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
		if (in->sub) {
			/* drain before destroy: a 3.4.1 race otherwise */
			if (natsSubscription_Drain(in->sub) == NATS_OK)
				natsSubscription_WaitForDrainCompletion(in->sub, 5000);
			natsSubscription_Destroy(in->sub);
		}
		batch_free(in->queued);
		if (in->pg)
			PQfinish(in->pg);
		pthread_mutex_destroy(&in->lock);
		pthread_cond_destroy(&in->cond);
	}
	free(rt->inputs);
	jsCtx_Destroy(rt->js);
	free(rt->actor);
	free(rt->pg_dsn);
	free(rt);
}

void vox_runtime_stats(vox_runtime *rt, vox_buf *m)
{
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
		       "\"outbox.published\":\"%" PRIuFAST64 "\"",
		       atomic_load(&rt->received), atomic_load(&rt->batches),
		       atomic_load(&rt->committed), atomic_load(&rt->acked),
		       atomic_load(&rt->dead_letters), atomic_load(&rt->naked),
		       atomic_load(&rt->redelivered), atomic_load(&rt->isolated),
		       atomic_load(&rt->deferred),
		       atomic_load(&rt->lag), atomic_load(&rt->outbox_published));
}
