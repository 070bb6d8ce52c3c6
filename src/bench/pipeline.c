/*
 * pipeline.c - the pipeline scenarios of vox-bench (issue #10). Each prints
 * exactly one JSON object on one line on stdout; progress goes to stderr.
 *
 *   vox-bench e2e-calls --url U --dsn D --orgs N_ORGS --events N
 *                       [--rate R] [--sample K] [--pending P] [--name S]
 *       vox-calls and vox-billing must be running. Creates N_ORGS
 *       organizations (owner DSN) with a large opening balance, then
 *       publishes N call.started + N call.ended (call i: org i % N_ORGS, a
 *       varied duration; its call.ended right after its call.started)
 *       with async JetStream publishing (at most P acks pending, default
 *       4096). --rate R > 0 paces calls (one call.started + one
 *       call.ended each) at R/s, open loop; 0 (default) is as fast as
 *       possible. Done when SQL shows N completed calls and N call_charges
 *       rows for these orgs (polled every 250 ms, at most 300 s; while the
 *       last 64 calls published are not all done, only those are looked
 *       up, so the poll takes little from the database under test).
 *       seconds: first publish to that poll. Latency of every K-th
 *       call.ended (default 10): the later of calls.updated_at,
 *       call_charges.created_at and the ledger row's created_at (times
 *       inside the committing transactions, so a lower bound of the
 *       commit) minus its publish time (its due time under --rate, so a
 *       stalled publisher is charged too). Scenario "hot-org" when
 *       N_ORGS is 1 (or --name).
 *
 *   vox-bench limit --url U --dsn D [--events N] [--orgs N_ORGS]
 *       the machine's ceiling for this pipeline with a trivial consumer:
 *       its own stream BENCH_LIMIT (bench.limit.>) and durable pull
 *       consumer; a publisher thread publishes N call.ended bodies (the
 *       same as e2e-calls) async while the main thread fetches batches of
 *       256, inserts them with one INSERT ... unnest into bench_limit in
 *       one transaction, commits and acks each message. The stream and the
 *       table are dropped at the end.
 *
 *   vox-bench baseline-seed --dsn D [--orgs N_ORGS] [--events N] [--conns C]
 *       the replaced system's per-event design: one transaction per call
 *       through the plpgsql bench_deduct_call_credits (per-org advisory
 *       lock, idempotency read from the ledger, debt limit, balance update,
 *       ledger row), from C connections (default 8), same orgs and
 *       durations as e2e-calls.
 */
#include "core/common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <libpq-fe.h>
#include <nats/nats.h>
#include <sodium.h>

#include "bench/pipeline.h"
#include "io/log.h"
#include "io/natsconn.h"
#include "io/pg.h"
#include "vox/client.h"

#define NS_PER_S INT64_C(1000000000)
#define P_MAX_EVENTS 10000000L
#define P_MAX_ORGS 100000L
#define P_RATE_PER_MINUTE 70 /* VOX_RATE_PER_MINUTE's default */
#define P_OPENING_BALANCE 1000000000 /* far from any limit of the bigint columns */
#define P_POLL_NS (250 * INT64_C(1000000))
#define P_WAIT_NS (300 * NS_PER_S)
#define P_LIMIT_BATCH 256
#define P_XSTR(x) #x
#define VOX_BENCH_STR(x) P_XSTR(x)

/* Wall clock, in microseconds since the epoch: comparable with the
 * database's timestamps (same machine). */
static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void nap_until(int64_t t)
{
	for (int tries = 0; tries < 8; tries++) {
		if (bench_now_ns() >= t)
			return;
		struct timespec ts = {(time_t)(t / NS_PER_S), (long)(t % NS_PER_S)};
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (rc != 0 && rc != EINTR)
			return;
	}
}

/* ---- options ------------------------------------------------------------ */

typedef struct popts {
	const char *scenario;
	const char *url;
	const char *dsn;
	const char *name;
	long orgs;
	long events;
	long rate;
	long sample;
	long pending;
	long conns;
} popts;

static void pusage(FILE *f)
{
	fprintf(f,
		"usage: vox-bench e2e-calls --url U --dsn D --orgs N_ORGS --events N"
		" [--rate R]\n"
		"                           [--sample K] [--pending P] [--name S]\n"
		"       vox-bench limit --url U --dsn D [--events N] [--orgs N_ORGS]\n"
		"       vox-bench baseline-seed --dsn D [--orgs N_ORGS] [--events N]"
		" [--conns C]\n"
		"  --url and --dsn default to $VOX_NATS_URL and $VOX_PG_DSN (the"
		" owner).\n");
}

/* ---- identities and events ---------------------------------------------- */

/* A run's ids: <run>-<tag>-4000-8000-<index>, valid UUIDs unique per run. */
typedef struct prun {
	uint32_t id;
} prun;

static void run_init(prun *r)
{
	randombytes_buf(&r->id, sizeof(r->id));
}

static void make_uuid(char out[37], const prun *r, unsigned tag, long i)
{
	char t[48];
	snprintf(t, sizeof(t), "%08" PRIx32 "-%04x-4000-8000-%012lx", r->id,
		 tag & 0xffffu, (unsigned long)i & 0xffffffffffffUL);
	memcpy(out, t, 36);
	out[36] = '\0';
}

#define TAG_ORG 0x0001u
#define TAG_CALL 0x0002u

/* The index in a run uuid (its last 12 hex digits), or -1. */
static long uuid_index(const char *s)
{
	if (strlen(s) != 36)
		return -1;
	char *end;
	errno = 0;
	long v = strtol(s + 24, &end, 16);
	return errno || *end ? -1 : v;
}

