/*
 * Integration: the vox-billing actor against real servers. Every test has
 * its own nats-server (fresh streams) and its own migrated database, inserts
 * its organizations itself, records their opening balances in it_opening,
 * spawns vox-billing, publishes events and waits for the expected state.
 * Every scenario ends with the same SQL invariant check (docs: the money
 * rules of shared/spec/billing.md, invariants 1-5):
 *   1. balance = opening + sum(ledger); per org the ledger chains in seq
 *      order from the opening balance, created_at never going back;
 *   2. no deduction ends below -debt_limit;
 *   3. every call_charges row: deducted + shortfall = ceil(d * 70 / 60),
 *      and exactly one matching deduction row when the charge is > 0;
 *   4. one top-up per payment intent, refunds never exceed it;
 *      unbilled_pence = sum of the shortfalls.
 * Scenarios include one test per defect of the system vox replaces:
 * double charge of a replayed call, a failed top-up lost as "duplicate", a
 * dedup key that ignored the event type, rate formulas that under-billed
 * long calls, charges over the debt limit dropped.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "core/billing.h"
#include "harness.h"
#include "invariants.h"
#include "io/migrate.h"
#include "vox/client.h"

#define ACTOR "vox-billing"
#define CALLS_DURABLE "vox-billing-calls"
#define PAYMENTS_DURABLE "vox-billing-payments"
#define MAX_ACTORS 2
#define RATE 70

/* ---- fixture ------------------------------------------------------------ */

typedef struct fixture {
	th_nats nats;
	char dsn[512];
	char env_url[128];
	char env_dsn[600];
	pid_t actors[MAX_ACTORS];
	char logs[MAX_ACTORS][600];
	natsConnection *nc;
	jsCtx *js;
	PGconn *db;
	int run;
} fixture;

static int run_counter;

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	f->run = run_counter++;
	th_nats_start(&f->nats);
	th_pg_migrated_db("wallet", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
	th_pg_ok(f->db, "CREATE TABLE it_opening (org_id uuid PRIMARY KEY, opening bigint NOT NULL)");
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	th_js_connect(f->nats.url, &jo, &f->nc, &f->js);
	*state = f;
	return 0;
}

/* Stops everything, also after a failed assertion. */
static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	for (int i = 0; i < MAX_ACTORS; i++)
		if (f->actors[i] > 0)
			th_stop(f->actors[i], SIGKILL, 5000);
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	PQfinish(f->db);
	free(f);
	return 0;
}

/* Spawn vox-billing in slot i with up to two extra "K=V" settings, and
 * wait until it has announced itself (streams and consumers exist then). */
static void start_billing(fixture *f, int i, const char *extra1, const char *extra2)
{
	char e_fetch[] = "VOX_FETCH_WAIT_MS=200";
	char e_age[] = "VOX_OUTBOX_AGE_MS=0";
	char e_ack[] = "VOX_ACK_WAIT_S=4";
	char x1[256] = "", x2[256] = "";
	char *env[8];
	int k = 0;
	env[k++] = f->env_url;
	env[k++] = f->env_dsn;
	env[k++] = e_fetch;
	env[k++] = e_age;
	env[k++] = e_ack;
	if (extra1) {
		snprintf(x1, sizeof(x1), "%s", extra1);
		env[k++] = x1;
	}
	if (extra2) {
		snprintf(x2, sizeof(x2), "%s", extra2);
		env[k++] = x2;
	}
	env[k] = NULL;
	snprintf(f->logs[i], sizeof(f->logs[i]), "%s/wallet-%ld-%d-%d.log",
		 th_env("VOX_TEST_TMP"), (long)getpid(), f->run, i);
	f->actors[i] = th_spawn(ACTOR, env, f->logs[i]);
	for (int t = 0; t < 200; t++) {
		if (th_count_in_log(f->logs[i], "msg=\"started\"") >= 1)
			return;
		int ws;
		if (waitpid(f->actors[i], &ws, WNOHANG) == f->actors[i]) {
			f->actors[i] = 0;
			fail_msg("vox-billing exited at start (see %s)", f->logs[i]);
		}
		th_sleep_ms(100);
	}
	fail_msg("vox-billing did not start (see %s)", f->logs[i]);
}

/* ---- SQL helpers -------------------------------------------------------- */

/* Poll an integer query (formatted) until it returns want. */
static long long wait_sqlf(fixture *f, long long want, long ms, const char *fmt, ...)
	VOX_PRINTF(4, 5);
static long long wait_sqlf(fixture *f, long long want, long ms, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return th_wait_int(f->dsn, sql, want, ms);
}

static void add_org(fixture *f, const char *id, long long balance,
		    long long debt_limit, long long low_balance)
{
	th_pg_okf(f->db,
		"INSERT INTO organizations (id, name, email, wallet_balance_pence,"
		" debt_limit_pence, low_balance_pence) VALUES ('%s', 'org %.8s',"
		" 'billing+%.8s@example.com', %lld, %lld, %lld)",
		id, id, id, balance, debt_limit, low_balance);
	th_pg_okf(f->db, "INSERT INTO it_opening (org_id, opening) VALUES ('%s', %lld)",
		id, balance);
}

static long long balance_of(fixture *f, const char *org)
{
	return th_pg_intf(f->db, "SELECT wallet_balance_pence FROM organizations WHERE id = '%s'",
			org);
}

static void wait_balance(fixture *f, const char *org, long long want)
{
	long long got = wait_sqlf(f, want, 20000,
		"SELECT wallet_balance_pence FROM organizations WHERE id = '%s'", org);
	if (got != want)
		fprintf(stderr, "balance of %s: want %lld, got %lld\n", org, want, got);
	assert_int_equal(got, want);
}

static int64_t charge_of(int64_t d)
{
	return (d * RATE + 59) / 60;
}

/* ---- waiting for quiet consumers ---------------------------------------- */

/* Both inputs of vox-billing have nothing undelivered and nothing
 * unacknowledged, seen twice in a row. */
static void wait_drained(fixture *f)
{
	int quiet = 0;
	long long c = -1, p = -1;
	for (int i = 0; i < 300 && quiet < 2; i++) {
		c = th_consumer_outstanding(f->js, "EVENTS", CALLS_DURABLE);
		p = th_consumer_outstanding(f->js, "EVENTS", PAYMENTS_DURABLE);
		quiet = (c == 0 && p == 0) ? quiet + 1 : 0;
		th_sleep_ms(100);
	}
	if (quiet < 2)
		fprintf(stderr, "consumers not drained: calls %lld, payments %lld\n", c, p);
	assert_int_equal(c, 0);
	assert_int_equal(p, 0);
}

/* ---- the invariants (invariants.h) ------------------------------------- */

static void dump_ledger(fixture *f)
{
	PGresult *r = th_pg_query(f->db,
		"SELECT org_id, seq, type, amount_pence, balance_before_pence,"
		" balance_after_pence, shortfall_pence, call_id,"
		" stripe_payment_intent_id, stripe_refund_id, created_at"
		" FROM credit_transactions ORDER BY org_id, seq LIMIT 60");
	fprintf(stderr, "ledger (first 60 rows):\n");
	for (int i = 0; i < PQntuples(r); i++) {
		fprintf(stderr, " ");
		for (int j = 0; j < PQnfields(r); j++)
			fprintf(stderr, " %s", PQgetisnull(r, i, j) ? "-" : PQgetvalue(r, i, j));
		fprintf(stderr, "\n");
	}
	PQclear(r);
}

/* Wait until both consumers are drained, then check every invariant
 * (all of them are reported before the test fails). */
static void check_invariants(fixture *f)
{
	wait_drained(f);
	int bad = th_invariants_broken(f->db, stderr);
	if (bad)
		dump_ledger(f);
	assert_int_equal(bad, 0);
	for (int i = 0; i < MAX_ACTORS; i++)
		if (f->actors[i] > 0)
			assert_true(th_alive(f->actors[i]));
}

/* ---- events --------------------------------------------------------------- */

typedef struct evbuf {
	vox_event ev;
	char eid[96];
	char key1[96];
	char key2[96];
} evbuf;

static void mk_call(evbuf *b, const char *org, const char *call_id,
		    int64_t duration, const char *eid)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->eid, sizeof(b->eid), "%s", eid);
	b->ev.kind = VOX_CALL_ENDED;
	vox_call_ended *e = &b->ev.u.call_ended;
	e->event_id = (vox_str){b->eid, strlen(b->eid)};
	snprintf(e->org_id.s, sizeof(e->org_id.s), "%s", org);
	snprintf(e->call_id.s, sizeof(e->call_id.s), "%.36s", call_id);
	e->ended_at = (vox_time){1795000000 + duration, 0, true};
	e->duration_seconds = duration;
	e->status = VOX_CALL_COMPLETED;
}

