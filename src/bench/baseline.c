/*
 * baseline.c - the design vox replaces, measured through the same
 * transport: a JetStream consumer taking one message at a time, and for
 * each event its own transaction doing what the replaced system did, with
 * the ack after the commit, from C workers (default 8).
 *
 *   vox-bench baseline-seed --url U --dsn D [--orgs N_ORGS] [--events N]
 *                           [--conns C] [--pending P]
 *       Publishes the calls e2e-calls publishes (N call.started + N
 *       call.ended on EVENTS) while C workers, each with its own NATS and
 *       Postgres connection, fetch one message at a time from the durable
 *       consumer bench-seed (call.*.*) and, per event, in one transaction:
 *         - look the webhook up in processed_webhook_events, and record it;
 *         - call.started: insert the calls row; call.ended: update it
 *           (insert it when the start has not been seen);
 *         - call.ended: the replaced system's plpgsql deduction
 *           (bench_deduct_call_credits: a per-org advisory lock, the
 *           idempotency read from the ledger, the debt limit, the balance
 *           update and the ledger row);
 *       then commit and ack. First publish to the last commit.
 */
#include "bench/bench.h"

#include <pthread.h>
#include <sodium.h>

#include "core/codec.h"
#include "io/log.h"
#include "io/natsconn.h"
#include "io/pg.h"
#include "vox/subjects.h"

#define SEED_DURABLE "bench-seed"
#define P_WAIT_NS (300 * NS_PER_S)

static const char usage_text[] =
	"usage: vox-bench baseline-seed --url U --dsn D [--orgs N] [--events N]"
	" [--conns C] [--pending P]\n"
	"  see src/bench/baseline.c.\n";

/* The replaced system's deduction, per call, in its own transaction. */
static const char SQL_DEDUCT_FN[] =
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

static const struct {
	const char *name;
	const char *sql;
} statements[] = {
	{"seen", "SELECT 1 FROM processed_webhook_events WHERE event_id = $1"},
	{"mark", "INSERT INTO processed_webhook_events (event_id, event_type, org_id)"
		 " VALUES ($1, $2, $3::uuid)"},
	{"started", "INSERT INTO calls (id, org_id, call_direction, from_number,"
		    " to_number, phone_number, caller_name, vapi_call_id, status,"
		    " created_at)"
		    " VALUES ($1::uuid, $2::uuid, $3, $4, $5, $4, $6, $7, 'in_progress',"
		    " $8::timestamptz) ON CONFLICT (id) DO NOTHING"},
	{"ended", "UPDATE calls SET status = $2, duration_seconds = $3::int,"
		  " transcript = $4, summary = $5, recording_url = $6,"
		  " sentiment_label = $7, sentiment_score = $8::numeric,"
		  " sentiment_urgency = $9, ended_at = $10::timestamptz,"
		  " updated_at = now() WHERE id = $1::uuid"},
	{"ended_first", "INSERT INTO calls (id, org_id, call_direction, from_number,"
			" to_number, status, duration_seconds, transcript, summary,"
			" ended_at) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::int,"
			" $8, $9, $10::timestamptz) ON CONFLICT (id) DO NOTHING"},
	{"deduct", "SELECT bench_deduct_call_credits($1::uuid, $2::uuid, $3::int,"
		   " $4::int)"},
};

typedef struct seed {
	const bench_opts *o;
	atomic_long done;     /* events committed and acked, all workers */
	atomic_long errors;
	atomic_bool stop;
	atomic_llong last_us; /* wall time of the latest commit */
} seed;

typedef struct worker {
	seed *s;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub;
	PGconn *db;
	pthread_t th;
	bool started;
} worker;

static bool exec_stmt(PGconn *c, const char *name, int n, const char *const *p,
		      PGresult **out)
{
	PGresult *r = PQexecPrepared(c, name, n, p, NULL, NULL, 0);
	bool ok = bench_pg_ok(c, r, name);
	if (ok && out)
		*out = r;
	else
		PQclear(r);
	return ok;
}

/* NUL-terminated copy of a view into buf (the seed's statements take
 * text parameters). */