/* Call i's duration: varied, 0..900 s (a few are 0), the same in every
 * scenario. */
static int call_duration(long i)
{
	uint32_t h = (uint32_t)i * 2654435761u;
	return (int)((h >> 8) % 901u);
}

static const char p_transcript[] =
	"Agent: Good morning, Riverside Dental, how can I help?\n"
	"Caller: Hi, I'd like to book a check-up for next week, ideally"
	" Tuesday afternoon. I'm a new patient.\n"
	"Agent: Of course. Can I take your name and date of birth?\n"
	"Caller: It's Priya Shah, 14th of March 1988.\n"
	"Agent: Thank you. We have 2:30pm or 4:15pm on Tuesday.\n"
	"Caller: 2:30 works. Also, do you do whitening?\n"
	"Agent: We do; the dentist can discuss options at your visit.\n";

#define PSTR(s) ((vox_str){s, sizeof(s) - 1})

typedef struct pcall {
	char org[37];
	char call[37];
	char sid[64];
	char eid[64];
} pcall;

static void call_ids(pcall *c, const prun *r, long i, long orgs)
{
	make_uuid(c->org, r, TAG_ORG, i % orgs);
	make_uuid(c->call, r, TAG_CALL, i);
	snprintf(c->sid, sizeof(c->sid), "bench-%08" PRIx32 "-s-%ld", r->id, i);
	snprintf(c->eid, sizeof(c->eid), "bench-%08" PRIx32 "-e-%ld", r->id, i);
}

static void build_started(vox_event *ev, const pcall *c, int64_t now_s)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_CALL_STARTED;
	vox_call_started *s = &ev->u.call_started;
	s->event_id = (vox_str){c->sid, strlen(c->sid)};
	memcpy(s->org_id.s, c->org, 37);
	memcpy(s->call_id.s, c->call, 37);
	s->vapi_call_id = PSTR("call_7f3a9c1e2b4d");
	s->direction = VOX_DIR_INBOUND;
	s->from_number = PSTR("+447700900123");
	s->to_number = PSTR("+442071838750");
	s->caller_name = PSTR("Priya Shah");
	s->started_at = (vox_time){now_s - 900, 0, true};
}

static void build_ended(vox_event *ev, const pcall *c, long i, int64_t now_s)
{
	int d = call_duration(i);
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_CALL_ENDED;
	vox_call_ended *e = &ev->u.call_ended;
	e->event_id = (vox_str){c->eid, strlen(c->eid)};
	memcpy(e->org_id.s, c->org, 37);
	memcpy(e->call_id.s, c->call, 37);
	e->started_at = (vox_time){now_s - 900, 0, true};
	e->ended_at = (vox_time){now_s - 900 + d, 0, true};
	e->duration_seconds = d;
	e->status = VOX_CALL_COMPLETED;
	e->direction = VOX_DIR_INBOUND;
	e->from_number = PSTR("+447700900123");
	e->to_number = PSTR("+442071838750");
	e->transcript = PSTR(p_transcript);
	e->summary = PSTR("New patient booked a check-up Tuesday 2:30pm;"
			  " asked about whitening.");
	e->recording_url = PSTR("https://recordings.example/7f3a9c1e2b4d.wav");
	e->sentiment_label = VOX_SENTIMENT_POSITIVE;
	e->has_sentiment_score = true;
	e->sentiment_score = 0.82;
	e->sentiment_urgency = VOX_URGENCY_LOW;
}

/* ---- Postgres helpers ----------------------------------------------------- */

static PGconn *pg_open(const char *dsn)
{
	PGconn *c = NULL;
	char err[256] = "";
	if (vox_pg_connect(&c, dsn, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "vox-bench: postgres: %s\n", err);
		return NULL;
	}
	return c;
}