static void mk_topup(evbuf *b, const char *org, const char *pi, int64_t amount,
		     const char *eid)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->eid, sizeof(b->eid), "%s", eid);
	snprintf(b->key1, sizeof(b->key1), "%s", pi);
	b->ev.kind = VOX_PAYMENT_SUCCEEDED;
	vox_payment_succeeded *p = &b->ev.u.payment_succeeded;
	p->event_id = (vox_str){b->eid, strlen(b->eid)};
	snprintf(p->org_id.s, sizeof(p->org_id.s), "%s", org);
	p->stripe_payment_intent_id = (vox_str){b->key1, strlen(b->key1)};
	p->amount_pence = amount;
	p->occurred_at = (vox_time){1795000000, 0, true};
}

static void mk_refund(evbuf *b, const char *org, const char *refund_id,
		      const char *pi, int64_t amount, const char *eid)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->eid, sizeof(b->eid), "%s", eid);
	snprintf(b->key1, sizeof(b->key1), "%s", refund_id);
	snprintf(b->key2, sizeof(b->key2), "%s", pi);
	b->ev.kind = VOX_PAYMENT_REFUNDED;
	vox_payment_refunded *p = &b->ev.u.payment_refunded;
	p->event_id = (vox_str){b->eid, strlen(b->eid)};
	snprintf(p->org_id.s, sizeof(p->org_id.s), "%s", org);
	p->stripe_refund_id = (vox_str){b->key1, strlen(b->key1)};
	p->stripe_payment_intent_id = (vox_str){b->key2, strlen(b->key2)};
	p->amount_pence = amount;
	p->occurred_at = (vox_time){1795000100, 0, true};
}

/* Publish ev with Nats-Msg-Id msgid (NULL: its event_id, as vox_publish
 * does); JetStream must store it, not drop it as a duplicate. */
static void publish_as(fixture *f, const vox_event *ev, const char *msgid)
{
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	vox_error err;
	vox_status st = vox_event_to_msg(&m, ev, &err);
	if (st != VOX_OK)
		fprintf(stderr, "event refused: %s\n", err.message);
	assert_int_equal(st, VOX_OK);
	if (msgid)
		assert_int_equal(natsMsgHeader_Set(m, "Nats-Msg-Id", msgid), NATS_OK);
	natsStatus s = js_PublishMsg(&pa, f->js, m, NULL, NULL);
	if (s != NATS_OK)
		fprintf(stderr, "publish: %s\n", natsStatus_GetText(s));
	assert_int_equal(s, NATS_OK);
	assert_false(pa->Duplicate);
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
}

static void publish(fixture *f, const vox_event *ev)
{
	publish_as(f, ev, NULL);
}

static void uuid_n(char *out, size_t len, unsigned prefix, unsigned long long n)
{
	snprintf(out, len, "%08x-0000-4000-8000-%012llx", prefix, n);
}

/* ---- dead letters and alerts ------------------------------------------------ */

static const char *hdr(natsMsg *m, const char *key)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v)
		return "";
	return v;
}

static void wait_stream_count(fixture *f, const char *stream, long long want)
{
	long long n = -1;
	for (int i = 0; i < 100; i++) {
		n = th_stream_count(f->js, stream);
		if (n >= want)
			break;
		th_sleep_ms(100);
	}
	if (n != want)
		fprintf(stderr, "stream %s: want %lld messages, got %lld\n", stream, want, n);
	assert_int_equal(n, want);
}

/* The dead letter whose subject and original Nats-Msg-Id match; NULL if
 * there is none. Caller destroys. */
static natsMsg *dlq_find(fixture *f, const char *orig_msgid)
{
	long long n = th_stream_count(f->js, "DLQ");
	for (long long seq = 1; seq <= n; seq++) {
		natsMsg *m = NULL;
		if (js_GetMsg(&m, f->js, "DLQ", (uint64_t)seq, NULL, NULL) != NATS_OK)
			continue;
		if (strcmp(hdr(m, "Vox-Original-Msg-Id"), orig_msgid) == 0)
			return m;
		natsMsg_Destroy(m);
	}
	return NULL;
}

/* Check the dead letter of the event published as msgid. */
static void assert_dead_letter(fixture *f, const char *msgid, const char *subject,
			       const char *code, const char *reason)
{
	natsMsg *m = dlq_find(f, msgid);
	if (!m)
		fprintf(stderr, "no dead letter for %s\n", msgid);
	assert_non_null(m);
	char want_subject[256];
	snprintf(want_subject, sizeof(want_subject), "dlq.%s", subject);
	assert_string_equal(natsMsg_GetSubject(m), want_subject);
	assert_string_equal(hdr(m, "Vox-Error-Code"), code);
	assert_string_equal(hdr(m, "Vox-Error-Reason"), reason);
	assert_string_equal(hdr(m, "Vox-Actor"), ACTOR);
	assert_true(strlen(hdr(m, "Vox-Error")) > 0);
	assert_true(strtoull(hdr(m, "Vox-Stream-Seq"), NULL, 10) > 0);
	natsMsg_Destroy(m);
}

typedef struct alert_list {
	vox_event ev[32];
	char msgid[32][64];
	natsMsg *msgs[32];
	int n;
} alert_list;

/* Every alert the outbox wrote is published (and only those): then read
 * them all from the ALERTS stream. */
static void collect_alerts(fixture *f, alert_list *out)
{
	memset(out, 0, sizeof(*out));
	assert_int_equal(wait_sqlf(f, 0, 10000,
		"SELECT count(*) FROM vox_outbox WHERE published_at IS NULL"), 0);
	long long rows = th_pg_intf(f->db, "SELECT count(*) FROM vox_outbox");
	th_sleep_ms(500); /* a late second copy would show now */
	wait_stream_count(f, "ALERTS", rows);
	assert_true(rows <= 32);
	for (long long seq = 1; seq <= rows; seq++) {
		natsMsg *m = NULL;
		vox_error err;
		assert_int_equal(js_GetMsg(&m, f->js, "ALERTS", (uint64_t)seq, NULL, NULL),
				 NATS_OK);
		int i = out->n++;
		out->msgs[i] = m;
		assert_int_equal(vox_event_decode_subject(&out->ev[i], natsMsg_GetSubject(m),
				 natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &err),
				 VOX_OK);
		snprintf(out->msgid[i], sizeof(out->msgid[i]), "%s", hdr(m, "Nats-Msg-Id"));
	}
}

static void release_alerts(alert_list *a)
{
	for (int i = 0; i < a->n; i++)
		natsMsg_Destroy(a->msgs[i]);
	a->n = 0;
}

static int count_kind(const alert_list *a, vox_event_kind kind)
{
	int n = 0;
	for (int i = 0; i < a->n; i++)
		if (a->ev[i].kind == kind)
			n++;
	return n;
}

/* ---- billing.authorize ------------------------------------------------------ */

typedef struct auth_reply {
	char error_code[16]; /* "" when not an error */
	size_t body_len;
	bool has_allowed, allowed;
	bool has_reason;
	bool has_available;
	int64_t available;
	bool has_held;
	int64_t held;
	char hold[16]; /* "" when the reply has no hold */
	int nkeys;
} auth_reply;

static int64_t mp_i64(const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)o->via.u64;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	fail_msg("not an integer");
	return 0;
}

static void authorize(fixture *f, const char *token, const void *body, size_t len,
		      auth_reply *out)
{
	char subject[256];
	natsMsg *reply = NULL;
	memset(out, 0, sizeof(*out));
	snprintf(subject, sizeof(subject), "billing.authorize.%s", token);
	natsStatus s = natsConnection_Request(&reply, f->nc, subject, body, (int)len, 5000);
	if (s != NATS_OK)
		fprintf(stderr, "request %s: %s\n", subject, natsStatus_GetText(s));
	assert_int_equal(s, NATS_OK);
	snprintf(out->error_code, sizeof(out->error_code), "%s",
		 hdr(reply, "Nats-Service-Error-Code"));
	out->body_len = (size_t)natsMsg_GetDataLength(reply);
	if (out->error_code[0] == '\0') {
		msgpack_unpacked u;
		size_t off = 0;
		msgpack_unpacked_init(&u);
		assert_int_equal(msgpack_unpack_next(&u, natsMsg_GetData(reply),
						     out->body_len, &off),
				 MSGPACK_UNPACK_SUCCESS);
		assert_int_equal(off, out->body_len);
		assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
		out->nkeys = (int)u.data.via.map.size;
		for (uint32_t i = 0; i < u.data.via.map.size; i++) {
			const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
			assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
			const char *k = kv->key.via.str.ptr;
			size_t kl = kv->key.via.str.size;
			if (kl == 7 && memcmp(k, "allowed", 7) == 0) {
				assert_int_equal(kv->val.type, MSGPACK_OBJECT_BOOLEAN);
				out->has_allowed = true;
				out->allowed = kv->val.via.boolean;
			} else if (kl == 6 && memcmp(k, "reason", 6) == 0) {
				assert_int_equal(kv->val.type, MSGPACK_OBJECT_STR);
				out->has_reason = kv->val.via.str.size > 0;
			} else if (kl == 15 && memcmp(k, "available_pence", 15) == 0) {
				out->has_available = true;
				out->available = mp_i64(&kv->val);
			} else if (kl == 10 && memcmp(k, "held_pence", 10) == 0) {
				out->has_held = true;
				out->held = mp_i64(&kv->val);
			} else if (kl == 4 && memcmp(k, "hold", 4) == 0) {
				assert_int_equal(kv->val.type, MSGPACK_OBJECT_STR);
				snprintf(out->hold, sizeof(out->hold), "%.*s",
					 (int)kv->val.via.str.size, kv->val.via.str.ptr);
			}
		}
		msgpack_unpacked_destroy(&u);
	}
	natsMsg_Destroy(reply);
}

