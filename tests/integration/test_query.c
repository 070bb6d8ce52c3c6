/*
 * Integration: vox-query against real servers. One nats-server, one
 * migrated database seeded with two orgs' wallets, ledgers, calls,
 * contacts and alerts, and vox-query spawned as the vox_query role. Every
 * endpoint is asked over NATS; lists are walked page by page while rows
 * are inserted; every error code is provoked; requests for one org never
 * see another's rows. The tenant boundary itself is checked below the
 * endpoints: an unfiltered statement run through the same pool (qdb.c)
 * sees one org, and the owner role is refused.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <unistd.h>

#include <msgpack.h>

#include "actors/query/query.h"
#include "harness.h"

#define ORG_A "a0000000-0000-4000-8000-00000000000a"
#define ORG_B "b0000000-0000-4000-8000-00000000000b"
#define ORG_X "e0000000-0000-4000-8000-0000000000ee" /* never inserted */

#define A_TX 57    /* ledger rows of org A */
#define A_CALLS 45 /* calls of org A */
#define B_CALLS 10

typedef struct fixture {
	th_nats nats;
	char dsn[512];       /* owner */
	char query_dsn[768]; /* the vox_query role, same database */
	char env_url[128];
	char env_dsn[800];
	char log[600];
	pid_t actor;
	natsConnection *nc;
	PGconn *db;
} fixture;

static fixture *F;

/* ---- seeding ------------------------------------------------------------- */

static void seed(PGconn *db)
{
	th_pg_okf(db, "INSERT INTO organizations (id, name, email, wallet_balance_pence,"
		      " debt_limit_pence, unbilled_pence, low_balance_pence)"
		      " VALUES ('%s', 'Riverside Dental', 'a@example.com', 180, 500, 30, 200),"
		      " ('%s', 'Hillview Clinic', 'b@example.com', -120, 500, 0, 1000)",
		  ORG_A, ORG_B);
	/* ledgers: A_TX rows for A (types in turn), 5 for B */
	th_pg_okf(db, "INSERT INTO credit_transactions (org_id, amount_pence, type,"
		      " description, created_at)"
		      " SELECT '%s', CASE i %% 3 WHEN 0 THEN 500 WHEN 1 THEN -70 ELSE -100 END,"
		      "  CASE i %% 3 WHEN 0 THEN 'topup' WHEN 1 THEN 'deduction' ELSE 'refund' END,"
		      "  'row ' || i, now() - (%d - i) * interval '1 minute'"
		      " FROM generate_series(1, %d) i",
		  ORG_A, A_TX, A_TX);
	th_pg_okf(db, "INSERT INTO credit_transactions (org_id, amount_pence, type)"
		      " SELECT '%s', 1000, 'topup' FROM generate_series(1, 5)",
		  ORG_B);
	/* calls: one a minute, and three that share one instant (ties are
	 * ordered by id) */
	th_pg_okf(db, "INSERT INTO calls (org_id, call_direction, from_number, to_number,"
		      " status, duration_seconds, created_at)"
		      " SELECT '%s', CASE WHEN i %% 2 = 0 THEN 'inbound' ELSE 'outbound' END,"
		      "  '+447700900' || lpad(i::text, 3, '0'), '+442071838750',"
		      "  (ARRAY['pending','in_progress','completed','failed'])[1 + i %% 4],"
		      "  i * 10,"
		      "  CASE WHEN i <= 3 THEN timestamptz '2026-11-01 09:00:00+00'"
		      "       ELSE timestamptz '2026-11-01 09:00:00+00' + i * interval '1 minute' END"
		      " FROM generate_series(1, %d) i",
		  ORG_A, A_CALLS);
	th_pg_okf(db, "INSERT INTO calls (org_id, call_direction, from_number, to_number,"
		      " status, created_at)"
		      " SELECT '%s', 'inbound', '+447700900999', '+442071838751', 'completed',"
		      "  timestamptz '2026-11-01 09:00:00+00' + i * interval '1 minute'"
		      " FROM generate_series(1, %d) i",
		  ORG_B, B_CALLS);
	/* the same phone number is a contact of both orgs */
	th_pg_okf(db, "INSERT INTO contacts (id, org_id, phone, first_name, last_name,"
		      " lead_status, lead_score)"
		      " VALUES ('c0000000-0000-4000-8000-0000000000a1', '%s', '+447700900001',"
		      "  'Priya', 'Shah', 'hot', 91),"
		      " ('c0000000-0000-4000-8000-0000000000b1', '%s', '+447700900001',"
		      "  'Tom', 'Other', 'cold', NULL)",
		  ORG_A, ORG_B);
	th_pg_okf(db, "INSERT INTO hot_lead_alerts (org_id, contact_id, call_id, lead_name,"
		      " lead_phone, lead_score, urgency_level, summary, created_at)"
		      " SELECT '%s', 'c0000000-0000-4000-8000-0000000000a1', gen_random_uuid(),"
		      "  'Priya Shah', '+447700900001', 70 + i, 'high', 'alert ' || i,"
		      "  timestamptz '2026-11-02 10:00:00+00' + i * interval '1 second'"
		      " FROM generate_series(1, 5) i",
		  ORG_A);
	th_pg_okf(db, "INSERT INTO hot_lead_alerts (org_id, contact_id, lead_name,"
		      " lead_score, urgency_level, created_at)"
		      " VALUES ('%s', 'c0000000-0000-4000-8000-0000000000b1', 'B lead', 99,"
		      "  'high', timestamptz '2026-11-03 00:00:00+00')",
		  ORG_B);
}

/* ---- the actor ----------------------------------------------------------- */

static pid_t spawn_query(fixture *f, char *env_dsn, const char *log)
{
	char *env[] = {f->env_url, env_dsn, NULL};
	return th_spawn("vox-query", env, log);
}