static bool pg_ok(PGconn *c, PGresult *r, const char *what)
{
	if (vox_pg_status(c, r) == VOX_OK)
		return true;
	fprintf(stderr, "vox-bench: %s: %s", what,
		r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	return false;
}

static bool pg_run(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	bool ok = pg_ok(c, r, what);
	PQclear(r);
	return ok;
}

/* End the transaction the statement of r ran in: COMMIT when it
 * succeeded, else ROLLBACK. Clears r. */
static bool pg_end_tx(PGconn *c, PGresult *r, const char *what)
{
	bool ok = pg_ok(c, r, what);
	PQclear(r);
	if (ok)
		return pg_run(c, "COMMIT", "commit");
	bool rb = pg_run(c, "ROLLBACK", "rollback");
	VOX_UNUSED(rb);
	return false;
}

/* The org ids of a run as a uuid[] literal. */
static char *org_array(const prun *r, long orgs)
{
	vox_pg_array a;
	char id[37];
	vox_pg_array_init(&a);
	for (long i = 0; i < orgs; i++) {
		make_uuid(id, r, TAG_ORG, i);
		vox_pg_array_str(&a, id, 36);
	}
	const char *t = vox_pg_array_text(&a);
	char *out = vox_strndup(t, strlen(t));
	vox_pg_array_release(&a);
	return out;
}

/* orgs organizations with a large opening balance (and its ledger row,
 * as `voxctl org create` writes it), in one transaction. */
static bool create_orgs(PGconn *c, const prun *r, const char *arr)
{
	char tag[32];
	snprintf(tag, sizeof(tag), "bench %08" PRIx32, r->id);
	const char *p[2] = {arr, tag};
	if (!pg_run(c, "BEGIN", "begin"))
		return false;
	PGresult *res = PQexecParams(
		c,
		"WITH o AS (INSERT INTO organizations (id, name, email,"
		"  wallet_balance_pence, debt_limit_pence)"
		" SELECT id, $2, 'bench@example.invalid', "
		VOX_BENCH_STR(P_OPENING_BALANCE) ", 500"
		" FROM unnest($1::uuid[]) AS id RETURNING id)"
		" INSERT INTO credit_transactions (org_id, amount_pence, type,"
		"  description, balance_before_pence, balance_after_pence)"
		" SELECT id, " VOX_BENCH_STR(P_OPENING_BALANCE) ", 'topup',"
		" 'opening balance', 0, " VOX_BENCH_STR(P_OPENING_BALANCE) " FROM o",
		2, NULL, p, NULL, NULL, 0);
	return pg_end_tx(c, res, "create orgs");
}

/* ---- async publishing ----------------------------------------------------- */

typedef struct ppub {
	natsConnection *nc;
	jsCtx *js;
	atomic_long failed;  /* acks that came back as errors */
	atomic_long resent;  /* of those, published again */
} ppub;

/* A failed ack: publish the same message again (its Nats-Msg-Id makes a
 * repeat harmless), a bounded number of times overall. */
static void on_pub_err(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	ppub *p = closure;
	atomic_fetch_add(&p->failed, 1);
	if (atomic_load(&p->resent) < 100000 &&
	    js_PublishMsgAsync(js, &pae->Msg, NULL) == NATS_OK)
		atomic_fetch_add(&p->resent, 1);
}

static int pub_open(ppub *p, const char *url, long pending, const char *name)
{
	char err[256] = "";
	memset(p, 0, sizeof(*p));
	atomic_init(&p->failed, 0);
	atomic_init(&p->resent, 0);
	vox_nats_opts no = {.url = url, .name = name, .timeout_ms = 5000};
	vox_status st = vox_nats_connect(&p->nc, &no, err, sizeof(err));
	if (st != VOX_OK) {
		fprintf(stderr, "vox-bench: nats: %s\n", err);
		return st == VOX_E_CONFIG || st == VOX_E_INVALID ? 2 : 3;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	jo.PublishAsync.MaxPending = pending;
	jo.PublishAsync.StallWait = 1000;
	jo.PublishAsync.ErrHandler = on_pub_err;
	jo.PublishAsync.ErrHandlerClosure = p;
	if (natsConnection_JetStream(&p->js, p->nc, &jo) != NATS_OK) {
		fprintf(stderr, "vox-bench: jetstream: %s\n", nats_GetLastError(NULL));
		return 3;
	}
	return 0;
}

static void pub_close(ppub *p)
{
	jsCtx_Destroy(p->js);
	p->js = NULL;
	if (p->nc) {
		natsStatus s = natsConnection_FlushTimeout(p->nc, 2000);
		VOX_UNUSED(s);
	}
	natsConnection_Destroy(p->nc);
	p->nc = NULL;
}

/* Publish *m (taken), waiting while MaxPending acks are outstanding. */
static bool pub_msg(ppub *p, natsMsg **m)
{
	for (int tries = 0; tries < 300; tries++) {
		natsStatus s = js_PublishMsgAsync(p->js, m, NULL);
		if (s == NATS_OK)
			return true;
		if (s != NATS_TIMEOUT) {
			fprintf(stderr, "vox-bench: publish: %s\n", natsStatus_GetText(s));
			break;
		}
	}
	natsMsg_Destroy(*m);
	*m = NULL;
	return false;
}

static bool pub_event(ppub *p, const vox_event *ev)
{
	natsMsg *m = NULL;
	vox_decode_error err;
	if (vox_event_to_msg(&m, ev, &err) != VOX_OK) {
		fprintf(stderr, "vox-bench: event refused: %s\n", err.message);
		return false;
	}
	return pub_msg(p, &m);
}

static bool pub_complete(ppub *p)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	natsStatus s = js_PublishAsyncComplete(p->js, &po);
	if (s != NATS_OK) {
		fprintf(stderr, "vox-bench: publish complete: %s\n", natsStatus_GetText(s));
		return false;
	}
	return true;
}


/* ---- e2e-calls / hot-org ---------------------------------------------------- */

static const char SQL_PROGRESS[] =
	"SELECT (SELECT count(*) FROM calls WHERE status = 'completed'"
	"         AND org_id = ANY($1::uuid[])),"
	"       (SELECT count(*) FROM call_charges WHERE org_id = ANY($1::uuid[]))";
/* The cheap poll while the run is in flight: how many of the last calls
 * published are completed and charged (point lookups). SQL_PROGRESS
 * counts every call, which would take the database's time from the
 * actors under measurement four times a second. */
static const char SQL_TAIL[] =
	"SELECT count(*) FROM calls c JOIN call_charges cc ON cc.call_id = c.id"
	" WHERE c.id = ANY($1::uuid[]) AND c.status = 'completed'";
#define P_TAIL 64

/* The commit-side time of a call, in us since the epoch: the later of the
 * calls row's last update, its charge and its ledger row. */
#define COMMIT_TS \
	"greatest(c.updated_at, cc.created_at, coalesce(t.created_at, cc.created_at))"
static const char SQL_COMMITS[] =
	"SELECT c.id::text, (extract(epoch FROM " COMMIT_TS ") * 1000000)::bigint"
	" FROM calls c JOIN call_charges cc ON cc.call_id = c.id"
	" LEFT JOIN credit_transactions t ON t.call_id = c.id AND t.type = 'deduction'"
	" WHERE c.id = ANY($1::uuid[])";
static const char SQL_LAST_COMMIT[] =
	"SELECT (extract(epoch FROM max(" COMMIT_TS ")) * 1000000)::bigint"
	" FROM calls c JOIN call_charges cc ON cc.call_id = c.id"
	" LEFT JOIN credit_transactions t ON t.call_id = c.id AND t.type = 'deduction'"
	" WHERE c.org_id = ANY($1::uuid[])";

static int e2e_main(const popts *o)
{
	int code = 1;
	prun run;
	ppub pub;
	long n = o->events;
	long nsamples = (n + o->sample - 1) / o->sample;
	int64_t *pub_us = vox_calloc((size_t)nsamples, sizeof(int64_t));
	int64_t *lat = vox_calloc((size_t)nsamples, sizeof(int64_t));
	char *orgs = NULL;
	PGresult *r = NULL;
	memset(&pub, 0, sizeof(pub));
	run_init(&run);

	PGconn *db = pg_open(o->dsn);
	if (!db) {
		code = 3;
		goto out;
	}
	orgs = org_array(&run, o->orgs);
	if (!create_orgs(db, &run, orgs))
		goto out;
	int rc = pub_open(&pub, o->url, o->pending, "vox-bench-e2e");
	if (rc != 0) {
		code = rc;
		goto out;
	}
	fprintf(stderr, "vox-bench: %s: %ld orgs, %ld calls, rate %ld/s\n",
		o->name, o->orgs, n, o->rate);

	int64_t now_s = wall_us() / 1000000;
	int64_t t0 = bench_now_ns();
	int64_t w0 = wall_us();
	for (long i = 0; i < n; i++) {
		pcall c;
		vox_event ev;
		int64_t due = o->rate > 0 ? t0 + (int64_t)i * NS_PER_S / o->rate : 0;
		if (o->rate > 0)
			nap_until(due);
		call_ids(&c, &run, i, o->orgs);
		build_started(&ev, &c, now_s);
		if (!pub_event(&pub, &ev))
			goto out;
		build_ended(&ev, &c, i, now_s);
		if (i % o->sample == 0) /* publish time, or due time when paced */
			pub_us[i / o->sample] =
				o->rate > 0 ? w0 + (due - t0) / 1000 : wall_us();
		if (!pub_event(&pub, &ev))
			goto out;
	}
	if (!pub_complete(&pub))
		goto out;
	int64_t t_pub = bench_now_ns();
	fprintf(stderr, "vox-bench: published %ld events in %.2f s (%ld acks"
		" failed, %ld resent)\n", 2 * n, (double)(t_pub - t0) / 1e9,
		atomic_load(&pub.failed), atomic_load(&pub.resent));

	/* done when both actors have committed everything (SQL, not logs) */
	int64_t t_end = 0;
	long calls_done = 0, charges_done = 0;
	const char *p1[1] = {orgs};
	vox_pg_array tail;
	char tid[37];
	long ntail = n < P_TAIL ? n : P_TAIL;
	bool tail_done = false;
	vox_pg_array_init(&tail);
	for (long i = n - ntail; i < n; i++) {
		make_uuid(tid, &run, TAG_CALL, i);
		vox_pg_array_str(&tail, tid, 36);
	}
	const char *pt[1] = {vox_pg_array_text(&tail)};
	for (;;) {
		if (!tail_done) {
			r = PQexecParams(db, SQL_TAIL, 1, NULL, pt, NULL, NULL, 0);
			if (!pg_ok(db, r, "progress")) {
				vox_pg_array_release(&tail);
				goto out;
			}
			tail_done = strtol(PQgetvalue(r, 0, 0), NULL, 10) >= ntail;
			PQclear(r);
			r = NULL;
		}
		int64_t t = bench_now_ns();
		if (tail_done) {
			r = PQexecParams(db, SQL_PROGRESS, 1, NULL, p1, NULL, NULL, 0);
			t = bench_now_ns();
			if (!pg_ok(db, r, "progress")) {
				vox_pg_array_release(&tail);
				goto out;
			}
			calls_done = strtol(PQgetvalue(r, 0, 0), NULL, 10);
			charges_done = strtol(PQgetvalue(r, 0, 1), NULL, 10);
			PQclear(r);
			r = NULL;
		}
		if (calls_done >= n && charges_done >= n) {
			vox_pg_array_release(&tail);
			t_end = t;
			break;
		}
		if (t - t0 > P_WAIT_NS) {
			fprintf(stderr, "vox-bench: gave up after %d s: %ld of %ld calls"
				" completed, %ld charged\n", (int)(P_WAIT_NS / NS_PER_S),
				calls_done, n, charges_done);
			vox_pg_array_release(&tail);
			goto out;
		}
		nap_until(t + P_POLL_NS);
	}

	/* latency of the sampled call.ended events */
	vox_pg_array ids;
	char id[37];
	vox_pg_array_init(&ids);
	for (long k = 0; k < nsamples; k++) {
		make_uuid(id, &run, TAG_CALL, k * o->sample);
		vox_pg_array_str(&ids, id, 36);
	}
	const char *p2[1] = {vox_pg_array_text(&ids)};
	r = PQexecParams(db, SQL_COMMITS, 1, NULL, p2, NULL, NULL, 0);
	vox_pg_array_release(&ids);
	if (!pg_ok(db, r, "commit times"))
		goto out;
	size_t ns = 0;
	for (int row = 0; row < PQntuples(r); row++) {
		long idx = uuid_index(PQgetvalue(r, row, 0));
		if (idx < 0 || idx % o->sample != 0 || idx / o->sample >= nsamples)
			continue;
		int64_t commit = strtoll(PQgetvalue(r, row, 1), NULL, 10);
		int64_t l = commit - pub_us[idx / o->sample];
		lat[ns++] = l < 0 ? 0 : l;
	}
	PQclear(r);
	r = PQexecParams(db, SQL_LAST_COMMIT, 1, NULL, p1, NULL, NULL, 0);
	if (!pg_ok(db, r, "last commit"))
		goto out;
	int64_t last_commit_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	bench_sort(lat, ns);

	double secs = (double)(t_end - t0) / 1e9;
	double secs_db = (double)(last_commit_us - w0) / 1e6;
	printf("{\"scenario\":\"%s\",\"orgs\":%ld,\"events\":%ld,\"call_ended\":%ld,"
	       "\"offered_rps\":%ld,\"offered_events_per_s\":%ld,"
	       "\"seconds\":%.3f,\"events_per_s\":%.1f,\"call_ended_per_s\":%.1f,"
	       "\"publish_seconds\":%.3f,\"last_commit_seconds\":%.3f,"
	       "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"samples\":%zu,"
	       "\"sample_every\":%ld,\"pub_acks_failed\":%ld,"
	       "\"latency_to\":\"greatest(calls.updated_at,call_charges.created_at,"
	       "credit_transactions.created_at)\"}\n",
	       o->name, o->orgs, 2 * n, n, o->rate, 2 * o->rate, secs,
	       (double)(2 * n) / secs, (double)n / secs,
	       (double)(t_pub - t0) / 1e9, secs_db,
	       (double)bench_percentile(lat, ns, 0.50) / 1000.0, (double)bench_percentile(lat, ns, 0.99) / 1000.0,
	       ns ? (double)lat[ns - 1] / 1000.0 : 0.0, ns, o->sample,
	       atomic_load(&pub.failed));
	fflush(stdout);
	code = 0;
out:
	PQclear(r);
	pub_close(&pub);
	PQfinish(db);
	free(orgs);
	free(lat);
	free(pub_us);
	return code;
}

/* ---- limit -------------------------------------------------------------- */

#define LIMIT_STREAM "BENCH_LIMIT"
#define LIMIT_DURABLE "bench-limit"

typedef struct plimit {
	ppub pub;
	const popts *o;
	prun run;
	atomic_long published;
	atomic_bool failed;
	int64_t t_first_pub;
} plimit;

static void *limit_publisher(void *arg)
{
	plimit *L = arg;
	int64_t now_s = wall_us() / 1000000;
	L->t_first_pub = bench_now_ns();
	for (long i = 0; i < L->o->events; i++) {
		pcall c;
		vox_event ev;
		unsigned char *body = NULL;
		size_t len = 0;
		vox_decode_error err;
		natsMsg *m = NULL;
		char subj[64];
		call_ids(&c, &L->run, i, L->o->orgs);
		build_ended(&ev, &c, i, now_s);
		if (vox_event_encode(&ev, &body, &len, &err) != VOX_OK) {
			fprintf(stderr, "vox-bench: encode: %s\n", err.message);
			atomic_store(&L->failed, true);
			return NULL;
		}
		snprintf(subj, sizeof(subj), "bench.limit.%s", c.org);
		natsStatus s = natsMsg_Create(&m, subj, NULL, (const char *)body, (int)len);
		free(body);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", c.eid);
		if (s != NATS_OK || !pub_msg(&L->pub, &m)) {
			natsMsg_Destroy(m);
			atomic_store(&L->failed, true);
			return NULL;
		}
		atomic_fetch_add(&L->published, 1);
	}
	if (!pub_complete(&L->pub))
		atomic_store(&L->failed, true);
	return NULL;
}

static void put_be32(vox_buf *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};
	vox_buf_append(b, x, 4);
}