static void assert_authorized(fixture *f, const char *org, bool allowed,
			      int64_t available)
{
	static const char empty_map[] = "\x80";
	auth_reply a;
	authorize(f, org, empty_map, 1, &a);
	assert_string_equal(a.error_code, "");
	assert_int_equal(a.nkeys, 4);
	assert_true(a.has_allowed && a.has_reason && a.has_available && a.has_held);
	if (a.allowed != allowed || a.available != available)
		fprintf(stderr, "authorize %s: want allowed=%d available=%" PRId64
			", got allowed=%d available=%" PRId64 "\n", org, allowed,
			available, a.allowed, a.available);
	assert_int_equal(a.allowed, allowed);
	assert_int_equal(a.available, available);
}

/* ---- scenarios ---------------------------------------------------------------- */

#define ORG_A "a0000000-0000-4000-8000-00000000000a"
#define ORG_B "b0000000-0000-4000-8000-00000000000b"
#define ORG_C "c0000000-0000-4000-8000-00000000000c"
#define ORG_D "d0000000-0000-4000-8000-00000000000d"
#define ORG_X "e0000000-0000-4000-8000-0000000000ee" /* never inserted */
#define CALL_1 "11111111-0000-4000-8000-000000000001"
#define CALL_2 "11111111-0000-4000-8000-000000000002"
#define CALL_3 "11111111-0000-4000-8000-000000000003"
#define CALL_4 "11111111-0000-4000-8000-000000000004"

/* Defect: the balance was updated before the duplicate check, so a
 * replayed call id was charged twice while the ledger showed one row. */
static void test_replayed_call_ended_is_charged_once(void **state)
{
	fixture *f = *state;
	evbuf c;
	add_org(f, ORG_A, 10000, 500, 1000);
	start_billing(f, 0, NULL, NULL);
	mk_call(&c, ORG_A, CALL_1, 120, "vapi-end-1");
	/* two copies back to back (likely one batch), a third one later */
	publish_as(f, &c.ev, "vapi-end-1");
	publish_as(f, &c.ev, "vapi-end-1-retry-1");
	wait_balance(f, ORG_A, 10000 - 140);
	wait_drained(f);
	publish_as(f, &c.ev, "vapi-end-1-retry-2");
	wait_drained(f);
	assert_int_equal(balance_of(f, ORG_A), 10000 - 140);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM call_charges"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT amount_pence FROM credit_transactions"
				     " WHERE call_id = '" CALL_1 "'"), -140);
	/* the charge's own row is its record: no per-event one */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM processed_webhook_events"), 0);
	/* duplicates are acknowledged, not dead-lettered */
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	/* defect: a deferrable unique constraint made every ON CONFLICT
	 * insert fail. No key of the billing tables is deferrable. */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM pg_constraint WHERE conrelid IN"
		" ('credit_transactions'::regclass, 'processed_webhook_events'::regclass,"
		" 'call_charges'::regclass, 'organizations'::regclass, 'vox_outbox'::regclass)"
		" AND contype IN ('u', 'p', 'x') AND condeferrable"), 0);
	check_invariants(f);
}

/* Defect: events were marked processed before they were handled, so a
 * top-up whose first attempt failed was retried as a "duplicate" and lost. */
static void test_topup_whose_first_attempt_fails_is_credited_once(void **state)
{
	fixture *f = *state;
	evbuf t;
	add_org(f, ORG_A, 0, 500, 1000);
	th_pg_ok(f->db,
		"CREATE SEQUENCE it_fail_seq;"
		"CREATE FUNCTION it_fail_first() RETURNS trigger LANGUAGE plpgsql AS $$"
		" BEGIN"
		"  IF nextval('it_fail_seq') = 1 THEN"
		"   RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';"
		"  END IF;"
		"  RETURN NEW;"
		" END $$;"
		"CREATE TRIGGER it_fail_first BEFORE INSERT ON credit_transactions"
		" FOR EACH ROW EXECUTE FUNCTION it_fail_first()");
	start_billing(f, 0, NULL, NULL);
	mk_topup(&t, ORG_A, "pi_first_fails", 2500, "evt_stripe_first_fails");
	publish(f, &t.ev);
	wait_balance(f, ORG_A, 2500);
	wait_drained(f);
	/* the first attempt did fail, and a later one applied it */
	assert_true(th_pg_intf(f->db, "SELECT last_value FROM it_fail_seq") >= 2);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"
				     " WHERE type = 'topup'"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM processed_webhook_events"
		" WHERE event_id = 'vox-billing:payment.succeeded:evt_stripe_first_fails'"), 1);
	/* a redelivery now is a no-op */
	publish_as(f, &t.ev, "evt_stripe_first_fails-again");
	wait_drained(f);
	assert_int_equal(balance_of(f, ORG_A), 2500);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	check_invariants(f);
}

/* Defect: the dedup key ignored the event type. A payment.succeeded and a
 * call.ended with the same event_id are two events, both applied. (They
 * are published under different Nats-Msg-Ids: with the contract's
 * Nats-Msg-Id = event_id JetStream itself would drop the second.) */
static void test_payment_and_call_sharing_an_event_id_are_both_applied(void **state)
{
	fixture *f = *state;
	evbuf t, c;
	add_org(f, ORG_A, 1000, 500, 100);
	start_billing(f, 0, NULL, NULL);
	mk_topup(&t, ORG_A, "pi_shared", 3000, "evt-shared-1");
	mk_call(&c, ORG_A, CALL_1, 60, "evt-shared-1");
	publish_as(f, &t.ev, "payment-evt-shared-1");
	wait_balance(f, ORG_A, 4000);
	publish_as(f, &c.ev, "call-evt-shared-1");
	wait_balance(f, ORG_A, 4000 - 70);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"), 2);
	/* the payment webhook is recorded as processed (the seed's meaning);
	 * the call's record is its charge */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM processed_webhook_events"
		" WHERE event_id = 'vox-billing:payment.succeeded:evt-shared-1'"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM call_charges"
		" WHERE event_id = 'evt-shared-1'"), 1);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	check_invariants(f);
}

/* Defect: two rate formulas coexisted and long calls were under-billed by
 * a reservation cap. One formula, every length. */
static void test_one_rate_for_every_call_length(void **state)
{
	fixture *f = *state;
	static const int64_t durations[] = {1, 30, 59, 60, 91, 3600, 86400, 0};
	static const int64_t charges[] = {2, 35, 69, 70, 107, 4200, 100800, 0};
	const long long opening = 1000000;
	long long total = 0;
	add_org(f, ORG_A, opening, 500, 1000);
	start_billing(f, 0, NULL, NULL);
	for (size_t i = 0; i < VOX_NELEM(durations); i++) {
		evbuf c;
		char call[40], eid[32];
		uuid_n(call, sizeof(call), 0x22222222, i + 1);
		snprintf(eid, sizeof(eid), "rate-%zu", i);
		mk_call(&c, ORG_A, call, durations[i], eid);
		publish(f, &c.ev);
		assert_int_equal(charge_of(durations[i]), charges[i]);
		total += charges[i];
	}
	assert_int_equal(total, 105283);
	wait_balance(f, ORG_A, opening - total);
	wait_drained(f);
	for (size_t i = 0; i < VOX_NELEM(durations); i++) {
		char call[40];
		uuid_n(call, sizeof(call), 0x22222222, i + 1);
		assert_int_equal(th_pg_intf(f->db, "SELECT charge_pence FROM call_charges"
					     " WHERE call_id = '%s'", call), charges[i]);
		assert_int_equal(th_pg_intf(f->db, "SELECT deducted_pence FROM call_charges"
					     " WHERE call_id = '%s'", call), charges[i]);
		assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"
					     " WHERE call_id = '%s'", call),
				 charges[i] > 0 ? 1 : 0);
		if (charges[i] > 0)
			assert_int_equal(th_pg_intf(f->db, "SELECT amount_pence FROM credit_transactions"
						     " WHERE call_id = '%s'", call), -charges[i]);
	}
	/* the 0 s call: a call_charges row, no ledger row */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM call_charges"), 8);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"), 7);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM call_charges"
				     " WHERE duration_seconds = 0 AND charge_pence = 0"), 1);
	check_invariants(f);
}

/* Defect: charges over the debt limit were dropped. Take what fits, keep
 * the rest as shortfall, alert once. */