/* Wait until vox-query answers query.wallet for A (about 10 s at most). */
static void wait_ready(fixture *f)
{
	char subject[128];
	snprintf(subject, sizeof(subject), "query.wallet.%s", ORG_A);
	for (int i = 0; i < 100; i++) {
		th_reply r;
		if (th_request_raw(f->nc, subject, "\x80", 1, NULL, NULL, &r) == NATS_OK &&
		    r.code[0] == '\0') {
			th_reply_free(&r);
			return;
		}
		th_reply_free(&r);
		th_sleep_ms(100);
	}
	fail_msg("vox-query did not answer (see %s)", f->log);
}

static int group_setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	th_nats_start(&f->nats);
	th_pg_migrated_db("query", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
	seed(f->db);
	const char *name = strstr(f->dsn, "dbname=");
	assert_non_null(name);
	snprintf(f->query_dsn, sizeof(f->query_dsn), "%s %s",
		 th_env("VOX_PG_QUERY_DSN"), name);
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->query_dsn);
	snprintf(f->log, sizeof(f->log), "%s/vox-query.log", th_env("VOX_TEST_TMP"));
	th_nats_connect(f->nats.url, &f->nc);
	f->actor = spawn_query(f, f->env_dsn, f->log);
	F = f;
	*state = f;
	wait_ready(f);
	return 0;
}

/* Stops everything, also after a failed assertion. */
static int group_teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	if (f->actor > 0)
		th_stop(f->actor, SIGTERM, 10000);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	PQfinish(f->db);
	free(f);
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

/* Ask query.<endpoint>.<token> with b (NULL: the empty map); frees b. */
static void ask(const char *endpoint, const char *token, th_body *b, th_reply *r)
{
	char subject[160];
	snprintf(subject, sizeof(subject), "query.%s.%s", endpoint, token);
	natsStatus s = th_request_raw(F->nc, subject, b ? b->sb.data : "\x80",
				      b ? b->sb.size : 1, NULL, NULL, r);
	if (b)
		msgpack_sbuffer_destroy(&b->sb);
	if (s != NATS_OK)
		fprintf(stderr, "request %s: %s\n", subject, natsStatus_GetText(s));
	assert_int_equal(s, NATS_OK);
}

static void expect_ok(th_reply *r)
{
	if (r->code[0])
		fprintf(stderr, "unexpected error %s: %s\n", r->code, r->text);
	assert_string_equal(r->code, "");
}

static int64_t get_int(const msgpack_object *map, const char *k)
{
	const msgpack_object *v = th_get_key(map, k);
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)v->via.u64;
	assert_int_equal(v->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
	return v->via.i64;
}

/* The string value of k into out ("" when absent). */
static void get_str(const msgpack_object *map, const char *k, char *out, size_t n)
{
	const msgpack_object *v = th_get_key(map, k);
	out[0] = '\0';
	if (v->type == MSGPACK_OBJECT_NIL)
		return;
	assert_int_equal(v->type, MSGPACK_OBJECT_STR);
	snprintf(out, n, "%.*s", (int)v->via.str.size, v->via.str.ptr);
}

/* A timestamp value (ext -1, any width) as unix microseconds. */
static int64_t get_ts_us(const msgpack_object *map, const char *k)
{
	const msgpack_object *v = th_get_key(map, k);
	assert_int_equal(v->type, MSGPACK_OBJECT_EXT);
	assert_int_equal(v->via.ext.type, -1);
	const uint8_t *b = (const uint8_t *)v->via.ext.ptr;
	uint64_t sec = 0, nsec = 0;
	if (v->via.ext.size == 4) {
		for (int i = 0; i < 4; i++)
			sec = (sec << 8) | b[i];
	} else if (v->via.ext.size == 8) {
		uint64_t x = 0;
		for (int i = 0; i < 8; i++)
			x = (x << 8) | b[i];
		nsec = x >> 34;
		sec = x & 0x3FFFFFFFFULL;
	} else {
		assert_int_equal(v->via.ext.size, 12);
		for (int i = 0; i < 4; i++)
			nsec = (nsec << 8) | b[i];
		for (int i = 4; i < 12; i++)
			sec = (sec << 8) | b[i];
	}
	return (int64_t)sec * 1000000 + (int64_t)(nsec / 1000);
}

static const msgpack_object *items_of(th_reply *r)
{
	const msgpack_object *items = th_get_key(&r->u.data, "items");
	assert_int_equal(items->type, MSGPACK_OBJECT_ARRAY);
	return items;
}

/* ---- query.wallet -------------------------------------------------------- */