/* Binary one-dimensional array header (PostgreSQL's array_send). */
static void array_header(vox_buf *b, uint32_t elem_oid, uint32_t n)
{
	put_be32(b, 1);        /* dimensions */
	put_be32(b, 0);        /* no nulls */
	put_be32(b, elem_oid);
	put_be32(b, n);        /* length */
	put_be32(b, 1);        /* lower bound */
}

static bool limit_apply(PGconn *db, natsMsgList *list, vox_buf *seqs,
			vox_buf *bodies)
{
	uint32_t n = (uint32_t)list->Count;
	vox_buf_reset(seqs);
	vox_buf_reset(bodies);
	array_header(seqs, 20, n);   /* int8 */
	array_header(bodies, 17, n); /* bytea */
	for (int i = 0; i < list->Count; i++) {
		natsMsg *m = list->Msgs[i];
		jsMsgMetaData *md = NULL;
		uint64_t seq = 0;
		if (natsMsg_GetMetaData(&md, m) == NATS_OK)
			seq = md->Sequence.Stream;
		jsMsgMetaData_Destroy(md);
		put_be32(seqs, 8);
		put_be32(seqs, (uint32_t)(seq >> 32));
		put_be32(seqs, (uint32_t)seq);
		int len = natsMsg_GetDataLength(m);
		put_be32(bodies, (uint32_t)len);
		vox_buf_append(bodies, natsMsg_GetData(m), (size_t)len);
	}
	const char *vals[2] = {(const char *)seqs->data, (const char *)bodies->data};
	int lens[2] = {(int)seqs->len, (int)bodies->len};
	int fmts[2] = {1, 1};
	if (!pg_run(db, "BEGIN", "begin"))
		return false;
	PGresult *r = PQexecParams(db,
				   "INSERT INTO bench_limit (seq, body)"
				   " SELECT * FROM unnest($1::bigint[], $2::bytea[])",
				   2, NULL, vals, lens, fmts, 0);
	return pg_end_tx(db, r, "insert");
}