static void test_charge_over_the_debt_limit_keeps_a_shortfall(void **state)
{
	fixture *f = *state;
	evbuf c1, c2;
	add_org(f, ORG_A, 100, 500, 1000);
	start_billing(f, 0, NULL, NULL);
	mk_call(&c1, ORG_A, CALL_1, 600, "debt-call-1"); /* 700 */
	publish(f, &c1.ev);
	wait_balance(f, ORG_A, -500);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT amount_pence FROM credit_transactions"
				     " WHERE call_id = '" CALL_1 "'"), -600);
	assert_int_equal(th_pg_intf(f->db, "SELECT shortfall_pence FROM credit_transactions"
				     " WHERE call_id = '" CALL_1 "'"), 100);
	assert_int_equal(th_pg_intf(f->db, "SELECT balance_after_pence FROM credit_transactions"
				     " WHERE call_id = '" CALL_1 "'"), -500);
	assert_int_equal(th_pg_intf(f->db, "SELECT unbilled_pence FROM organizations"
				     " WHERE id = '" ORG_A "'"), 100);

	alert_list al;
	collect_alerts(f, &al);
	assert_int_equal(al.n, 1);
	assert_int_equal(count_kind(&al, VOX_ALERT_DEBT_LIMIT), 1);
	const vox_alert_wallet *w = &al.ev[0].u.wallet;
	assert_string_equal(natsMsg_GetSubject(al.msgs[0]), "alert.debt_limit." ORG_A);
	assert_string_equal(w->org_id.s, ORG_A);
	assert_string_equal(w->call_id.s, CALL_1);
	assert_int_equal(w->amount_pence, 100);
	assert_int_equal(w->balance_pence, -500);
	assert_int_equal(w->debt_limit_pence, 500);
	assert_string_equal(al.msgid[0], w->alert_id.s);
	release_alerts(&al);

	/* a second call at the floor: all of it is shortfall, no second alert */
	mk_call(&c2, ORG_A, CALL_2, 60, "debt-call-2"); /* 70 */
	publish(f, &c2.ev);
	assert_int_equal(wait_sqlf(f, 170, 20000, "SELECT unbilled_pence FROM organizations"
				   " WHERE id = '" ORG_A "'"), 170);
	wait_drained(f);
	assert_int_equal(balance_of(f, ORG_A), -500);
	assert_int_equal(th_pg_intf(f->db, "SELECT deducted_pence FROM call_charges"
				     " WHERE call_id = '" CALL_2 "'"), 0);
	assert_int_equal(th_pg_intf(f->db, "SELECT shortfall_pence FROM call_charges"
				     " WHERE call_id = '" CALL_2 "'"), 70);
	collect_alerts(f, &al);
	assert_int_equal(count_kind(&al, VOX_ALERT_DEBT_LIMIT), 1);
	assert_int_equal(al.n, 1);
	release_alerts(&al);
	assert_authorized(f, ORG_A, false, 0);
	check_invariants(f);
}

static void test_low_balance_alert_once_per_crossing(void **state)
{
	fixture *f = *state;
	evbuf c[4], t;
	add_org(f, ORG_A, 1100, 500, 1000);
	start_billing(f, 0, NULL, NULL);
	mk_call(&c[0], ORG_A, CALL_1, 60, "low-1"); /* 1030 */
	mk_call(&c[1], ORG_A, CALL_2, 60, "low-2"); /* 960: crossing */
	mk_call(&c[2], ORG_A, CALL_3, 60, "low-3"); /* 890: still low */
	for (int i = 0; i < 3; i++)
		publish(f, &c[i].ev);
	wait_balance(f, ORG_A, 890);
	wait_drained(f);
	alert_list al;
	collect_alerts(f, &al);
	assert_int_equal(count_kind(&al, VOX_ALERT_LOW_BALANCE), 1);
	assert_int_equal(al.n, 1);
	assert_string_equal(al.ev[0].u.wallet.call_id.s, CALL_2);
	assert_int_equal(al.ev[0].u.wallet.amount_pence, 1000);
	assert_int_equal(al.ev[0].u.wallet.balance_pence, 960);
	assert_string_equal(al.msgid[0], al.ev[0].u.wallet.alert_id.s);
	release_alerts(&al);

	/* back above the line, then below again: a second crossing */
	mk_topup(&t, ORG_A, "pi_low_back", 500, "evt-low-topup");
	publish(f, &t.ev);
	wait_balance(f, ORG_A, 1390);
	mk_call(&c[3], ORG_A, CALL_4, 600, "low-4"); /* 690 */
	publish(f, &c[3].ev);
	wait_balance(f, ORG_A, 690);
	wait_drained(f);
	collect_alerts(f, &al);
	assert_int_equal(count_kind(&al, VOX_ALERT_LOW_BALANCE), 2);
	assert_int_equal(al.n, 2);
	assert_string_equal(al.ev[1].u.wallet.call_id.s, CALL_4);
	release_alerts(&al);
	check_invariants(f);
}

static void test_conflicting_duplicates_are_dead_lettered_and_move_no_money(void **state)
{
	fixture *f = *state;
	evbuf c, c2, t, t2, r, r2;
	char subj[128];
	add_org(f, ORG_A, 5000, 500, 0);
	start_billing(f, 0, NULL, NULL);
	mk_call(&c, ORG_A, CALL_1, 60, "cf-call");
	mk_topup(&t, ORG_A, "pi_cf", 2000, "cf-topup");
	mk_refund(&r, ORG_A, "re_cf", "pi_cf", 300, "cf-refund");
	publish(f, &c.ev);
	publish(f, &t.ev);
	publish(f, &r.ev);
	const long long settled = 5000 - 70 + 2000 - 300;
	wait_balance(f, ORG_A, settled);
	wait_drained(f);
	long long rows = th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions");
	assert_int_equal(rows, 3);

	/* the same keys with other fields */
	mk_call(&c2, ORG_A, CALL_1, 61, "cf-call-other");
	mk_topup(&t2, ORG_A, "pi_cf", 2500, "cf-topup-other");
	mk_refund(&r2, ORG_A, "re_cf", "pi_cf", 400, "cf-refund-other");
	publish(f, &c2.ev);
	publish(f, &t2.ev);
	publish(f, &r2.ev);
	/* and same key, same fields under another event id: a plain no-op */
	evbuf same;
	mk_call(&same, ORG_A, CALL_1, 60, "cf-call-same-fields");
	publish(f, &same.ev);
	wait_stream_count(f, "DLQ", 3);
	wait_drained(f);
	snprintf(subj, sizeof(subj), "call.ended.%s", ORG_A);
	assert_dead_letter(f, "cf-call-other", subj, "409", "conflict");
	snprintf(subj, sizeof(subj), "payment.succeeded.%s", ORG_A);
	assert_dead_letter(f, "cf-topup-other", subj, "409", "conflict");
	snprintf(subj, sizeof(subj), "payment.refunded.%s", ORG_A);
	assert_dead_letter(f, "cf-refund-other", subj, "409", "conflict");
	assert_int_equal(balance_of(f, ORG_A), settled);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"), rows);
	assert_int_equal(th_pg_intf(f->db, "SELECT duration_seconds FROM call_charges"
				     " WHERE call_id = '" CALL_1 "'"), 60);
	/* a conflict leaves no idempotency record */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM processed_webhook_events"
				     " WHERE event_id LIKE '%%-other'"), 0);
	check_invariants(f);
}