static void test_wallet(void **state)
{
	(void)state;
	th_reply r;
	ask("wallet", ORG_A, NULL, &r);
	expect_ok(&r);
	const msgpack_object *w = &r.u.data;
	assert_int_equal(w->via.map.size, 9);
	assert_int_equal(get_int(w, "held_pence"), 0);
	assert_int_equal(get_int(w, "balance_pence"), 180);
	assert_int_equal(get_int(w, "debt_limit_pence"), 500);
	assert_int_equal(get_int(w, "available_pence"), 680);
	assert_int_equal(th_get_key(w, "in_debt")->type, MSGPACK_OBJECT_BOOLEAN);
	assert_false(th_get_key(w, "in_debt")->via.boolean);
	assert_int_equal(get_int(w, "unbilled_pence"), 30);
	assert_int_equal(get_int(w, "low_balance_pence"), 200);
	assert_int_equal(get_int(w, "rate_per_minute"), 70);
	assert_int_equal(get_int(w, "minutes_remaining"), 9); /* 680 / 70 */
	th_reply_free(&r);

	/* B is in debt; the subject decides whose wallet, not the body */
	th_body b;
	th_body_init(&b, 1);
	th_body_str(&b, "org_id", ORG_A);
	ask("wallet", ORG_B, &b, &r);
	expect_ok(&r);
	assert_int_equal(get_int(&r.u.data, "balance_pence"), -120);
	assert_true(th_get_key(&r.u.data, "in_debt")->via.boolean);
	assert_int_equal(get_int(&r.u.data, "available_pence"), 380);
	assert_int_equal(get_int(&r.u.data, "minutes_remaining"), 5);
	th_reply_free(&r);

	/* a call in progress holds credit: it is not available; a settled
	 * hold holds nothing, and another org's hold is not this one's */
	th_pg_okf(F->db, "INSERT INTO credit_holds (org_id, call_id, amount_pence, fits,"
		  " expires_at) VALUES ('%s', gen_random_uuid(), 350, true,"
		  " now() + interval '1 hour')", ORG_B);
	th_pg_okf(F->db, "INSERT INTO credit_holds (org_id, call_id, amount_pence, fits,"
		  " state, expires_at, ended_at) VALUES ('%s', gen_random_uuid(), 9999, true,"
		  " 'settled', now(), now())", ORG_B);
	ask("wallet", ORG_B, NULL, &r);
	expect_ok(&r);
	assert_int_equal(get_int(&r.u.data, "held_pence"), 350);
	assert_int_equal(get_int(&r.u.data, "available_pence"), 380 - 350);
	assert_int_equal(get_int(&r.u.data, "minutes_remaining"), 0); /* 30p */
	th_reply_free(&r);
	ask("wallet", ORG_A, NULL, &r);
	assert_int_equal(get_int(&r.u.data, "held_pence"), 0);
	th_reply_free(&r);
	th_pg_okf(F->db, "DELETE FROM credit_holds WHERE org_id = '%s'", ORG_B);

	/* a balance change shows at once: reads are not cached */
	th_pg_okf(F->db, "UPDATE organizations SET wallet_balance_pence = 181 WHERE id = '%s'",
		  ORG_A);
	ask("wallet", ORG_A, NULL, &r);
	expect_ok(&r);
	assert_int_equal(get_int(&r.u.data, "balance_pence"), 181);
	th_reply_free(&r);
	th_pg_okf(F->db, "UPDATE organizations SET wallet_balance_pence = 180 WHERE id = '%s'",
		  ORG_A);

	ask("wallet", ORG_X, NULL, &r);
	th_expect_error(&r, "404");
	/* an upper-case org is the same org */
	ask("wallet", "A0000000-0000-4000-8000-00000000000A", NULL, &r);
	expect_ok(&r);
	assert_int_equal(get_int(&r.u.data, "balance_pence"), 180);
	th_reply_free(&r);
}

/* ---- lists --------------------------------------------------------------- */

/* What a walk saw: ids in order, each page's size. */
typedef struct walk {
	char ids[400][37];
	int n;
	int pages;
	int64_t keys[400]; /* seq, or created_at us */
} walk;

/* Filters of a walk: a function adding keys to the body (nkeys of them). */
typedef struct filter {
	int nkeys;
	void (*add)(th_body *b);
} filter;

/* Between pages: insert rows that a walk must not trip on. */
typedef void (*between_fn)(int page);

static void walk_list(const char *endpoint, const char *org, int limit,
		      const filter *flt, between_fn between, walk *w)
{
	char next[VOX_QCURSOR_MAX] = "";
	bool seq_key = strcmp(endpoint, "transactions") == 0;
	memset(w, 0, sizeof(*w));
	for (int page = 0; page < 200; page++) {
		th_body b;
		th_reply r;
		int nkeys = 1 + (next[0] ? 1 : 0) + (flt ? flt->nkeys : 0);
		th_body_init(&b, (uint32_t)nkeys);
		th_body_int(&b, "limit", limit);
		if (next[0])
			th_body_str(&b, "before", next);
		if (flt)
			flt->add(&b);
		ask(endpoint, org, &b, &r);
		expect_ok(&r);
		assert_int_equal(r.u.data.via.map.size, 2);
		const msgpack_object *items = items_of(&r);
		assert_true(items->via.array.size <= (uint32_t)limit);
		w->pages++;
		for (uint32_t i = 0; i < items->via.array.size; i++) {
			const msgpack_object *row = &items->via.array.ptr[i];
			char org_seen[40];
			assert_true(w->n < 400);
			get_str(row, "id", w->ids[w->n], sizeof(w->ids[0]));
			get_str(row, "org_id", org_seen, sizeof(org_seen));
			assert_string_equal(org_seen, org);
			w->keys[w->n] = seq_key ? get_int(row, "seq")
						: get_ts_us(row, "created_at");
			/* strictly newest first: (key, id) descending */
			if (w->n > 0) {
				int64_t pk = w->keys[w->n - 1], k = w->keys[w->n];
				assert_true(pk > k || (!seq_key && pk == k &&
						       strcmp(w->ids[w->n - 1], w->ids[w->n]) > 0));
			}
			w->n++;
		}
		const msgpack_object *nx = th_get_key(&r.u.data, "next");
		if (nx->type == MSGPACK_OBJECT_NIL) {
			th_reply_free(&r);
			return;
		}
		/* a full page, or one cut short by size, is followed by more */
		assert_int_equal(nx->type, MSGPACK_OBJECT_STR);
		assert_true(items->via.array.size > 0);
		snprintf(next, sizeof(next), "%.*s", (int)nx->via.str.size, nx->via.str.ptr);
		th_reply_free(&r);
		if (between)
			between(page);
	}
	fail_msg("walk of %s did not end", endpoint);
}

/* The ids sql returns, in order. */
static int sql_ids(const char *sql, char ids[][37], int max)
{
	PGresult *res = th_pg_query(F->db, sql);
	int n = PQntuples(res);
	assert_true(n <= max);
	for (int i = 0; i < n; i++)
		snprintf(ids[i], 37, "%s", PQgetvalue(res, i, 0));
	PQclear(res);
	return n;
}