static const char *z(char *buf, size_t n, vox_str s)
{
	if (!s.ptr)
		return NULL;
	snprintf(buf, n, "%.*s", (int)s.len, s.ptr);
	return buf;
}

/* One event in its own transaction, as the replaced system did it. */
static bool apply_one(worker *w, const vox_event *ev)
{
	PGconn *c = w->db;
	PGresult *r = NULL;
	char ts[64], ts2[64], dur[16], rate[16], score[32];
	bool ok = bench_pg_run(c, "BEGIN", "begin");
	vox_str eid = vox_event_msg_id(ev);
	char eidz[160];
	const char *org = vox_event_org(ev)->s;
	const char *p_seen[1] = {z(eidz, sizeof(eidz), eid)};
	if (ok)
		ok = exec_stmt(c, "seen", 1, p_seen, &r);
	bool seen = ok && PQntuples(r) > 0;
	PQclear(r);
	if (ok && !seen) {
		const char *p[3] = {eidz, vox_event_kind_name(ev->kind), org};
		ok = exec_stmt(c, "mark", 3, p, NULL);
	}
	if (ok && !seen && ev->kind == VOX_CALL_STARTED) {
		const vox_call_started *s = &ev->u.call_started;
		char from[32], to[32], name[256], vapi[256];
		vox_time_rfc3339(ts, &s->started_at);
		const char *p[8] = {s->call_id.s, org,
				    s->direction == VOX_DIR_INBOUND ? "inbound" : "outbound",
				    z(from, sizeof(from), s->from_number),
				    z(to, sizeof(to), s->to_number),
				    z(name, sizeof(name), s->caller_name),
				    z(vapi, sizeof(vapi), s->vapi_call_id), ts};
		ok = exec_stmt(c, "started", 8, p, NULL);
	} else if (ok && !seen && ev->kind == VOX_CALL_ENDED) {
		const vox_call_ended *e = &ev->u.call_ended;
		vox_buf tr, sm, ru;
		vox_buf_init(&tr);
		vox_buf_init(&sm);
		vox_buf_init(&ru);
		vox_buf_append(&tr, e->transcript.ptr ? e->transcript.ptr : "", e->transcript.len);
		vox_buf_append(&sm, e->summary.ptr ? e->summary.ptr : "", e->summary.len);
		vox_buf_append(&ru, e->recording_url.ptr ? e->recording_url.ptr : "",
			       e->recording_url.len);
		snprintf(dur, sizeof(dur), "%" PRId64, e->duration_seconds);
		snprintf(score, sizeof(score), "%.2f", e->sentiment_score);
		vox_time_rfc3339(ts2, &e->ended_at);
		const char *status = e->status == VOX_CALL_FAILED ? "failed" : "completed";
		const char *p[10] = {e->call_id.s, status, dur, tr.data, sm.data, ru.data,
				     "positive", score, "low", ts2};
		PGresult *u = NULL;
		ok = exec_stmt(c, "ended", 10, p, &u);
		bool updated = ok && strcmp(PQcmdTuples(u), "1") == 0;
		PQclear(u);
		if (ok && !updated) {
			char from[32], to[32];
			const char *q[10] = {e->call_id.s, org, "inbound",
					     z(from, sizeof(from), e->from_number),
					     z(to, sizeof(to), e->to_number), status, dur,
					     tr.data, sm.data, ts2};
			ok = exec_stmt(c, "ended_first", 10, q, NULL);
		}
		snprintf(rate, sizeof(rate), "%d", BENCH_RATE_PER_MINUTE);
		const char *d[4] = {org, e->call_id.s, dur, rate};
		if (ok)
			ok = exec_stmt(c, "deduct", 4, d, NULL);
		vox_buf_release(&tr);
		vox_buf_release(&sm);
		vox_buf_release(&ru);
	}
	if (ok)
		return bench_pg_run(c, "COMMIT", "commit");
	bool rb = bench_pg_run(c, "ROLLBACK", "rollback");
	VOX_UNUSED(rb);
	return false;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	seed *s = w->s;
	long want = 2 * s->o->events;
	while (!atomic_load(&s->stop) && atomic_load(&s->done) < want) {
		natsMsgList list = {0};
		jsErrCode jerr = 0;
		natsStatus st = natsSubscription_Fetch(&list, w->sub, 1, 500, &jerr);
		if (st != NATS_OK || list.Count == 0) {
			natsMsgList_Destroy(&list);
			continue;
		}
		natsMsg *m = list.Msgs[0];
		vox_event ev;
		vox_error err;
		if (vox_event_decode_subject(&ev, natsMsg_GetSubject(m), natsMsg_GetData(m),
					     (size_t)natsMsg_GetDataLength(m), &err) != VOX_OK ||
		    !apply_one(w, &ev)) {
			atomic_fetch_add(&s->errors, 1);
			natsMsg_Nak(m, NULL);
		} else {
			int64_t now = bench_wall_us();
			natsMsg_Ack(m, NULL);
			long long prev = atomic_load(&s->last_us);
			while (now > prev && !atomic_compare_exchange_weak(&s->last_us, &prev, now))
				;
			atomic_fetch_add(&s->done, 1);
		}
		natsMsgList_Destroy(&list);
	}
	return NULL;
}