static void test_refunds_capped_unknown_and_below_the_debt_limit(void **state)
{
	fixture *f = *state;
	evbuf t1, t2, r1, r1dup, r2, r3, r4, r5, c, rb;
	char subj[128];
	add_org(f, ORG_A, 1000, 500, 0);
	add_org(f, ORG_B, 0, 500, 0);
	/* a refund of an unknown payment waits for it: 3 deliveries here */
	start_billing(f, 0, "VOX_DEFER_DELIVERIES=3", "VOX_RETRY_MAX_MS=200");
	mk_topup(&t1, ORG_A, "pi_ref_a", 2000, "ref-topup-a");
	mk_topup(&t2, ORG_B, "pi_ref_b", 3000, "ref-topup-b");
	mk_refund(&r1, ORG_A, "re_1", "pi_ref_a", 1500, "ref-1");
	mk_refund(&r1dup, ORG_A, "re_1", "pi_ref_a", 1500, "ref-1-again");
	mk_refund(&r2, ORG_A, "re_2", "pi_ref_a", 600, "ref-2-over");     /* 2100 > 2000 */
	mk_refund(&r3, ORG_A, "re_3", "pi_never_paid", 100, "ref-3-unknown");
	mk_refund(&r4, ORG_A, "re_4", "pi_ref_b", 100, "ref-4-other-org");
	mk_refund(&r5, ORG_A, "re_5", "pi_ref_a", 500, "ref-5-to-the-cap"); /* = 2000 */
	publish(f, &t1.ev);
	publish(f, &t2.ev);
	publish(f, &r1.ev);
	publish(f, &r1dup.ev);
	publish(f, &r2.ev);
	publish(f, &r3.ev);
	publish(f, &r4.ev);
	publish(f, &r5.ev);
	wait_balance(f, ORG_A, 1000 + 2000 - 1500 - 500);
	wait_stream_count(f, "DLQ", 3);
	wait_drained(f);
	snprintf(subj, sizeof(subj), "payment.refunded.%s", ORG_A);
	assert_dead_letter(f, "ref-2-over", subj, "409", "conflict");
	assert_dead_letter(f, "ref-3-unknown", subj, "404", "not_found");
	assert_dead_letter(f, "ref-4-other-org", subj, "404", "not_found");
	assert_int_equal(th_pg_intf(f->db, "SELECT -sum(amount_pence) FROM credit_transactions"
				     " WHERE type = 'refund' AND stripe_payment_intent_id = 'pi_ref_a'"),
			 2000);

	/* a refund is an outside fact: applied in full below the debt limit */
	mk_call(&c, ORG_B, CALL_1, 2400, "ref-call-b"); /* 2800 -> 200 */
	publish(f, &c.ev);
	wait_balance(f, ORG_B, 200);
	assert_authorized(f, ORG_B, true, 700);
	mk_refund(&rb, ORG_B, "re_b_full", "pi_ref_b", 3000, "ref-b-full");
	publish(f, &rb.ev);
	wait_balance(f, ORG_B, -2800);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT amount_pence FROM credit_transactions"
				     " WHERE stripe_refund_id = 're_b_full'"), -3000);
	assert_int_equal(th_pg_intf(f->db, "SELECT unbilled_pence FROM organizations"
				     " WHERE id = '" ORG_B "'"), 0);
	assert_authorized(f, ORG_B, false, -2300);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 3);
	/* each unknown refund was put back twice before its dead letter */
	assert_int_equal(th_count_in_log(f->logs[0], "msg=\"deferred\""), 4);
	check_invariants(f);
}

/* Defect class: a refund that arrives before the payment it refunds (the
 * payment provider's order, a redelivery, two instances) was dead-lettered
 * for good, and the wallet kept money it had refunded. It waits now. */
static void test_refund_before_its_payment_waits_for_it(void **state)
{
	fixture *f = *state;
	evbuf t, r;
	add_org(f, ORG_A, 1000, 500, 0);
	start_billing(f, 0, "VOX_RETRY_MAX_MS=300", NULL);
	mk_refund(&r, ORG_A, "re_early", "pi_late", 400, "early-refund");
	mk_topup(&t, ORG_A, "pi_late", 1500, "late-topup");
	publish(f, &r.ev);
	for (int i = 0; i < 100 && th_count_in_log(f->logs[0], "msg=\"deferred\"") < 1; i++)
		th_sleep_ms(100);
	assert_true(th_count_in_log(f->logs[0], "msg=\"deferred\"") >= 1);
	assert_int_equal(balance_of(f, ORG_A), 1000);
	publish(f, &t.ev);
	wait_balance(f, ORG_A, 1000 + 1500 - 400);
	wait_drained(f);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	/* the ledger shows the payment first, then its refund */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions r"
		" JOIN credit_transactions t ON t.stripe_payment_intent_id = 'pi_late'"
		" AND t.type = 'topup' WHERE r.stripe_refund_id = 're_early'"
		" AND r.seq > t.seq AND r.amount_pence = -400"), 1);
	check_invariants(f);
}

static void test_unknown_org_is_dead_lettered_and_writes_nothing(void **state)
{
	fixture *f = *state;
	evbuf c, t, r, ok;
	char subj[128];
	add_org(f, ORG_A, 1000, 500, 0);
	start_billing(f, 0, NULL, NULL);
	mk_call(&c, ORG_X, CALL_1, 60, "unknown-call");
	mk_topup(&t, ORG_X, "pi_unknown_org", 1000, "unknown-topup");
	mk_refund(&r, ORG_X, "re_unknown_org", "pi_unknown_org", 100, "unknown-refund");
	mk_call(&ok, ORG_A, CALL_2, 60, "known-call");
	publish(f, &c.ev);
	publish(f, &t.ev);
	publish(f, &r.ev);
	publish(f, &ok.ev);
	wait_balance(f, ORG_A, 930);
	wait_stream_count(f, "DLQ", 3);
	wait_drained(f);
	snprintf(subj, sizeof(subj), "call.ended.%s", ORG_X);
	assert_dead_letter(f, "unknown-call", subj, "404", "unknown_org");
	snprintf(subj, sizeof(subj), "payment.succeeded.%s", ORG_X);
	assert_dead_letter(f, "unknown-topup", subj, "404", "unknown_org");
	snprintf(subj, sizeof(subj), "payment.refunded.%s", ORG_X);
	assert_dead_letter(f, "unknown-refund", subj, "404", "unknown_org");
	/* nothing of them anywhere */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"
				     " WHERE org_id <> '" ORG_A "' OR call_id = '" CALL_1 "'"), 0);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM call_charges"
				     " WHERE call_id = '" CALL_1 "'"), 0);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM processed_webhook_events"
				     " WHERE event_id LIKE 'vox-billing:%%:unknown-%%'"), 0);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM organizations"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM vox_outbox"), 0);
	check_invariants(f);
}

static void test_billing_authorize(void **state)
{
	fixture *f = *state;
	auth_reply a;
	static const char empty_map[] = "\x80";
	add_org(f, ORG_A, 1000, 500, 1000);
	add_org(f, ORG_B, -430, 500, 1000); /* 70: exactly one minute */
	add_org(f, ORG_C, -431, 500, 1000); /* 69 */
	add_org(f, ORG_D, 69, 0, 1000);     /* 69 with no credit at all */
	start_billing(f, 0, NULL, NULL);
	assert_authorized(f, ORG_A, true, 1500);
	assert_authorized(f, ORG_B, true, 70);
	assert_authorized(f, ORG_C, false, 69);
	assert_authorized(f, ORG_D, false, 69);
	/* upper case is accepted and normalised */
	assert_authorized(f, "A0000000-0000-4000-8000-00000000000A", true, 1500);
	/* with a call_id in the request */
	static const char with_call[] =
		"\x81\xa7" "call_id" "\xd9\x24" CALL_1;
	authorize(f, ORG_A, with_call, sizeof(with_call) - 1, &a);
	assert_string_equal(a.error_code, "");
	assert_true(a.allowed);

	/* unknown org */
	authorize(f, ORG_X, empty_map, 1, &a);
	assert_string_equal(a.error_code, "404");
	assert_int_equal(a.body_len, 0);
	/* not a UUID */
	authorize(f, "not-a-uuid", empty_map, 1, &a);
	assert_string_equal(a.error_code, "400");
	assert_int_equal(a.body_len, 0);
	authorize(f, "a0000000-0000-4000-8000-00000000000g", empty_map, 1, &a);
	assert_string_equal(a.error_code, "400");
	/* a body that is not a msgpack map */
	static const char array[] = "\x91\x01";
	authorize(f, ORG_A, array, 2, &a);
	assert_string_equal(a.error_code, "400");
	assert_int_equal(a.body_len, 0);
	static const char garbage[] = "\xc1\xc1";
	authorize(f, ORG_A, garbage, 2, &a);
	assert_string_equal(a.error_code, "400");
	static const char trailing[] = "\x80\x80";
	authorize(f, ORG_A, trailing, 2, &a);
	assert_string_equal(a.error_code, "400");

	/* the answer follows the wallet: a charge takes B under one minute */
	evbuf c;
	mk_call(&c, ORG_B, CALL_1, 1, "auth-call"); /* 2 */
	publish(f, &c.ev);
	wait_balance(f, ORG_B, -432);
	assert_authorized(f, ORG_B, false, 68);
	check_invariants(f);
}

/* splitmix64: a seeded generator the test controls. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	return th_splitmix64(&rng_state);
}

static int64_t rng_range(int64_t lo, int64_t hi) /* inclusive */
{
	return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

#define R_ORGS 5
#define R_CALLS 300
#define R_TOPUPS 60
#define R_REFUNDS 10
#define R_OPENING 20000000LL

typedef struct pub_item {
	int ev;
	char msgid[128];
} pub_item;

static void shuffle(pub_item *items, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(rng() % i);
		pub_item tmp = items[i - 1];
		items[i - 1] = items[j];
		items[j] = tmp;
	}
}

/* Publish events [from, to) of evs, each once under its event_id and 30%
 * of them once more under another msg id, in a shuffled order. */
static size_t publish_with_duplicates(fixture *f, evbuf *evs, int from, int to)
{
	size_t cap = (size_t)(to - from) * 2, n = 0;
	pub_item *items = vox_calloc(cap, sizeof(*items));
	for (int i = from; i < to; i++) {
		items[n].ev = i;
		snprintf(items[n].msgid, sizeof(items[n].msgid), "%s", evs[i].eid);
		n++;
		if (rng() % 100 < 30) {
			items[n].ev = i;
			snprintf(items[n].msgid, sizeof(items[n].msgid), "dup-%s", evs[i].eid);
			n++;
		}
	}
	shuffle(items, n);
	for (size_t i = 0; i < n; i++)
		publish_as(f, &evs[items[i].ev].ev, items[i].msgid);
	free(items);
	return n;
}