/* w saw exactly the rows sql lists, in that order. */
static void assert_walk_is(const walk *w, const char *sql)
{
	static char want[400][37];
	int n = sql_ids(sql, want, 400);
	assert_int_equal(w->n, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(w->ids[i], want[i]);
}

static void insert_tx(int page)
{
	/* new rows in both orgs, newer than anything in the walk */
	th_pg_okf(F->db, "INSERT INTO credit_transactions (org_id, amount_pence, type, description)"
		      " VALUES ('%s', 100, 'topup', 'during walk %d'), ('%s', 100, 'topup', 'b')",
		  ORG_A, page, ORG_B);
}

static void test_transactions_walk(void **state)
{
	(void)state;
	walk w;
	static char before[400][37];
	int n0 = sql_ids("SELECT id FROM credit_transactions WHERE org_id = '" ORG_A
			 "' ORDER BY seq DESC", before, 400);
	assert_int_equal(n0 >= A_TX, true);
	walk_list("transactions", ORG_A, 10, NULL, insert_tx, &w);
	/* every row that existed when the walk began, once, in order; none of
	 * the rows inserted during it (they are newer than the first page) */
	assert_int_equal(w.n, n0);
	for (int i = 0; i < n0; i++)
		assert_string_equal(w.ids[i], before[i]);
	assert_int_equal(w.pages, (n0 + 9) / 10);

	/* the default page is 20 rows */
	th_reply r;
	ask("transactions", ORG_A, NULL, &r);
	expect_ok(&r);
	assert_int_equal(items_of(&r)->via.array.size, 20);
	const msgpack_object *row = &items_of(&r)->via.array.ptr[0];
	char type[16];
	get_str(row, "type", type, sizeof(type));
	assert_string_equal(type, "topup");
	assert_int_equal(get_int(row, "amount_pence"), 100);
	assert_true(th_has_key(row, "created_at"));
	assert_false(th_has_key(row, "stripe_payment_intent_id")); /* NULL: left out */
	th_reply_free(&r);
}

static void add_type_refund(th_body *b)
{
	th_body_str(b, "type", "refund");
}

static void test_transactions_filter(void **state)
{
	(void)state;
	walk w;
	const filter refunds = {1, add_type_refund};
	walk_list("transactions", ORG_A, 7, &refunds, NULL, &w);
	assert_walk_is(&w, "SELECT id FROM credit_transactions WHERE org_id = '" ORG_A
			   "' AND type = 'refund' ORDER BY seq DESC");
	assert_true(w.n >= A_TX / 3);

	/* B sees B's ledger only */
	walk_list("transactions", ORG_B, 100, NULL, NULL, &w);
	assert_walk_is(&w, "SELECT id FROM credit_transactions WHERE org_id = '" ORG_B
			   "' ORDER BY seq DESC");
	assert_int_equal(w.pages, 1);
}

static int calls_inserted;

static void insert_calls(int page)
{
	/* a newer call, an older one and one at the instant of the ties: the
	 * older ones land in pages still to come */
	th_pg_okf(F->db, "INSERT INTO calls (org_id, call_direction, from_number, to_number,"
		      " status, created_at) VALUES"
		      " ('%s', 'inbound', '+447700900500', '+442071838750', 'pending', now()),"
		      " ('%s', 'inbound', '+447700900501', '+442071838750', 'pending',"
		      "  timestamptz '2026-10-01 00:00:00+00' + %d * interval '1 second'),"
		      " ('%s', 'inbound', '+447700900502', '+442071838750', 'pending',"
		      "  timestamptz '2026-11-01 09:00:00+00')",
		  ORG_A, ORG_A, page, ORG_A);
	calls_inserted += 3;
}

static void test_calls_walk_while_inserting(void **state)
{
	(void)state;
	static walk w;
	static char before[400][37];
	int n0 = sql_ids("SELECT id FROM calls WHERE org_id = '" ORG_A "'"
			 " ORDER BY created_at DESC, id DESC", before, 400);
	calls_inserted = 0;
	walk_list("calls", ORG_A, 7, NULL, insert_calls, &w);
	/* no gaps: every call that existed at the start was seen ... */
	for (int i = 0; i < n0; i++) {
		int seen = 0;
		for (int j = 0; j < w.n; j++)
			seen += strcmp(before[i], w.ids[j]) == 0;
		assert_int_equal(seen, 1);
	}
	/* ... no repeats (the order check in walk_list makes ids distinct) and
	 * nothing else than calls inserted during the walk */
	assert_true(w.n >= n0);
	assert_true(w.n <= n0 + calls_inserted);
	long long now_total = th_pg_intf(F->db, "SELECT count(*) FROM calls WHERE org_id = '%s'",
					 ORG_A);
	assert_int_equal(now_total, n0 + calls_inserted);

	/* a walk with nothing moving matches SQL's order exactly, ties
	 * included */
	walk_list("calls", ORG_A, 4, NULL, NULL, &w);
	assert_walk_is(&w, "SELECT id FROM calls WHERE org_id = '" ORG_A "'"
			   " ORDER BY created_at DESC, id DESC");
	/* clean up for the tests after this one */
	th_pg_okf(F->db, "DELETE FROM calls WHERE org_id = '%s' AND from_number LIKE '+4477009005%%'",
		  ORG_A);
}

static void add_calls_filters(th_body *b)
{
	/* 2026-11-01 09:10 to 09:30 (exclusive), completed, inbound */
	th_body_key(b, "since");
	msgpack_pack_int64(&b->pk, INT64_C(1793524200000)); /* ms */
	th_body_key(b, "until");
	unsigned char ts[4];
	uint32_t sec = 1793525400;
	for (int i = 0; i < 4; i++)
		ts[i] = (unsigned char)(sec >> (24 - 8 * i));
	msgpack_pack_ext(&b->pk, 4, -1);
	msgpack_pack_ext_body(&b->pk, ts, 4);
	th_body_str(b, "status", "completed");
	th_body_str(b, "direction", "inbound");
}

static void test_calls_filters(void **state)
{
	(void)state;
	walk w;
	const filter flt = {4, add_calls_filters};
	walk_list("calls", ORG_A, 2, &flt, NULL, &w);
	assert_walk_is(&w, "SELECT id FROM calls WHERE org_id = '" ORG_A "'"
			   " AND created_at >= '2026-11-01 09:10:00+00'"
			   " AND created_at < '2026-11-01 09:30:00+00'"
			   " AND status = 'completed' AND call_direction = 'inbound'"
			   " ORDER BY created_at DESC, id DESC");
	assert_int_equal(w.n, 5); /* minutes 10, 14, 18, 22, 26 */

	/* one call, with its row's columns */
	char id[37];
	sql_ids("SELECT id FROM calls WHERE org_id = '" ORG_A "' AND duration_seconds = 50",
		&id, 1);
	th_body b;
	th_reply r;
	th_body_init(&b, 1);
	th_body_str(&b, "call_id", id);
	ask("call", ORG_A, &b, &r);
	expect_ok(&r);
	char s[64];
	get_str(&r.u.data, "id", s, sizeof(s));
	assert_string_equal(s, id);
	assert_int_equal(get_int(&r.u.data, "duration_seconds"), 50);
	get_str(&r.u.data, "call_direction", s, sizeof(s));
	assert_string_equal(s, "outbound");
	get_str(&r.u.data, "status", s, sizeof(s));
	assert_string_equal(s, "in_progress");
	assert_int_equal(get_ts_us(&r.u.data, "created_at"),
			 INT64_C(1793523600000000) + 5 * 60 * INT64_C(1000000));
	assert_false(th_has_key(&r.u.data, "transcript"));
	th_reply_free(&r);

	/* B's calls: B's only */
	walk_list("calls", ORG_B, 100, NULL, NULL, &w);
	assert_int_equal(w.n, B_CALLS);
}

/* Pages hold fewer rows than the limit when the rows are large: every
 * reply fits in one message and the walk still sees every row. */
static void test_calls_large_rows(void **state)
{
	(void)state;
	th_pg_okf(F->db, "INSERT INTO calls (org_id, call_direction, from_number, to_number,"
		      " status, transcript, created_at)"
		      " SELECT '%s', 'inbound', '+447700900700', '+442071838750', 'completed',"
		      "  repeat('word ', 90000), timestamptz '2030-01-01 00:00:00+00' + i * interval '1 s'"
		      " FROM generate_series(1, 6) i",
		  ORG_B);
	walk w;
	walk_list("calls", ORG_B, 100, NULL, NULL, &w);
	assert_int_equal(w.n, B_CALLS + 6);
	/* 6 rows of 450 kB in 1 MB messages: at least three pages */
	assert_true(w.pages >= 3);
	th_pg_okf(F->db, "DELETE FROM calls WHERE org_id = '%s' AND from_number = '+447700900700'",
		  ORG_B);
}

static void test_hot_leads(void **state)
{
	(void)state;
	th_body b;
	th_reply r;
	th_body_init(&b, 1);
	th_body_int(&b, "limit", 3);
	ask("hot_leads", ORG_A, &b, &r);
	expect_ok(&r);
	assert_int_equal(r.u.data.via.map.size, 1);
	const msgpack_object *items = items_of(&r);
	assert_int_equal(items->via.array.size, 3);
	for (uint32_t i = 0; i < 3; i++) {
		const msgpack_object *a = &items->via.array.ptr[i];
		char s[64];
		/* newest first: scores 75, 74, 73 */
		assert_int_equal(get_int(a, "lead_score"), 75 - (int)i);
		get_str(a, "org_id", s, sizeof(s));
		assert_string_equal(s, ORG_A);
		assert_true(th_has_key(a, "alert_id"));
		assert_false(th_has_key(a, "id"));
		assert_true(th_has_key(a, "contact_id"));
		assert_true(th_has_key(a, "call_id"));
		get_str(a, "urgency_level", s, sizeof(s));
		assert_string_equal(s, "high");
		assert_true(th_has_key(a, "created_at"));
	}
	th_reply_free(&r);
	ask("hot_leads", ORG_B, NULL, &r);
	expect_ok(&r);
	assert_int_equal(items_of(&r)->via.array.size, 1);
	assert_false(th_has_key(&items_of(&r)->via.array.ptr[0], "call_id"));
	th_reply_free(&r);
}

static void test_contact(void **state)
{
	(void)state;
	th_body b;
	th_reply r;
	char s[64];
	th_body_init(&b, 1);
	th_body_str(&b, "phone", "+447700900001");
	ask("contact", ORG_A, &b, &r);
	expect_ok(&r);
	get_str(&r.u.data, "first_name", s, sizeof(s));
	assert_string_equal(s, "Priya");
	assert_int_equal(get_int(&r.u.data, "lead_score"), 91);
	th_reply_free(&r);

	/* the same number in B is B's contact */
	th_body_init(&b, 1);
	th_body_str(&b, "phone", "+447700900001");
	ask("contact", ORG_B, &b, &r);
	expect_ok(&r);
	get_str(&r.u.data, "first_name", s, sizeof(s));
	assert_string_equal(s, "Tom");
	assert_false(th_has_key(&r.u.data, "lead_score"));
	th_reply_free(&r);

	th_body_init(&b, 1);
	th_body_str(&b, "contact_id", "c0000000-0000-4000-8000-0000000000a1");
	ask("contact", ORG_A, &b, &r);
	expect_ok(&r);
	get_str(&r.u.data, "last_name", s, sizeof(s));
	assert_string_equal(s, "Shah");
	th_reply_free(&r);

	th_body_init(&b, 1);
	th_body_str(&b, "phone", "+447700900002");
	ask("contact", ORG_A, &b, &r);
	th_expect_error(&r, "404");
}

/* Asking with one org for another org's rows finds nothing. */
static void test_cross_tenant(void **state)
{
	(void)state;
	th_body b;
	th_reply r;
	char b_call[37];
	sql_ids("SELECT id FROM calls WHERE org_id = '" ORG_B "' LIMIT 1", &b_call, 1);
	th_body_init(&b, 2);
	th_body_str(&b, "call_id", b_call);
	th_body_str(&b, "org_id", ORG_B); /* ignored: the subject decides */
	ask("call", ORG_A, &b, &r);
	th_expect_error(&r, "404");
	th_body_init(&b, 1);
	th_body_str(&b, "call_id", b_call);
	ask("call", ORG_B, &b, &r);
	expect_ok(&r);
	th_reply_free(&r);

	th_body_init(&b, 1);
	th_body_str(&b, "contact_id", "c0000000-0000-4000-8000-0000000000b1");
	ask("contact", ORG_A, &b, &r);
	th_expect_error(&r, "404");

	/* a cursor taken from B's list walks A's rows only */
	th_body_init(&b, 1);
	th_body_int(&b, "limit", 1);
	ask("calls", ORG_B, &b, &r);
	expect_ok(&r);
	const msgpack_object *nx = th_get_key(&r.u.data, "next");
	assert_int_equal(nx->type, MSGPACK_OBJECT_STR);
	char cur[VOX_QCURSOR_MAX];
	snprintf(cur, sizeof(cur), "%.*s", (int)nx->via.str.size, nx->via.str.ptr);
	th_reply_free(&r);
	th_body_init(&b, 2);
	th_body_int(&b, "limit", 100);
	th_body_str(&b, "before", cur);
	ask("calls", ORG_A, &b, &r);
	expect_ok(&r);
	const msgpack_object *items = items_of(&r);
	for (uint32_t i = 0; i < items->via.array.size; i++) {
		char o[40];
		get_str(&items->via.array.ptr[i], "org_id", o, sizeof(o));
		assert_string_equal(o, ORG_A);
	}
	th_reply_free(&r);

	/* wildcards and other tokens are not orgs */
	ask("wallet", "12345", NULL, &r);
	th_expect_error(&r, "400");
	ask("calls", "not-a-uuid", NULL, &r);
	th_expect_error(&r, "400");
}

/* ---- every refusal ------------------------------------------------------- */

typedef struct bad_case {
	const char *endpoint;
	const char *bytes; /* raw body */
	size_t len;
	const char *code;
	const char *reason; /* Vox-Error-Reason */
	const char *text;   /* a part of the error text */
} bad_case;

#define RAW(s) s, sizeof(s) - 1

static void test_refusals(void **state)
{
	(void)state;
	/* msgpack by hand: 0x81 = map of 1, 0xa5 "limit" ... */
	static const bad_case cases[] = {
		{"wallet", RAW("\x91\x01"), "400", "not_a_map", "msgpack map"},
		{"wallet", RAW("\xc1"), "400", "not_a_map", "msgpack map"},
		{"wallet", RAW("\x80\x80"), "400", "trailing_bytes", "bytes after"},
		{"transactions", RAW("\x81\xa5limit\x00"), "400", "out_of_range", "limit: must be"},
		{"transactions", RAW("\x81\xa5limit\x65"), "400", "out_of_range", "limit: must be"},
		{"transactions", RAW("\x81\xa5limit\xa2\x31\x30"), "400", "wrong_type", "limit: must be"},
		{"transactions", RAW("\x81\xa4type\xa5" "bonus"), "400", "bad_enum", "type: must be one of"},
		{"transactions", RAW("\x81\xa6" "before\xa4xxxx"), "400", "bad_cursor", "before:"},
		{"calls", RAW("\x81\xa6status\xa4" "done"), "400", "bad_enum", "status: must be one of"},
		{"calls", RAW("\x81\xa9" "direction\xa2in"), "400", "bad_enum", "direction: must be one of"},
		{"calls", RAW("\x81\xa5since\xa3now"), "400", "wrong_type", "since"},
		{"calls", RAW("\x81\xa5until\xd6\x05\x00\x00\x00\x00"), "400", "wrong_type", "until"},
		{"calls", RAW("\x82\xa5since\xcf\x00\x00\x01\xa3\x18\x5c\x50\x00"
			      "\xa5until\xcf\x00\x00\x01\xa0\xc4\x50\x6c\x00"),
		 "400", "out_of_range", "since: must be before until"},
		{"calls", RAW("\x81\xa5since\xce\x70\x00\x00\x00"), "400", "out_of_range",
		 "since: must be between"},
		{"call", RAW("\x80"), "400", "missing", "call_id: required"},
		{"call", RAW("\x81\xa7" "call_id\xa3" "abc"), "400", "bad_uuid", "call_id: must be a UUID"},
		{"contact", RAW("\x80"), "400", "missing", "contact_id or phone"},
		{"contact", RAW("\x81\xa5phone\xa8" "07700900"), "400", "bad_phone", "phone: must be E.164"},
		{"hot_leads", RAW("\x81\xa5limit\xcc\xc8"), "400", "out_of_range", "limit: must be"},
		{"transactions", RAW("\x81\x01\x02"), "400", "bad_key", "is not a string"},
		/* truncated: a map of 2 with one pair */
		{"transactions", RAW("\x82\xa5limit\x05"), "400", "truncated", ""},
	};
	for (size_t i = 0; i < VOX_NELEM(cases); i++) {
		char subject[128];
		th_reply r;
		snprintf(subject, sizeof(subject), "query.%s.%s", cases[i].endpoint, ORG_A);
		assert_int_equal(th_request_raw(F->nc, subject, cases[i].bytes, cases[i].len,
						NULL, NULL, &r),
				 NATS_OK);
		if (strcmp(r.code, cases[i].code) != 0 || !strstr(r.text, cases[i].text) ||
		    strcmp(r.reason, cases[i].reason) != 0)
			fprintf(stderr, "case %zu: got %s %s '%s'\n", i, r.code,
				r.reason, r.text);
		assert_non_null(strstr(r.text, cases[i].text));
		assert_string_equal(r.reason, cases[i].reason);
		th_expect_error(&r, cases[i].code);
	}

	/* a cursor of the calls list is not one of the ledger */
	th_body b;
	th_reply r;
	th_body_init(&b, 1);
	th_body_int(&b, "limit", 1);
	ask("calls", ORG_A, &b, &r);
	expect_ok(&r);
	const msgpack_object *nx = th_get_key(&r.u.data, "next");
	char cur[VOX_QCURSOR_MAX];
	snprintf(cur, sizeof(cur), "%.*s", (int)nx->via.str.size, nx->via.str.ptr);
	th_reply_free(&r);
	th_body_init(&b, 1);
	th_body_str(&b, "before", cur);
	ask("transactions", ORG_A, &b, &r);
	th_expect_error(&r, "400");

	/* over the size limit: 413 */
	static char big[VOX_QUERY_MAX_REQUEST + 100];
	memset(big, 0, sizeof(big));
	big[0] = (char)0x80;
	char subject[128];
	snprintf(subject, sizeof(subject), "query.wallet.%s", ORG_A);
	assert_int_equal(th_request_raw(F->nc, subject, big, sizeof(big), NULL, NULL, &r),
			 NATS_OK);
	th_expect_error(&r, "413");

	/* unknown orgs: 404 on every endpoint */
	static const char *const eps[] = {"wallet", "transactions", "calls", "hot_leads"};
	for (size_t i = 0; i < VOX_NELEM(eps); i++) {
		ask(eps[i], ORG_X, NULL, &r);
		th_expect_error(&r, "404");
	}
	th_body_init(&b, 1);
	th_body_str(&b, "call_id", "c0000000-0000-4000-8000-0000000000a1");
	ask("call", ORG_X, &b, &r);
	th_expect_error(&r, "404");

	/* nil means absent; unknown keys are ignored */
	th_body_init(&b, 3);
	th_body_key(&b, "limit");
	msgpack_pack_nil(&b.pk);
	th_body_key(&b, "before");
	msgpack_pack_nil(&b.pk);
	th_body_str(&b, "colour", "blue");
	ask("transactions", ORG_A, &b, &r);
	expect_ok(&r);
	assert_int_equal(items_of(&r)->via.array.size, 20);
	th_reply_free(&r);

	/* the refusals are counted as endpoint errors in $SRV.STATS */
	natsMsg *m = NULL;
	assert_int_equal(natsConnection_RequestString(&m, F->nc, "$SRV.STATS.vox-query", "", 2000),
			 NATS_OK);
	const char *ep = strstr(natsMsg_GetData(m), "\"name\":\"transactions\"");
	assert_non_null(ep);
	const char *ne = strstr(ep, "\"num_errors\":");
	assert_non_null(ne);
	assert_true(strtol(ne + strlen("\"num_errors\":"), NULL, 10) >= 8);
	natsMsg_Destroy(m);
}

/* Database down: 503, and answers again once it is back. */
static void test_database_down(void **state)
{
	(void)state;
	th_reply r;
	th_pg_stop();
	ask("wallet", ORG_A, NULL, &r);
	th_expect_error(&r, "503");
	ask("calls", ORG_A, NULL, &r);
	th_expect_error(&r, "503");
	th_pg_start();
	bool back = false;
	for (int i = 0; i < 100 && !back; i++) {
		ask("wallet", ORG_A, NULL, &r);
		back = r.code[0] == '\0';
		if (back)
			assert_int_equal(get_int(&r.u.data, "balance_pence"), 180);
		else
			assert_string_equal(r.code, "503");
		th_reply_free(&r);
		if (!back)
			th_sleep_ms(100);
	}
	assert_true(back);
	assert_true(th_count_in_log(F->log, "database unavailable") >= 1);
	assert_true(th_count_in_log(F->log, "database available again") >= 1);
}

/* ---- the tenant boundary, below the endpoints ---------------------------- */

/* A statement with no org filter at all, through the pool vox-query uses. */
static const vox_qstmt unfiltered[] = {
	{"t_all_calls", "SELECT org_id::text, count(*) FROM calls GROUP BY 1", 0},
	{"t_all_orgs", "SELECT id::text FROM organizations", 0},
	{"t_setting", "SELECT coalesce(current_setting('app.org_id', true), '')", 0},
};

static void test_unfiltered_query_sees_one_org(void **state)
{
	(void)state;
	vox_qdb db;
	PGresult *res[3];
	char err[256] = "";
	const vox_qcall calls[3] = {{0, NULL}, {1, NULL}, {2, NULL}};
	long long total = th_pg_intf(F->db, "SELECT count(*) FROM calls");
	long long in_a = th_pg_intf(F->db, "SELECT count(*) FROM calls WHERE org_id = '%s'", ORG_A);
	assert_true(total > in_a);

	/* one connection, so every request reuses the same session */
	vox_qdb_init(&db, F->query_dsn, 1, 1000, 2000, unfiltered,
		     VOX_NELEM(unfiltered));
	for (int round = 0; round < 4; round++) {
		const char *org = round % 2 ? ORG_B : ORG_A;
		assert_int_equal(vox_qdb_run(res, &db, org, calls, 3, err, sizeof(err)), VOX_OK);
		/* calls: one group, this org's */
		assert_int_equal(PQntuples(res[0]), 1);
		assert_int_equal(PQgetlength(res[0], 0, 0), 36);
		assert_memory_equal(PQgetvalue(res[0], 0, 0), org, 36);
		/* organizations: itself only */
		assert_int_equal(PQntuples(res[1]), 1);
		assert_memory_equal(PQgetvalue(res[1], 0, 0), org, 36);
		assert_memory_equal(PQgetvalue(res[2], 0, 0), org, 36);
		for (int i = 0; i < 3; i++)
			PQclear(res[i]);
	}
	/* no org set: nothing visible at all */
	assert_int_equal(vox_qdb_run(res, &db, "", calls, 3, err, sizeof(err)), VOX_OK);
	assert_int_equal(PQntuples(res[0]), 0);
	assert_int_equal(PQntuples(res[1]), 0);
	for (int i = 0; i < 3; i++)
		PQclear(res[i]);
	vox_qdb_release(&db);

	/* the owner sees everything, so the pool refuses to use it */
	vox_qdb_init(&db, F->dsn, 1, 1000, 2000, unfiltered,
		     VOX_NELEM(unfiltered));
	assert_int_equal(vox_qdb_run(res, &db, ORG_A, calls, 3, err, sizeof(err)),
			 VOX_E_FORBIDDEN);
	assert_non_null(strstr(err, "superuser"));
	assert_null(res[0]);
	vox_qdb_release(&db);
}

/* A role that owns the tables (not a superuser) is refused too, and
 * vox-query will not start with it. */
static void test_owner_role_is_refused(void **state)
{
	(void)state;
	vox_qdb db;
	char err[256] = "";
	PGconn *c = th_pg_connect(F->dsn);
	/* an owner that is not a superuser: own one policy table */
	PGresult *res = PQexec(c, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles"
				  " WHERE rolname = 'vox_test_owner') THEN CREATE ROLE"
				  " vox_test_owner LOGIN IN ROLE vox_reader; END IF; END $$");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	th_pg_ok(c, "CREATE TABLE t_owned (org_id uuid)");
	th_pg_ok(c, "ALTER TABLE t_owned ENABLE ROW LEVEL SECURITY");
	th_pg_ok(c, "ALTER TABLE t_owned OWNER TO vox_test_owner");
	PQfinish(c);

	char dsn[1024];
	/* log in as the owner, then act as vox_test_owner (options: SET ROLE) */
	snprintf(dsn, sizeof(dsn), "%s options='-c role=vox_test_owner'", F->dsn);
	vox_qdb_init(&db, dsn, 1, 1000, 2000, unfiltered,
		     VOX_NELEM(unfiltered));
	assert_int_equal(vox_qdb_probe(&db, err, sizeof(err)), VOX_E_FORBIDDEN);
	assert_non_null(strstr(err, "owns tables"));
	assert_non_null(strstr(err, "t_owned"));
	vox_qdb_release(&db);
	th_pg_ok(F->db, "DROP TABLE t_owned");

	/* vox-query as the owner of everything: exits, saying why */
	char env_dsn[600], log[600];
	snprintf(env_dsn, sizeof(env_dsn), "VOX_PG_DSN=%s", F->dsn);
	snprintf(log, sizeof(log), "%s/vox-query-owner.log", th_env("VOX_TEST_TMP"));
	pid_t pid = spawn_query(F, env_dsn, log);
	for (int i = 0; i < 100 && th_alive(pid); i++)
		th_sleep_ms(100);
	bool exited = !th_alive(pid);
	if (!exited)
		th_stop(pid, SIGKILL, 2000);
	assert_true(exited);
	assert_true(th_count_in_log(log, "refusing to serve") >= 1);
}

/* VOX_PG_READ_DSN: reads go there, whatever VOX_PG_DSN says. */
static void test_read_replica_dsn(void **state)
{
	fixture *f = *state;
	char env_read[800], env_bad[200], log[600];
	th_reply r;
	th_stop(f->actor, SIGTERM, 10000);
	f->actor = 0;
	/* the primary DSN points at nothing: only the replica DSN can answer */
	snprintf(env_bad, sizeof(env_bad),
		 "VOX_PG_DSN=host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=1");
	snprintf(env_read, sizeof(env_read), "VOX_PG_READ_DSN=%s", f->query_dsn);
	snprintf(log, sizeof(log), "%s/vox-query-replica.log", th_env("VOX_TEST_TMP"));
	char *env[] = {f->env_url, env_bad, env_read, NULL};
	pid_t pid = th_spawn("vox-query", env, log);
	f->actor = pid;
	wait_ready(f);
	ask("wallet", ORG_A, NULL, &r);
	expect_ok(&r);
	assert_int_equal(get_int(&r.u.data, "balance_pence"), 180);
	th_reply_free(&r);
	assert_true(th_count_in_log(log, "replica=yes") >= 1);
	th_stop(pid, SIGTERM, 10000);
	f->actor = spawn_query(f, f->env_dsn, f->log);
	wait_ready(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wallet),
		cmocka_unit_test(test_transactions_walk),
		cmocka_unit_test(test_transactions_filter),
		cmocka_unit_test(test_calls_walk_while_inserting),
		cmocka_unit_test(test_calls_filters),
		cmocka_unit_test(test_calls_large_rows),
		cmocka_unit_test(test_hot_leads),
		cmocka_unit_test(test_contact),
		cmocka_unit_test(test_cross_tenant),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_unfiltered_query_sees_one_org),
		cmocka_unit_test(test_owner_role_is_refused),
		cmocka_unit_test(test_read_replica_dsn),
		cmocka_unit_test(test_database_down),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