static bool worker_open(worker *w, const bench_opts *o)
{
	char err[256] = "";
	vox_nats_opts no = {.url = o->url, .name = "vox-bench-seed",
			    .send_asap = true, .timeout_ms = 5000};
	if (vox_nats_connect(&w->nc, &no, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "vox-bench: nats: %s\n", err);
		return false;
	}
	jsErrCode jerr = 0;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = VOX_STREAM_EVENTS;
	so.Consumer = SEED_DURABLE;
	if (natsConnection_JetStream(&w->js, w->nc, NULL) != NATS_OK ||
	    js_PullSubscribe(&w->sub, w->js, "call.*.*", SEED_DURABLE, NULL, &so,
			     &jerr) != NATS_OK) {
		fprintf(stderr, "vox-bench: seed subscribe: %s\n", nats_GetLastError(NULL));
		return false;
	}
	w->db = bench_pg_open(o->dsn);
	if (!w->db)
		return false;
	for (size_t i = 0; i < VOX_NELEM(statements); i++) {
		PGresult *r = PQprepare(w->db, statements[i].name, statements[i].sql, 0, NULL);
		bool ok = bench_pg_ok(w->db, r, statements[i].name);
		PQclear(r);
		if (!ok)
			return false;
	}
	return true;
}

static void worker_close(worker *w)
{
	if (w->sub) {
		if (natsSubscription_Unsubscribe(w->sub) != NATS_OK)
			fprintf(stderr, "vox-bench: unsubscribe failed\n");
		natsSubscription_Destroy(w->sub);
	}
	jsCtx_Destroy(w->js);
	if (w->nc)
		natsConnection_Destroy(w->nc);
	PQfinish(w->db);
}

static bool make_consumer(jsCtx *js)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_DeleteConsumer(js, VOX_STREAM_EVENTS, SEED_DURABLE, NULL, &jerr);
	VOX_UNUSED(s);
	jsConsumerConfig_Init(&cc);
	cc.Durable = SEED_DURABLE;
	cc.FilterSubject = "call.*.*";
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverNew;
	cc.AckWait = 30 * NS_PER_S;
	cc.MaxAckPending = 4096;
	s = js_AddConsumer(&ci, js, VOX_STREAM_EVENTS, &cc, NULL, &jerr);
	jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK)
		fprintf(stderr, "vox-bench: seed consumer: %s (%d)\n",
			nats_GetLastError(NULL), (int)jerr);
	return s == NATS_OK;
}