/* How many messages the instance in slot i received, from its ADR-32
 * STATS metadata ("consume.received"); -1 if it cannot be read. */
static long long instance_received(fixture *f, int i)
{
	FILE *fp = fopen(f->logs[i], "r");
	char line[4096], id[64] = "", subject[160];
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		const char *p = strstr(line, "msg=\"started\"");
		p = p ? strstr(p, " id=") : NULL;
		if (p) {
			snprintf(id, sizeof(id), "%.*s", (int)strcspn(p + 4, " \n"), p + 4);
			break;
		}
	}
	fclose(fp);
	if (!id[0])
		return -1;
	snprintf(subject, sizeof(subject), "$SRV.STATS." ACTOR ".%s", id);
	natsMsg *m = NULL;
	if (natsConnection_Request(&m, f->nc, subject, "", 0, 2000) != NATS_OK)
		return -1;
	long long v = -1;
	const char *data = natsMsg_GetData(m);
	const char *key = "\"consume.received\":\"";
	const char *p = data ? strstr(data, key) : NULL;
	if (p)
		v = strtoll(p + strlen(key), NULL, 10);
	natsMsg_Destroy(m);
	return v;
}

static void test_two_instances_with_duplicates_exact_balances(void **state)
{
	fixture *f = *state;
	const char *s = getenv("VOX_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	fprintf(stderr, "test_two_instances_with_duplicates_exact_balances: seed %" PRIu64
		" (VOX_TEST_SEED to replay)\n", seed);
	rng_state = seed;

	char orgs[R_ORGS][40];
	long long expected[R_ORGS];
	for (int o = 0; o < R_ORGS; o++) {
		uuid_n(orgs[o], sizeof(orgs[o]), 0xf0000000u + (unsigned)o, (unsigned long long)o + 1);
		add_org(f, orgs[o], R_OPENING, 500, 1000);
		expected[o] = R_OPENING;
	}
	const int total = R_CALLS + R_TOPUPS + R_REFUNDS;
	evbuf *evs = vox_calloc((size_t)total, sizeof(*evs));
	int topup_org[R_TOPUPS];
	int64_t topup_amount[R_TOPUPS], refundable[R_TOPUPS];
	long long charged_calls = 0;
	/* phase 1: 200 calls and every top-up; phase 2: 100 calls and the
	 * refunds (published once their top-ups are in) */
	int n = 0;
	for (int i = 0; i < R_TOPUPS; i++, n++) {
		char pi[48], eid[64];
		int o = (int)rng_range(0, R_ORGS - 1);
		int64_t amount = rng_range(1, 1000000);
		snprintf(pi, sizeof(pi), "pi_%" PRIu64 "_%d", seed, i);
		snprintf(eid, sizeof(eid), "evt_topup_%" PRIu64 "_%d", seed, i);
		mk_topup(&evs[n], orgs[o], pi, amount, eid);
		topup_org[i] = o;
		topup_amount[i] = refundable[i] = amount;
		expected[o] += amount;
	}
	for (int i = 0; i < R_CALLS; i++, n++) {
		char call[40], eid[64];
		int o = (int)rng_range(0, R_ORGS - 1);
		uint64_t kind = rng() % 100;
		int64_t d = kind < 5 ? 0 : kind < 80 ? rng_range(1, 900)
				    : kind < 97 ? rng_range(901, 7200) : rng_range(7201, 86400);
		uuid_n(call, sizeof(call), 0x33333333, (seed & 0xffffffffULL) * 1000 + (unsigned)i);
		snprintf(eid, sizeof(eid), "vapi_end_%" PRIu64 "_%d", seed, i);
		mk_call(&evs[n], orgs[o], call, d, eid);
		expected[o] -= charge_of(d);
		if (d > 0)
			charged_calls++;
	}
	for (int i = 0; i < R_REFUNDS; i++, n++) {
		char re[48], pi[48], eid[64];
		int t;
		do
			t = (int)rng_range(0, R_TOPUPS - 1);
		while (refundable[t] == 0);
		int64_t amount = rng_range(1, refundable[t]);
		refundable[t] -= amount;
		snprintf(re, sizeof(re), "re_%" PRIu64 "_%d", seed, i);
		snprintf(pi, sizeof(pi), "pi_%" PRIu64 "_%d", seed, t);
		snprintf(eid, sizeof(eid), "evt_refund_%" PRIu64 "_%d", seed, i);
		mk_refund(&evs[n], orgs[topup_org[t]], re, pi, amount, eid);
		expected[topup_org[t]] -= amount;
	}
	assert_int_equal(n, total);
	VOX_UNUSED(topup_amount);

	start_billing(f, 0, NULL, NULL);
	start_billing(f, 1, NULL, NULL);
	/* phase 1: top-ups and 200 calls */
	size_t published = publish_with_duplicates(f, evs, 0, R_TOPUPS + 200);
	assert_int_equal(wait_sqlf(f, R_TOPUPS, 30000,
		"SELECT count(*) FROM credit_transactions WHERE type = 'topup'"), R_TOPUPS);
	/* phase 2: the rest of the calls and the refunds */
	published += publish_with_duplicates(f, evs, R_TOPUPS + 200, total);
	fprintf(stderr, "published %zu messages for %d events\n", published, total);

	assert_int_equal(wait_sqlf(f, R_CALLS, 60000, "SELECT count(*) FROM call_charges"),
			 R_CALLS);
	assert_int_equal(wait_sqlf(f, R_REFUNDS, 30000, "SELECT count(*) FROM credit_transactions"
				   " WHERE type = 'refund'"), R_REFUNDS);
	wait_drained(f);
	for (int o = 0; o < R_ORGS; o++) {
		long long got = balance_of(f, orgs[o]);
		if (got != expected[o])
			fprintf(stderr, "org %s: want %lld, got %lld\n", orgs[o], expected[o], got);
		assert_int_equal(got, expected[o]);
	}
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"),
			 charged_calls + R_TOPUPS + R_REFUNDS);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM call_charges"), R_CALLS);
	/* one processed row per payment webhook, none per call */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM processed_webhook_events"),
			 R_TOPUPS + R_REFUNDS);
	assert_int_equal(th_pg_intf(f->db, "SELECT COALESCE(sum(unbilled_pence), 0)"
				     " FROM organizations"), 0);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 0);
	/* both instances took part, so their transactions did interleave */
	long long got0 = instance_received(f, 0), got1 = instance_received(f, 1);
	fprintf(stderr, "instance 0 received %lld messages, instance 1 %lld\n", got0, got1);
	assert_true(got0 > 0);
	assert_true(got1 > 0);
	assert_true(got0 + got1 >= (long long)published);
	free(evs);
	check_invariants(f);
}

/* vox-billing locks the orgs of a batch against its other instances only:
 * the foreign-key check of a row that names the org (a call or contact
 * vox-calls or vox-leads is writing, which holds FOR KEY SHARE until it
 * commits) must not make billing wait. With FOR UPDATE it did: every
 * batch of vox-calls and vox-billing for the same orgs ran in turn. */
static void test_billing_does_not_wait_for_key_share_locks(void **state)
{
	fixture *f = *state;
	evbuf c;
	add_org(f, ORG_A, 10000, 500, 1000);
	start_billing(f, 0, NULL, NULL);
	PGconn *other = th_pg_connect(f->dsn);
	th_pg_ok(other, "BEGIN");
	th_pg_okf(other, "INSERT INTO contacts (org_id, phone, first_name, last_name)"
		  " VALUES ('%s', '+15550001234', 'Held', 'Open')", ORG_A);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM pg_locks l"
		" JOIN pg_stat_activity a ON a.pid = l.pid"
		" WHERE l.locktype = 'transactionid' AND a.pid = %d",
		PQbackendPID(other)), 1);
	mk_call(&c, ORG_A, CALL_1, 60, "vapi-keyshare-1");
	publish(f, &c.ev);
	/* charged while the other transaction is still open */
	wait_balance(f, ORG_A, 10000 - 70);
	assert_int_equal(PQtransactionStatus(other), PQTRANS_INTRANS);
	th_pg_ok(other, "ROLLBACK");
	PQfinish(other);
	wait_drained(f);
	check_invariants(f);
}