static int limit_main(const popts *o)
{
	int code = 1;
	plimit *L = vox_calloc(1, sizeof(*L));
	natsSubscription *sub = NULL;
	pthread_t th;
	bool started = false, stream = false;
	vox_buf seqs, bodies;
	vox_buf_init(&seqs);
	vox_buf_init(&bodies);
	L->o = o;
	atomic_init(&L->published, 0);
	atomic_init(&L->failed, false);
	run_init(&L->run);

	PGconn *db = pg_open(o->dsn);
	if (!db) {
		code = 3;
		goto out;
	}
	if (!pg_run(db, "DROP TABLE IF EXISTS bench_limit", "drop bench_limit") ||
	    !pg_run(db, "CREATE TABLE bench_limit (seq bigint PRIMARY KEY,"
			" body bytea NOT NULL)", "create bench_limit"))
		goto out;
	int rc = pub_open(&L->pub, o->url, o->pending, "vox-bench-limit");
	if (rc != 0) {
		code = rc;
		goto out;
	}

	/* the stream and consumer, as the actors configure theirs */
	jsErrCode jerr = 0;
	natsStatus s = js_DeleteStream(L->pub.js, LIMIT_STREAM, NULL, &jerr);
	VOX_UNUSED(s);
	static const char *subjects[] = {"bench.limit.>"};
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = LIMIT_STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Retention = js_LimitsPolicy;
	sc.Replicas = 1;
	sc.MaxMsgSize = VOX_MAX_MESSAGE;
	sc.Duplicates = 120 * NS_PER_S;
	sc.Discard = js_DiscardOld;
	jsStreamInfo *si = NULL;
	s = js_AddStream(&si, L->pub.js, &sc, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	if (s != NATS_OK) {
		fprintf(stderr, "vox-bench: add stream: %s (%d)\n",
			nats_GetLastError(NULL), (int)jerr);
		goto out;
	}
	stream = true;
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = LIMIT_DURABLE;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = 30 * NS_PER_S;
	cc.MaxAckPending = 4096;
	cc.MaxRequestBatch = P_LIMIT_BATCH;
	jsConsumerInfo *ci = NULL;
	s = js_AddConsumer(&ci, L->pub.js, LIMIT_STREAM, &cc, NULL, &jerr);
	jsConsumerInfo_Destroy(ci);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = LIMIT_STREAM;
	so.Consumer = LIMIT_DURABLE;
	if (s == NATS_OK)
		s = js_PullSubscribe(&sub, L->pub.js, "bench.limit.>", LIMIT_DURABLE,
				     NULL, &so, &jerr);
	if (s != NATS_OK) {
		fprintf(stderr, "vox-bench: consumer: %s (%d)\n",
			nats_GetLastError(NULL), (int)jerr);
		goto out;
	}
	fprintf(stderr, "vox-bench: limit: %ld events\n", o->events);

	int64_t t_fetch0 = bench_now_ns();
	if (pthread_create(&th, NULL, limit_publisher, L) != 0)
		goto out;
	started = true;
	long consumed = 0;
	int64_t t_last = 0;
	while (consumed < o->events) {
		if (bench_now_ns() - t_fetch0 > P_WAIT_NS) {
			fprintf(stderr, "vox-bench: limit gave up: %ld of %ld consumed\n",
				consumed, o->events);
			goto out;
		}
		if (atomic_load(&L->failed)) {
			fprintf(stderr, "vox-bench: limit: publishing failed\n");
			goto out;
		}
		natsMsgList list = {0};
		s = natsSubscription_Fetch(&list, sub, P_LIMIT_BATCH, 500, &jerr);
		if (s == NATS_TIMEOUT || (s == NATS_OK && list.Count == 0)) {
			natsMsgList_Destroy(&list);
			continue;
		}
		if (s != NATS_OK) {
			natsMsgList_Destroy(&list);
			fprintf(stderr, "vox-bench: fetch: %s\n", natsStatus_GetText(s));
			goto out;
		}
		bool ok = limit_apply(db, &list, &seqs, &bodies);
		if (ok) {
			t_last = bench_now_ns();
			for (int i = 0; i < list.Count; i++) {
				natsStatus as = natsMsg_Ack(list.Msgs[i], NULL);
				VOX_UNUSED(as);
			}
			consumed += list.Count;
		}
		natsMsgList_Destroy(&list);
		if (!ok)
			goto out;
	}
	pthread_join(th, NULL);
	started = false;
	double secs = (double)(t_last - t_fetch0) / 1e9;
	double secs_pub = (double)(t_last - L->t_first_pub) / 1e9;
	printf("{\"scenario\":\"limit\",\"events\":%ld,\"seconds\":%.3f,"
	       "\"events_per_s\":%.1f,\"seconds_from_publish\":%.3f,"
	       "\"events_per_s_from_publish\":%.1f,\"batch\":%d,"
	       "\"publish\":\"concurrent\"}\n",
	       consumed, secs, (double)consumed / secs, secs_pub,
	       (double)consumed / secs_pub, P_LIMIT_BATCH);
	fflush(stdout);
	code = 0;
out:
	if (started) {
		atomic_store(&L->failed, true);
		pthread_join(th, NULL);
	}
	if (sub) {
		if (natsSubscription_Unsubscribe(sub) != NATS_OK)
			fprintf(stderr, "vox-bench: unsubscribe failed\n");
		natsSubscription_Destroy(sub);
	}
	if (stream) {
		jsErrCode je = 0;
		if (js_DeleteStream(L->pub.js, LIMIT_STREAM, NULL, &je) != NATS_OK)
			fprintf(stderr, "vox-bench: could not delete %s\n", LIMIT_STREAM);
	}
	if (db) {
		bool d = pg_run(db, "DROP TABLE IF EXISTS bench_limit", "drop bench_limit");
		VOX_UNUSED(d);
	}
	pub_close(&L->pub);
	PQfinish(db);
	vox_buf_release(&seqs);
	vox_buf_release(&bodies);
	free(L);
	return code;
}

/* ---- baseline-seed ------------------------------------------------------- */

/* The replaced system's deduction, per call, in its own transaction. Its
 * money is bigint like the columns (0008); it returns what it took, one
 * call's charge, which an integer holds. */
static const char SQL_BASELINE_FN[] =
	"CREATE OR REPLACE FUNCTION bench_deduct_call_credits("
	"  p_org uuid, p_call uuid, p_duration int, p_rate int)"
	" RETURNS integer LANGUAGE plpgsql AS $$\n"
	"DECLARE\n"
	"  v_charge bigint;\n"
	"  v_balance bigint;\n"
	"  v_debt bigint;\n"
	"  v_take bigint;\n"
	"BEGIN\n"
	"  PERFORM pg_advisory_xact_lock(hashtext(p_org::text));\n"
	"  -- idempotency: the old system read the ledger\n"
	"  IF EXISTS (SELECT 1 FROM credit_transactions\n"
	"             WHERE call_id = p_call AND type = 'deduction') THEN\n"
	"    RETURN 0;\n"
	"  END IF;\n"
	"  v_charge := (p_duration * p_rate + 59) / 60;\n"
	"  IF v_charge = 0 THEN\n"
	"    RETURN 0;\n"
	"  END IF;\n"
	"  SELECT wallet_balance_pence, debt_limit_pence INTO v_balance, v_debt\n"
	"    FROM organizations WHERE id = p_org;\n"
	"  IF NOT FOUND THEN\n"
	"    RAISE EXCEPTION 'unknown organization %', p_org;\n"
	"  END IF;\n"
	"  -- the debt limit: never below -debt_limit; the rest is shortfall\n"
	"  v_take := least(v_charge, greatest(v_balance + v_debt, 0));\n"
	"  UPDATE organizations SET wallet_balance_pence = v_balance - v_take,\n"
	"         unbilled_pence = unbilled_pence + (v_charge - v_take),\n"
	"         updated_at = now()\n"
	"   WHERE id = p_org;\n"
	"  INSERT INTO credit_transactions (org_id, amount_pence, type,\n"
	"         description, balance_before_pence, balance_after_pence,\n"
	"         call_id, shortfall_pence)\n"
	"  VALUES (p_org, -v_take, 'deduction', 'call charge', v_balance,\n"
	"         v_balance - v_take, p_call, v_charge - v_take);\n"
	"  RETURN v_take;\n"
	"END\n"
	"$$";

typedef struct pseed {
	const popts *o;
	const prun *run;
	int index;
	PGconn *db;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	bool *go;
	long done;
	long errors;
} pseed;

static void *seed_worker(void *arg)
{
	pseed *w = arg;
	pthread_mutex_lock(w->lock);
	while (!*w->go)
		pthread_cond_wait(w->cond, w->lock);
	pthread_mutex_unlock(w->lock);
	for (long i = w->index; i < w->o->events; i += w->o->conns) {
		pcall c;
		char dur[16], rate[16];
		call_ids(&c, w->run, i, w->o->orgs);
		snprintf(dur, sizeof(dur), "%d", call_duration(i));
		snprintf(rate, sizeof(rate), "%d", P_RATE_PER_MINUTE);
		const char *p[4] = {c.org, c.call, dur, rate};
		PGresult *r = PQexecPrepared(w->db, "deduct", 4, p, NULL, NULL, 0);
		if (vox_pg_status(w->db, r) == VOX_OK) {
			w->done++;
		} else {
			if (w->errors++ == 0)
				fprintf(stderr, "vox-bench: deduct: %s",
					r ? PQresultErrorMessage(r) : PQerrorMessage(w->db));
		}
		PQclear(r);
	}
	return NULL;
}

static int baseline_main(const popts *o)
{
	int code = 1;
	prun run;
	char *orgs = NULL;
	pseed *ws = vox_calloc((size_t)o->conns, sizeof(*ws));
	pthread_t *th = vox_calloc((size_t)o->conns, sizeof(*th));
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	bool go = false;
	long started = 0;
	run_init(&run);

	PGconn *db = pg_open(o->dsn);
	if (!db) {
		code = 3;
		goto out;
	}
	orgs = org_array(&run, o->orgs);
	if (!create_orgs(db, &run, orgs) ||
	    !pg_run(db, SQL_BASELINE_FN, "create bench_deduct_call_credits"))
		goto out;
	for (long k = 0; k < o->conns; k++) {
		pseed *w = &ws[k];
		w->o = o;
		w->run = &run;
		w->index = (int)k;
		w->lock = &lock;
		w->cond = &cond;
		w->go = &go;
		w->db = pg_open(o->dsn);
		if (!w->db) {
			code = 3;
			goto out;
		}
		PGresult *r = PQprepare(w->db, "deduct",
					"SELECT bench_deduct_call_credits($1::uuid,"
					" $2::uuid, $3::int, $4::int)", 4, NULL);
		bool ok = pg_ok(w->db, r, "prepare");
		PQclear(r);
		if (!ok)
			goto out;
	}
	for (; started < o->conns; started++)
		if (pthread_create(&th[started], NULL, seed_worker, &ws[started]) != 0)
			goto out;
	fprintf(stderr, "vox-bench: baseline-seed: %ld orgs, %ld calls, %ld"
		" connections\n", o->orgs, o->events, o->conns);
	int64_t t0 = bench_now_ns();
	pthread_mutex_lock(&lock);
	go = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	long done = 0, errors = 0;
	for (long k = 0; k < started; k++) {
		pthread_join(th[k], NULL);
		done += ws[k].done;
		errors += ws[k].errors;
	}
	started = 0;
	int64_t t1 = bench_now_ns();

	const char *p1[1] = {orgs};
	PGresult *r = PQexecParams(db,
				   "SELECT count(*) FROM credit_transactions"
				   " WHERE type = 'deduction' AND org_id = ANY($1::uuid[])",
				   1, NULL, p1, NULL, NULL, 0);
	long rows = pg_ok(db, r, "count") ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
	PQclear(r);
	double secs = (double)(t1 - t0) / 1e9;
	printf("{\"scenario\":\"baseline-seed\",\"orgs\":%ld,\"events\":%ld,"
	       "\"conns\":%ld,\"seconds\":%.3f,\"events_per_s\":%.1f,"
	       "\"calls_per_s\":%.1f,\"errors\":%ld,\"ledger_rows\":%ld}\n",
	       o->orgs, o->events, o->conns, secs, (double)done / secs,
	       (double)done / secs, errors, rows);
	fflush(stdout);
	code = errors ? 1 : 0;
out:
	if (started) { /* a thread could not start: release the others */
		pthread_mutex_lock(&lock);
		go = true;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		for (long k = 0; k < started; k++)
			pthread_join(th[k], NULL);
	}
	for (long k = 0; k < o->conns; k++)
		PQfinish(ws[k].db);
	PQfinish(db);
	free(orgs);
	free(ws);
	free(th);
	return code;
}

/* ---- dispatch ----------------------------------------------------------- */

int bench_pipeline_is(const char *name)
{
	return strcmp(name, "e2e-calls") == 0 || strcmp(name, "hot-org") == 0 ||
	       strcmp(name, "limit") == 0 || strcmp(name, "baseline-seed") == 0;
}

int bench_pipeline_main(int argc, char **argv)
{
	popts o = {
		.scenario = argv[1],
		.url = getenv("VOX_NATS_URL"),
		.dsn = getenv("VOX_PG_DSN"),
		.orgs = 1000,
		.events = 20000,
		.rate = 0,
		.sample = 10,
		.pending = 4096,
		.conns = 8,
	};
	bool nats = strcmp(o.scenario, "baseline-seed") != 0;
	if (strcmp(o.scenario, "hot-org") == 0)
		o.orgs = 1;
	if (strcmp(o.scenario, "limit") == 0)
		o.events = 40000;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = true;
		if (!v)
			ok = false;
		else if (strcmp(a, "--url") == 0)
			o.url = v;
		else if (strcmp(a, "--dsn") == 0)
			o.dsn = v;
		else if (strcmp(a, "--name") == 0)
			o.name = v;
		else if (strcmp(a, "--orgs") == 0)
			ok = bench_parse_long(v, 1, P_MAX_ORGS, &o.orgs);
		else if (strcmp(a, "--events") == 0)
			ok = bench_parse_long(v, 1, P_MAX_EVENTS, &o.events);
		else if (strcmp(a, "--rate") == 0)
			ok = bench_parse_long(v, 0, 1000000, &o.rate);
		else if (strcmp(a, "--sample") == 0)
			ok = bench_parse_long(v, 1, 1000000, &o.sample);
		else if (strcmp(a, "--pending") == 0)
			ok = bench_parse_long(v, 1, 1000000, &o.pending);
		else if (strcmp(a, "--conns") == 0)
			ok = bench_parse_long(v, 1, 256, &o.conns);
		else {
			fprintf(stderr, "vox-bench: unknown option %s\n", a);
			pusage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "vox-bench: bad or missing value for %s\n", a);
			pusage(stderr);
			return 2;
		}
		i++;
	}
	if (!o.dsn || !*o.dsn || (nats && (!o.url || !*o.url))) {
		fprintf(stderr, "vox-bench: %s needs --dsn%s\n", o.scenario,
			nats ? " and --url" : "");
		pusage(stderr);
		return 2;
	}
	if (!o.name || !*o.name)
		o.name = o.orgs == 1 ? "hot-org" : "e2e-calls";
	for (const char *p = o.name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_')) {
			fprintf(stderr, "vox-bench: --name: [a-z0-9_-] only\n");
			return 2;
		}
	vox_log_setup("vox-bench", "warn");
	if (sodium_init() < 0)
		return 1;
	int rc;
	if (strcmp(o.scenario, "limit") == 0)
		rc = limit_main(&o);
	else if (strcmp(o.scenario, "baseline-seed") == 0)
		rc = baseline_main(&o);
	else
		rc = e2e_main(&o);
	if (nats) {
		natsStatus cs = nats_CloseAndWait(2000);
		VOX_UNUSED(cs);
	}
	return rc;
}