static int run_baseline(const bench_opts *o)
{
	int code = 1;
	bench_run run;
	bench_pub pub;
	seed s;
	worker *ws = vox_calloc((size_t)o->conns, sizeof(*ws));
	char *orgs = NULL;
	memset(&pub, 0, sizeof(pub));
	memset(&s, 0, sizeof(s));
	s.o = o;
	bench_run_init(&run);

	PGconn *db = NULL;
	int oc = bench_open_with_orgs(o, &run, &db, &orgs);
	if (oc != 0) {
		code = oc;
		goto out;
	}
	if (!bench_pg_run(db, SQL_DEDUCT_FN, "create bench_deduct_call_credits"))
		goto out;
	int rc = bench_pub_open(&pub, o->url, o->pending, "vox-bench-seed-pub");
	if (rc != 0) {
		code = rc;
		goto out;
	}
	if (!make_consumer(pub.js))
		goto out;
	for (long k = 0; k < o->conns; k++) {
		ws[k].s = &s;
		if (!worker_open(&ws[k], o))
			goto out;
	}
	for (long k = 0; k < o->conns; k++) {
		if (pthread_create(&ws[k].th, NULL, worker_main, &ws[k]) != 0)
			goto out;
		ws[k].started = true;
	}
	fprintf(stderr, "vox-bench: baseline-seed: %ld orgs, %ld calls, %ld workers\n",
		o->orgs, o->events, o->conns);
	int64_t t0 = bench_now_ns();
	int64_t w0 = bench_wall_us();
	if (!bench_publish_calls(&pub, &run, 0, o->events, o->orgs, 0, t0, w0, NULL, 1) ||
	    !bench_pub_complete(&pub))
		goto out;
	while (atomic_load(&s.done) < 2 * o->events && bench_now_ns() - t0 < P_WAIT_NS)
		bench_sleep_until(bench_now_ns() + 50 * 1000000);
	if (atomic_load(&s.done) < 2 * o->events) {
		fprintf(stderr, "vox-bench: baseline-seed gave up: %ld of %ld events\n",
			atomic_load(&s.done), 2 * o->events);
		goto out;
	}
	const char *p1[1] = {orgs};
	long long rows = bench_pg_int(db, "SELECT count(*) FROM credit_transactions"
				      " WHERE type = 'deduction' AND org_id = ANY($1::uuid[])",
				      1, p1);
	double secs = (double)(atomic_load(&s.last_us) - w0) / 1e6;
	if (secs <= 0)
		secs = 1e-6;
	printf("{\"scenario\":\"baseline-seed\",\"orgs\":%ld,\"events\":%ld,"
	       "\"calls\":%ld,\"conns\":%ld,\"seconds\":%.3f,\"events_per_s\":%.1f,"
	       "\"calls_per_s\":%.1f,\"errors\":%ld,\"ledger_rows\":%lld,"
	       "\"measured\":\"first publish to last commit, one event per"
	       " transaction through JetStream\"}\n",
	       o->orgs, 2 * o->events, o->events, o->conns, secs,
	       (double)(2 * o->events) / secs, (double)o->events / secs,
	       atomic_load(&s.errors), rows);
	fflush(stdout);
	code = atomic_load(&s.errors) ? 1 : 0;
out:
	atomic_store(&s.stop, true);
	for (long k = 0; k < o->conns; k++)
		if (ws[k].started)
			pthread_join(ws[k].th, NULL);
	for (long k = 0; k < o->conns; k++)
		worker_close(&ws[k]);
	if (pub.js) {
		jsErrCode jerr = 0;
		natsStatus ds = js_DeleteConsumer(pub.js, VOX_STREAM_EVENTS, SEED_DURABLE,
						  NULL, &jerr);
		VOX_UNUSED(ds);
	}
	bench_pub_close(&pub);
	PQfinish(db);
	free(orgs);
	free(ws);
	return code;
}

int bench_baseline_main(int argc, char **argv)
{
	bench_opts o = {.orgs = 1000, .events = 20000, .sample = 1, .pending = 4096,
			.conns = 8};
	if (!bench_opts_parse(&o, argc, argv, true, usage_text))
		return 2;
	vox_log_setup("vox-bench", "warn", NULL);
	if (sodium_init() < 0)
		return 1;
	int rc = run_baseline(&o);
	natsStatus cs = nats_CloseAndWait(2000);
	VOX_UNUSED(cs);
	return rc;
}