static void test_retention_cleanup_keeps_idempotency(void **state)
{
	fixture *f = *state;
	evbuf c, t;
	add_org(f, ORG_A, 10000, 500, 0);
	th_pg_ok(f->db,
		"INSERT INTO processed_webhook_events (event_id, event_type, org_id,"
		" processed_at, created_at) VALUES"
		" ('it-old', 'call.ended', '" ORG_A "', now() - interval '2 hours',"
		"  now() - interval '2 hours'),"
		" ('it-recent', 'call.ended', '" ORG_A "', now() - interval '30 minutes',"
		"  now() - interval '30 minutes')");
	start_billing(f, 0, "VOX_WEBHOOK_CLEANUP_S=1", "VOX_WEBHOOK_RETENTION_H=1");
	assert_int_equal(wait_sqlf(f, 0, 10000, "SELECT count(*) FROM processed_webhook_events"
				   " WHERE event_id = 'it-old'"), 0);
	mk_call(&c, ORG_A, CALL_1, 120, "ret-call"); /* 140 */
	mk_topup(&t, ORG_A, "pi_ret", 1000, "ret-topup");
	publish(f, &c.ev);
	publish(f, &t.ev);
	wait_balance(f, ORG_A, 10000 - 140 + 1000);
	wait_drained(f);
	/* a few more cleanup rounds: the recent rows stay */
	th_sleep_ms(2500);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM processed_webhook_events"
				     " WHERE event_id IN ('it-recent',"
				     " 'vox-billing:payment.succeeded:ret-topup')"), 2);
	assert_true(th_count_in_log(f->logs[0], "webhook events cleaned") >= 2);

	/* permanent idempotency does not depend on that table */
	th_pg_ok(f->db, "DELETE FROM processed_webhook_events");
	publish_as(f, &c.ev, "ret-call-replayed");
	publish_as(f, &t.ev, "ret-topup-replayed");
	wait_drained(f);
	assert_int_equal(balance_of(f, ORG_A), 10000 - 140 + 1000);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"), 2);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM call_charges"), 1);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	check_invariants(f);
}

/* An alert never blocks its effect. An org may have a debt limit above
 * 1e8 (voxctl org create and the schema take it): a call that took it
 * below its low-balance threshold made an alert the codec refused, so
 * the charge was dead-lettered "handler: invalid" and never taken. And
 * since the money columns are bigint, every amount may pass 2^31. */
static void test_large_wallets_are_charged_and_alerted(void **state)
{
	fixture *f = *state;
	evbuf c1, c2;
	add_org(f, ORG_A, 1100, 2000000000LL, 1000);
	start_billing(f, 0, NULL, NULL);
	mk_call(&c1, ORG_A, CALL_1, 120, "big-debt-call"); /* 140: 960 */
	publish(f, &c1.ev);
	wait_balance(f, ORG_A, 960);
	wait_drained(f);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	alert_list al;
	collect_alerts(f, &al);
	assert_int_equal(al.n, 1);
	assert_int_equal(al.ev[0].kind, VOX_ALERT_LOW_BALANCE);
	assert_string_equal(natsMsg_GetSubject(al.msgs[0]), "alert.low_balance." ORG_A);
	assert_string_equal(al.ev[0].u.wallet.org_id.s, ORG_A);
	assert_string_equal(al.ev[0].u.wallet.call_id.s, CALL_1);
	assert_int_equal(al.ev[0].u.wallet.balance_pence, 960);
	assert_int_equal(al.ev[0].u.wallet.debt_limit_pence, 2000000000LL);
	assert_int_equal(al.ev[0].u.wallet.amount_pence, 1000);
	release_alerts(&al);
	assert_authorized(f, ORG_A, true, 960 + 2000000000LL);

	/* past 32 bits everywhere: balance, debt limit and threshold */
	const long long big = 3000000000000LL;
	add_org(f, ORG_B, big, 5000000000LL, big - 100);
	mk_call(&c2, ORG_B, CALL_2, 120, "big-wallet-call"); /* 140 */
	publish(f, &c2.ev);
	wait_balance(f, ORG_B, big - 140);
	wait_drained(f);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	assert_int_equal(th_pg_intf(f->db, "SELECT balance_before_pence FROM credit_transactions"
				     " WHERE call_id = '" CALL_2 "'"), big);
	collect_alerts(f, &al);
	assert_int_equal(al.n, 2);
	const vox_alert_wallet *w = &al.ev[1].u.wallet;
	assert_int_equal(al.ev[1].kind, VOX_ALERT_LOW_BALANCE);
	assert_string_equal(w->org_id.s, ORG_B);
	assert_string_equal(w->call_id.s, CALL_2);
	assert_int_equal(w->balance_pence, big - 140);
	assert_int_equal(w->debt_limit_pence, 5000000000LL);
	assert_int_equal(w->amount_pence, big - 100);
	release_alerts(&al);
	assert_authorized(f, ORG_B, true, big - 140 + 5000000000LL);
	check_invariants(f);
}

/* A top-up that would take the balance past the largest bigint is refused
 * (409, stable code "overflow") by the planner; it used to overflow int64
 * in C or fail the statement as a 500. billing.authorize's sum saturates. */
static void test_topup_that_would_overflow_is_refused(void **state)
{
	fixture *f = *state;
	evbuf t, ok;
	char subj[128];
	const long long top = INT64_MAX - 50;
	add_org(f, ORG_A, top, 500, 0);
	add_org(f, ORG_B, 0, INT64_MAX, 0);
	start_billing(f, 0, NULL, NULL);
	mk_topup(&t, ORG_A, "pi_overflow", 100, "overflow-topup");
	mk_topup(&ok, ORG_A, "pi_fits", 50, "fits-topup");
	publish(f, &t.ev);
	publish(f, &ok.ev);
	wait_stream_count(f, "DLQ", 1);
	wait_balance(f, ORG_A, INT64_MAX);
	wait_drained(f);
	snprintf(subj, sizeof(subj), "payment.succeeded.%s", ORG_A);
	assert_dead_letter(f, "overflow-topup", subj, "409", "overflow");
	natsMsg *m = dlq_find(f, "overflow-topup");
	assert_non_null(m);
	assert_non_null(strstr(hdr(m, "Vox-Error"), "balance_pence"));
	natsMsg_Destroy(m);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"
				     " WHERE stripe_payment_intent_id = 'pi_overflow'"), 0);
	assert_authorized(f, ORG_A, true, INT64_MAX);
	assert_authorized(f, ORG_B, true, INT64_MAX);
	check_invariants(f);
}

/* A refund is a debit too: one that takes the wallet below its threshold
 * raises alert.low_balance, once per crossing like a charge, without a
 * call_id and with an alert_id derived from the refund id. */
static void test_refund_crossing_the_threshold_raises_low_balance(void **state)
{
	fixture *f = *state;
	evbuf t1, t2, c1, c2, r1, r2;
	add_org(f, ORG_A, 500, 500, 1000);
	start_billing(f, 0, NULL, NULL);
	mk_topup(&t1, ORG_A, "pi_low_refund", 2000, "lr-topup-1");
	mk_call(&c1, ORG_A, CALL_1, 60, "lr-call-1");           /* 2430 */
	mk_refund(&r1, ORG_A, "re_low_1", "pi_low_refund", 1500, "lr-refund-1"); /* 930 */
	mk_refund(&r2, ORG_A, "re_low_2", "pi_low_refund", 100, "lr-refund-2");  /* 830 */
	publish(f, &t1.ev);
	wait_balance(f, ORG_A, 2500);
	publish(f, &c1.ev);
	wait_balance(f, ORG_A, 2430);
	publish(f, &r1.ev);
	wait_balance(f, ORG_A, 930);
	/* the same refund again and a second one while low: no new alert */
	publish_as(f, &r1.ev, "lr-refund-1-again");
	publish(f, &r2.ev);
	wait_balance(f, ORG_A, 830);
	wait_drained(f);
	alert_list al;
	collect_alerts(f, &al);
	assert_int_equal(al.n, 1);
	const vox_alert_wallet *w = &al.ev[0].u.wallet;
	assert_int_equal(al.ev[0].kind, VOX_ALERT_LOW_BALANCE);
	assert_string_equal(w->org_id.s, ORG_A);
	assert_int_equal(w->call_id.s[0], '\0');
	assert_int_equal(w->balance_pence, 930);
	assert_int_equal(w->amount_pence, 1000);
	assert_int_equal(w->debt_limit_pence, 500);
	assert_int_equal(w->created_at.sec, r1.ev.u.payment_refunded.occurred_at.sec);
	vox_uuid want;
	vox_uuid org;
	memcpy(org.s, ORG_A, 37);
	vox_billing_alert_id(&want, VOX_ALERT_LOW_BALANCE, &org,
			     "refund:re_low_1", strlen("refund:re_low_1"));
	assert_string_equal(w->alert_id.s, want.s);
	assert_string_equal(al.msgid[0], want.s);
	release_alerts(&al);

	/* back above the line, then a call crosses it: a second alert */
	mk_topup(&t2, ORG_A, "pi_low_refund_2", 1000, "lr-topup-2"); /* 1830 */
	mk_call(&c2, ORG_A, CALL_2, 900, "lr-call-2");                /* 1050: 780 */
	publish(f, &t2.ev);
	wait_balance(f, ORG_A, 1830);
	publish(f, &c2.ev);
	wait_balance(f, ORG_A, 780);
	wait_drained(f);
	collect_alerts(f, &al);
	assert_int_equal(al.n, 2);
	assert_int_equal(count_kind(&al, VOX_ALERT_LOW_BALANCE), 2);
	assert_string_equal(al.ev[1].u.wallet.call_id.s, CALL_2);
	assert_int_equal(al.ev[1].u.wallet.balance_pence, 780);
	release_alerts(&al);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	check_invariants(f);
}

/* ---- credit holds ------------------------------------------------------------ */

/* {"call_id": <call>, "hold": true} */
static size_t hold_body(char *out, const char *call)
{
	int n = snprintf(out, 64, "\x82\xa7" "call_id" "\xd9\x24" "%s" "\xa4" "hold" "\xc3",
			 call);
	return (size_t)n;
}

/* The defect of a balance-only authorize: ten calls started at once for
 * an org with credit for one minute were all allowed. With holds, the
 * first is allowed and holds VOX_HOLD_MINUTES (5 x 70p); the other nine,
 * asked at the same time, see that hold and are refused. */
static void test_ten_concurrent_calls_with_credit_for_one_minute(void **state)
{
	fixture *f = *state;
	add_org(f, ORG_A, 70, 0, 0);
	start_billing(f, 0, NULL, NULL);
	natsSubscription *sub = NULL;
	char inbox[128];
	natsInbox *ib = NULL;
	assert_int_equal(natsInbox_Create(&ib), NATS_OK);
	snprintf(inbox, sizeof(inbox), "%s", (const char *)ib);
	natsInbox_Destroy(ib);
	assert_int_equal(natsConnection_SubscribeSync(&sub, f->nc, inbox), NATS_OK);
	/* all ten in flight before the first answer */
	for (int i = 0; i < 10; i++) {
		char call[40], body[64];
		snprintf(call, sizeof(call), "22222222-0000-4000-8000-0000000000%02d", i);
		size_t n = hold_body(body, call);
		assert_int_equal(natsConnection_PublishRequest(f->nc, "billing.authorize." ORG_A,
							       inbox, body, (int)n), NATS_OK);
	}
	assert_int_equal(natsConnection_Flush(f->nc), NATS_OK);
	int allowed = 0, refused = 0;
	for (int i = 0; i < 10; i++) {
		natsMsg *m = NULL;
		assert_int_equal(natsSubscription_NextMsg(&m, sub, 10000), NATS_OK);
		const char *code = NULL;
		assert_int_not_equal(natsMsgHeader_Get(m, "Nats-Service-Error-Code", &code),
				     NATS_OK);
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		assert_int_equal(msgpack_unpack_next(&u, natsMsg_GetData(m),
						     (size_t)natsMsg_GetDataLength(m), NULL),
				 MSGPACK_UNPACK_SUCCESS);
		bool ok = false;
		char hold[16] = "";
		for (uint32_t k = 0; k < u.data.via.map.size; k++) {
			const msgpack_object_kv *kv = &u.data.via.map.ptr[k];
			if (kv->key.via.str.size == 7 && memcmp(kv->key.via.str.ptr, "allowed", 7) == 0)
				ok = kv->val.via.boolean;
			if (kv->key.via.str.size == 4 && memcmp(kv->key.via.str.ptr, "hold", 4) == 0)
				snprintf(hold, sizeof(hold), "%.*s", (int)kv->val.via.str.size,
					 kv->val.via.str.ptr);
		}
		msgpack_unpacked_destroy(&u);
		natsMsg_Destroy(m);
		if (ok) {
			allowed++;
			assert_string_equal(hold, "placed");
		} else {
			refused++;
			assert_string_equal(hold, "refused");
		}
	}
	natsSubscription_Destroy(sub);
	assert_int_equal(allowed, 1);
	assert_int_equal(refused, 9);
	/* one hold, 350p, recorded as not fitting (70p of credit) */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_holds"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT amount_pence FROM credit_holds"
				     " WHERE state = 'active' AND NOT fits"), 350);
	/* and a plain authorize sees it: 70 - 350 */
	assert_authorized(f, ORG_A, false, -280);
	check_invariants(f);
}

/* The replaced system capped a call's charge at its 5-minute
 * reservation. A hold reserves; the charge is the call's duration, and
 * the hold is released in the same transaction. A call.ended before any
 * hold leaves the call ended: a hold asked for afterwards places nothing. */
static void test_a_hold_settles_and_never_caps_the_charge(void **state)
{
	fixture *f = *state;
	auth_reply a;
	char body[64];
	evbuf c1, c2;
	add_org(f, ORG_A, 10000, 500, 0);
	start_billing(f, 0, NULL, NULL);
	authorize(f, ORG_A, body, hold_body(body, CALL_1), &a);
	assert_string_equal(a.error_code, "");
	assert_true(a.allowed);
	assert_string_equal(a.hold, "placed");
	assert_int_equal(a.held, 350);
	assert_int_equal(a.available, 10000 + 500 - 350);
	/* asked again for the same call: the same hold, nothing more held */
	authorize(f, ORG_A, body, hold_body(body, CALL_1), &a);
	assert_true(a.allowed);
	assert_string_equal(a.hold, "active");
	assert_int_equal(a.held, 350);

	/* a 30-minute call: 30 x 70 = 2100p, not the hold's 350 */
	mk_call(&c1, ORG_A, CALL_1, 1800, "hold-call-1");
	publish(f, &c1.ev);
	wait_balance(f, ORG_A, 10000 - 2100);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT charge_pence FROM call_charges"
				     " WHERE call_id = '" CALL_1 "'"), 2100);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_holds WHERE"
				     " call_id = '" CALL_1 "' AND state = 'settled'"
				     " AND ended_at IS NOT NULL"), 1);
	assert_authorized(f, ORG_A, true, 10000 - 2100 + 500);
	/* the call has ended: no new hold for it */
	authorize(f, ORG_A, body, hold_body(body, CALL_1), &a);
	assert_false(a.allowed);
	assert_string_equal(a.hold, "settled");
	assert_int_equal(a.held, 0);

	/* ended first, asked after: nothing placed, nothing held */
	mk_call(&c2, ORG_A, CALL_2, 60, "hold-call-2");
	publish(f, &c2.ev);
	wait_balance(f, ORG_A, 10000 - 2100 - 70);
	wait_drained(f);
	authorize(f, ORG_A, body, hold_body(body, CALL_2), &a);
	assert_false(a.allowed);
	assert_string_equal(a.hold, "settled");
	assert_int_equal(th_pg_intf(f->db, "SELECT COALESCE(sum(amount_pence), 0)"
				     " FROM credit_holds WHERE state = 'active'"), 0);
	check_invariants(f);
}

/* A hold whose call never ends (the bridge crashed) stops counting once
 * it expires, exactly once; a hold needs its call_id. */
static void test_an_abandoned_hold_expires(void **state)
{
	fixture *f = *state;
	auth_reply a;
	char body[64];
	add_org(f, ORG_A, 100, 0, 0);
	start_billing(f, 0, NULL, NULL);
	authorize(f, ORG_A, body, hold_body(body, CALL_3), &a);
	assert_true(a.allowed);
	assert_int_equal(a.held, 350);
	assert_authorized(f, ORG_A, false, 100 - 350);
	/* as if VOX_HOLD_EXPIRY_S had passed */
	th_pg_okf(f->db, "UPDATE credit_holds SET expires_at = now() - interval '1 second'"
		  " WHERE call_id = '%s'", CALL_3);
	assert_int_equal(wait_sqlf(f, 1, 20000, "SELECT count(*) FROM credit_holds"
				   " WHERE call_id = '%s' AND state = 'expired'", CALL_3), 1);
	assert_authorized(f, ORG_A, true, 100);
	authorize(f, ORG_A, body, hold_body(body, CALL_3), &a);
	assert_false(a.allowed);
	assert_string_equal(a.hold, "expired");
	/* hold without a call_id: refused by name */
	static const char no_call[] = "\x81\xa4" "hold" "\xc3";
	authorize(f, ORG_A, no_call, sizeof(no_call) - 1, &a);
	assert_string_equal(a.error_code, "400");
	check_invariants(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replayed_call_ended_is_charged_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_topup_whose_first_attempt_fails_is_credited_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payment_and_call_sharing_an_event_id_are_both_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_rate_for_every_call_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_charge_over_the_debt_limit_keeps_a_shortfall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_low_balance_alert_once_per_crossing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflicting_duplicates_are_dead_lettered_and_move_no_money, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refunds_capped_unknown_and_below_the_debt_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refund_before_its_payment_waits_for_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_org_is_dead_lettered_and_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_billing_authorize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_instances_with_duplicates_exact_balances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_billing_does_not_wait_for_key_share_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_cleanup_keeps_idempotency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_wallets_are_charged_and_alerted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_topup_that_would_overflow_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refund_crossing_the_threshold_raises_low_balance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ten_concurrent_calls_with_credit_for_one_minute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_hold_settles_and_never_caps_the_charge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_abandoned_hold_expires, setup, teardown),
	};
	if (getenv("VOX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VOX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
