/*
 * Integration: faults of the world are not bad input. vox-calls,
 * vox-billing and vox-leads run against real servers, connected as a role
 * of their own (not a superuser, so that a GRANT can be taken away). Each
 * test injects one fault the way an operator meets it (a read-only
 * database, a statement or lock timeout, a revoked GRANT, a renamed column
 * or table, backends terminated again and again), publishes a workload of
 * calls, top-ups, refunds and leads while it lasts, proves the fault was
 * met (the actors' $SRV.STATS count it and name its SQLSTATE), removes
 * it, and then checks that nothing was dead-lettered, that every charge,
 * top-up, refund and lead was applied exactly once, and that the money
 * invariants hold.
 *
 * Further tests: a constraint every message breaks makes the batch wait
 * (no dead letter) until it is dropped; a constraint one message breaks
 * dead-letters that one alone, while a slow isolation round keeps
 * JetStream from redelivering the rest (progress); a refund that waited
 * through an outage keeps its whole deferral window; an outbox row whose
 * mark failed is not published twice after the duplicate window; a finite
 * VOX_MAX_DELIVER is refused at start.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "invariants.h"
#include "vox/client.h"

#define NORGS 3
#define CALLS_PER_ORG 4
#define RATE 70
#define OPENING 100000
#define TOPUP 5000
#define REFUND 1000

enum { A_CALLS, A_BILLING, A_LEADS, NACTORS };
static const char *const actor_bin[NACTORS] = {"vox-calls", "vox-billing", "vox-leads"};
/* every durable consumer of the three actors */
static const char *const durables[] = {"vox-calls", "vox-billing-calls",
				       "vox-billing-payments", "vox-leads"};

typedef struct fixture {
	th_nats nats;
	char dsn[512];      /* the test's own (owner) connection */
	char role[64];
	char actor_dsn[768]; /* the actors' role */
	char dbname[64];
	pid_t actors[NACTORS];
	char logs[NACTORS][600];
	natsConnection *nc;
	jsCtx *js;
	PGconn *db;
	char orgs[NORGS][37];
	int run;
	int round; /* workload rounds published so far */
} fixture;

static int run_counter;

/* ---- fixture ------------------------------------------------------------ */

static void make_role(fixture *f)
{
	char pw[40];
	unsigned char rnd[12];
	FILE *u = fopen("/dev/urandom", "rb");
	assert_non_null(u);
	assert_int_equal(fread(rnd, 1, sizeof(rnd), u), sizeof(rnd));
	fclose(u);
	/* letters only: no quoting needed in the DSN or the SQL */
	for (size_t i = 0; i < sizeof(rnd); i++) {
		pw[2 * i] = (char)('a' + (rnd[i] & 15));
		pw[2 * i + 1] = (char)('a' + (rnd[i] >> 4));
	}
	pw[2 * sizeof(rnd)] = '\0';
	th_secret(pw);
	snprintf(f->role, sizeof(f->role), "vox_faults_%ld_%d", (long)getpid(), f->run);
	/* BYPASSRLS: the tables' row-level security binds readers only */
	th_pg_okf(f->db, "CREATE ROLE %s LOGIN NOSUPERUSER BYPASSRLS PASSWORD '%s'",
		  f->role, pw);
	th_pg_okf(f->db, "GRANT CONNECT ON DATABASE %s TO %s", f->dbname, f->role);
	th_pg_okf(f->db, "GRANT USAGE ON SCHEMA public TO %s", f->role);
	th_pg_okf(f->db, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %s",
		  f->role);
	th_pg_okf(f->db, "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %s", f->role);
	th_pg_okf(f->db, "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO %s", f->role);
	snprintf(f->actor_dsn, sizeof(f->actor_dsn), "%s user=%s password=%s",
		 f->dsn, f->role, pw);
}

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	f->run = run_counter++;
	th_nats_start(&f->nats);
	th_pg_migrated_db("faults", f->dsn, sizeof(f->dsn));
	const char *db = strstr(f->dsn, "dbname=");
	assert_non_null(db);
	db = strstr(db + 1, "dbname=") ? strstr(db + 1, "dbname=") : db;
	snprintf(f->dbname, sizeof(f->dbname), "%s", db + 7);
	f->db = th_pg_connect(f->dsn);
	th_pg_ok(f->db, "CREATE TABLE it_opening (org_id uuid PRIMARY KEY, opening int NOT NULL)");
	make_role(f);
	for (int i = 0; i < NORGS; i++) {
		snprintf(f->orgs[i], sizeof(f->orgs[i]), "%08x-0000-4000-8000-%012x",
			 0xfa000000u + (unsigned)f->run, (unsigned)i);
		th_pg_okf(f->db,
			  "INSERT INTO organizations (id, name, email, wallet_balance_pence)"
			  " VALUES ('%s', 'clinic %d', 'faults%d@example.com', %d)",
			  f->orgs[i], i, i, OPENING);
		th_pg_okf(f->db, "INSERT INTO it_opening VALUES ('%s', %d)", f->orgs[i], OPENING);
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	th_js_connect(f->nats.url, &jo, &f->nc, &f->js);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	for (int i = 0; i < NACTORS; i++)
		if (f->actors[i] > 0)
			th_stop(f->actors[i], SIGKILL, 5000);
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	PQfinish(f->db);
	free(f);
	return 0;
}

/* Start one actor with the common settings and up to two extra "K=V". */
static void start_actor(fixture *f, int a, const char *x1, const char *x2)
{
	char e_url[160], e_dsn[800], e_x1[200] = "", e_x2[200] = "";
	char e_fetch[] = "VOX_FETCH_WAIT_MS=100";
	char e_retry[] = "VOX_RETRY_MAX_MS=1000";
	char e_age[] = "VOX_OUTBOX_AGE_MS=0";
	char e_outbox[] = "VOX_OUTBOX_INTERVAL_MS=200";
	char *env[10];
	int k = 0;
	snprintf(e_url, sizeof(e_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(e_dsn, sizeof(e_dsn), "VOX_PG_DSN=%s", f->actor_dsn);
	env[k++] = e_url;
	env[k++] = e_dsn;
	env[k++] = e_fetch;
	env[k++] = e_retry;
	env[k++] = e_age;
	env[k++] = e_outbox;
	if (x1) {
		snprintf(e_x1, sizeof(e_x1), "%s", x1);
		env[k++] = e_x1;
	}
	if (x2) {
		snprintf(e_x2, sizeof(e_x2), "%s", x2);
		env[k++] = e_x2;
	}
	env[k] = NULL;
	snprintf(f->logs[a], sizeof(f->logs[a]), "%s/faults-%ld-%d-%s.log",
		 th_env("VOX_TEST_TMP"), (long)getpid(), f->run, actor_bin[a]);
	f->actors[a] = th_spawn(actor_bin[a], env, f->logs[a]);
	th_wait_started(&f->actors[a], actor_bin[a], f->logs[a], 300);
}

static void start_all(fixture *f, const char *x1, const char *x2)
{
	for (int a = 0; a < NACTORS; a++)
		start_actor(f, a, x1, x2);
}

/* End the actors' database sessions: they reconnect, and a new session
 * takes the database's and the role's new settings. */
static void terminate_sessions(fixture *f)
{
	th_pg_intf(f->db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
		   " WHERE usename = '%s'", f->role);
}

/* ---- the workload ------------------------------------------------------- */

typedef struct evbuf {
	vox_event ev;
	char eid[96];
	char k1[96];
	char k2[96];
} evbuf;

static void publish(fixture *f, const vox_event *ev)
{
	vox_pub_ack ack;
	vox_error err;
	vox_status st = vox_publish(&ack, f->js, ev, 10000, &err);
	if (st != VOX_OK)
		fprintf(stderr, "publish: %s %s\n", vox_status_str(st), err.message);
	assert_int_equal(st, VOX_OK);
	assert_false(ack.duplicate);
}

static void call_id_of(const fixture *f, int round, int org, int i, char out[37])
{
	snprintf(out, 37, "%08x-%04x-4000-8000-%012x", 0xca000000u + (unsigned)f->run,
		 (unsigned)round, (unsigned)(org * 100 + i));
}

static int64_t duration_of(int org, int i)
{
	return 30 + 47 * org + 61 * i;
}

static void phone_of(int round, int org, int i, char out[20])
{
	/* +4420 RR OO 1III: 14 characters for the small numbers used here */
	snprintf(out, 20, "+4420%02u%02u%04u", (unsigned)round % 100,
		 (unsigned)org % 100, (unsigned)(1000 + i) % 10000);
}

/* One round: per org, calls (started and ended), a top-up, a refund of
 * part of it, and a hot lead per call. */
static void publish_round(fixture *f)
{
	int r = f->round++;
	for (int o = 0; o < NORGS; o++) {
		for (int i = 0; i < CALLS_PER_ORG; i++) {
			evbuf b;
			char phone[20];
			memset(&b, 0, sizeof(b));
			phone_of(r, o, i, phone);
			b.ev.kind = VOX_CALL_STARTED;
			vox_call_started *s = &b.ev.u.call_started;
			snprintf(b.eid, sizeof(b.eid), "start-%d-%d-%d-%d", f->run, r, o, i);
			s->event_id = (vox_str){b.eid, strlen(b.eid)};
			snprintf(s->org_id.s, sizeof(s->org_id.s), "%s", f->orgs[o]);
			call_id_of(f, r, o, i, s->call_id.s);
			s->direction = VOX_DIR_INBOUND;
			snprintf(b.k1, sizeof(b.k1), "%s", phone);
			s->from_number = (vox_str){b.k1, strlen(b.k1)};
			s->to_number = (vox_str){"+442000000000", 13};
			s->started_at = (vox_time){1795000000 + r * 1000 + i, 0, true};
			publish(f, &b.ev);

			memset(&b, 0, sizeof(b));
			b.ev.kind = VOX_CALL_ENDED;
			vox_call_ended *e = &b.ev.u.call_ended;
			snprintf(b.eid, sizeof(b.eid), "end-%d-%d-%d-%d", f->run, r, o, i);
			e->event_id = (vox_str){b.eid, strlen(b.eid)};
			snprintf(e->org_id.s, sizeof(e->org_id.s), "%s", f->orgs[o]);
			call_id_of(f, r, o, i, e->call_id.s);
			e->duration_seconds = duration_of(o, i);
			e->ended_at = (vox_time){1795000000 + r * 1000 + i + e->duration_seconds, 0, true};
			e->status = VOX_CALL_COMPLETED;
			e->summary = (vox_str){"asked for an appointment", 24};
			publish(f, &b.ev);

			memset(&b, 0, sizeof(b));
			b.ev.kind = VOX_LEAD_SCORED;
			vox_lead_scored *l = &b.ev.u.lead_scored;
			snprintf(b.eid, sizeof(b.eid), "lead-%d-%d-%d-%d", f->run, r, o, i);
			l->event_id = (vox_str){b.eid, strlen(b.eid)};
			snprintf(l->org_id.s, sizeof(l->org_id.s), "%s", f->orgs[o]);
			snprintf(b.k1, sizeof(b.k1), "%s", phone);
			l->phone = (vox_str){b.k1, strlen(b.k1)};
			call_id_of(f, r, o, i, l->call_id.s);
			l->lead_score = 85;
			l->scored_at = (vox_time){1795000500 + r * 1000 + i, 0, true};
			publish(f, &b.ev);
		}
		evbuf b;
		memset(&b, 0, sizeof(b));
		b.ev.kind = VOX_PAYMENT_SUCCEEDED;
		vox_payment_succeeded *p = &b.ev.u.payment_succeeded;
		snprintf(b.eid, sizeof(b.eid), "pay-%d-%d-%d", f->run, r, o);
		snprintf(b.k1, sizeof(b.k1), "pi_%d_%d_%d", f->run, r, o);
		p->event_id = (vox_str){b.eid, strlen(b.eid)};
		snprintf(p->org_id.s, sizeof(p->org_id.s), "%s", f->orgs[o]);
		p->stripe_payment_intent_id = (vox_str){b.k1, strlen(b.k1)};
		p->amount_pence = TOPUP;
		p->occurred_at = (vox_time){1795000000 + r * 1000, 0, true};
		publish(f, &b.ev);

		memset(&b, 0, sizeof(b));
		b.ev.kind = VOX_PAYMENT_REFUNDED;
		vox_payment_refunded *x = &b.ev.u.payment_refunded;
		snprintf(b.eid, sizeof(b.eid), "ref-%d-%d-%d", f->run, r, o);
		snprintf(b.k1, sizeof(b.k1), "re_%d_%d_%d", f->run, r, o);
		snprintf(b.k2, sizeof(b.k2), "pi_%d_%d_%d", f->run, r, o);
		x->event_id = (vox_str){b.eid, strlen(b.eid)};
		snprintf(x->org_id.s, sizeof(x->org_id.s), "%s", f->orgs[o]);
		x->stripe_refund_id = (vox_str){b.k1, strlen(b.k1)};
		x->stripe_payment_intent_id = (vox_str){b.k2, strlen(b.k2)};
		x->amount_pence = REFUND;
		x->occurred_at = (vox_time){1795000100 + r * 1000, 0, true};
		publish(f, &b.ev);
	}
}

/* The balance an org must have once every published round is applied. */
static long long expected_balance(const fixture *f, int o)
{
	long long b = OPENING;
	for (int r = 0; r < f->round; r++) {
		b += TOPUP - REFUND;
		for (int i = 0; i < CALLS_PER_ORG; i++)
			b -= (duration_of(o, i) * RATE + 59) / 60;
	}
	return b;
}

/* ---- waiting and checking --------------------------------------------------- */

static long long count_sql(fixture *f, const char *sql)
{
	return th_pg_int(f->db, sql);
}

/* The first n durables have nothing undelivered or unacked, seen twice. */
static void wait_drained_n(fixture *f, size_t ndurables, long ms)
{
	int quiet = 0;
	long long left = -1;
	for (long waited = 0; waited < ms && quiet < 2; waited += 100) {
		left = 0;
		for (size_t i = 0; i < ndurables; i++) {
			long long n = th_consumer_outstanding(f->js, "EVENTS", durables[i]);
			left += n < 0 ? 1000000 : n;
		}
		quiet = left == 0 ? quiet + 1 : 0;
		th_sleep_ms(100);
	}
	if (quiet < 2)
		fprintf(stderr, "consumers not drained: %lld outstanding\n", left);
	assert_true(quiet >= 2);
}

static void wait_drained(fixture *f, long ms)
{
	wait_drained_n(f, VOX_NELEM(durables), ms);
}

/* The metadata of an actor's $SRV.STATS answer (JSON text), or "". */
static void stats_of(fixture *f, int a, char *out, size_t len)
{
	natsMsg *m = NULL;
	char subject[64];
	out[0] = '\0';
	snprintf(subject, sizeof(subject), "$SRV.STATS.%s", actor_bin[a]);
	if (natsConnection_RequestString(&m, f->nc, subject, "", 3000) == NATS_OK) {
		snprintf(out, len, "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
		natsMsg_Destroy(m);
	}
}

static long long stat_int(const char *json, const char *key)
{
	char needle[96];
	snprintf(needle, sizeof(needle), "\"%s\":\"", key);
	const char *p = strstr(json, needle);
	return p ? strtoll(p + strlen(needle), NULL, 10) : -1;
}

/* The fault was met by actor a: its faults count grew and, when sqlstate
 * is given, the last one it saw has that SQLSTATE. Waits up to ms. */
static void wait_fault_seen(fixture *f, int a, const char *sqlstate, long ms)
{
	char json[8192], needle[96];
	snprintf(needle, sizeof(needle), "\"consume.last_sqlstate\":\"%s\"",
		 sqlstate ? sqlstate : "");
	for (long waited = 0; waited < ms; waited += 200) {
		stats_of(f, a, json, sizeof(json));
		if (stat_int(json, "consume.faults") > 0 &&
		    (!sqlstate || strstr(json, needle)))
			return;
		th_sleep_ms(200);
	}
	fprintf(stderr, "%s never met the fault %s: %s\n", actor_bin[a],
		sqlstate ? sqlstate : "", json);
	fail();
}

static void assert_no_dead_letters(fixture *f)
{
	long long n = th_stream_count(f->js, "DLQ");
	if (n != 0)
		fprintf(stderr, "DLQ holds %lld messages\n", n);
	assert_int_equal(n, 0);
}

/* Everything published is applied exactly once, nothing dead-lettered. */
static void check_all_applied(fixture *f)
{
	long long calls = (long long)f->round * NORGS * CALLS_PER_ORG;
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM call_charges");
	assert_int_equal(th_wait_int(f->dsn, sql, calls, 60000), calls);
	wait_drained(f, 60000);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM calls WHERE status = 'completed'"
				   " AND summary IS NOT NULL"), calls);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM call_charges"), calls);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM credit_transactions WHERE type = 'deduction'"),
			 calls);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM credit_transactions WHERE type = 'topup'"
				   " AND stripe_payment_intent_id IS NOT NULL"),
			 (long long)f->round * NORGS);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM credit_transactions WHERE type = 'refund'"),
			 (long long)f->round * NORGS);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM hot_lead_alerts"), calls);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM contacts WHERE lead_score = 85"), calls);
	for (int o = 0; o < NORGS; o++)
		assert_int_equal(th_pg_intf(f->db, "SELECT wallet_balance_pence FROM organizations"
					    " WHERE id = '%s'", f->orgs[o]),
				 expected_balance(f, o));
	/* every hot lead alert published once */
	assert_int_equal(th_wait_int(f->dsn, "SELECT count(*) FROM vox_outbox WHERE published_at IS NULL",
				     0, 20000), 0);
	assert_int_equal(th_stream_count(f->js, "ALERTS"), calls);
	assert_no_dead_letters(f);
	int bad = th_invariants_broken(f->db, stderr);
	assert_int_equal(bad, 0);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM vox_deferrals"), 0);
	for (int a = 0; a < NACTORS; a++)
		assert_true(th_alive(f->actors[a]));
}

/* The warm-up round: the actors are connected and prepared. */
static void warm_up(fixture *f)
{
	start_all(f, NULL, NULL);
	publish_round(f);
	check_all_applied(f);
}

/* ---- one test per fault ------------------------------------------------------ */

static void test_read_only_database(void **state)
{
	fixture *f = *state;
	warm_up(f);
	th_pg_okf(f->db, "ALTER DATABASE %s SET default_transaction_read_only = on", f->dbname);
	terminate_sessions(f);
	long long before = count_sql(f, "SELECT count(*) FROM call_charges");
	publish_round(f);
	wait_fault_seen(f, A_CALLS, "25006", 20000);
	wait_fault_seen(f, A_BILLING, "25006", 20000);
	wait_fault_seen(f, A_LEADS, "25006", 20000);
	th_sleep_ms(1500);
	/* nothing applied, nothing dead-lettered while it lasts */
	assert_int_equal(count_sql(f, "SELECT count(*) FROM call_charges"), before);
	assert_no_dead_letters(f);
	th_pg_okf(f->db, "ALTER DATABASE %s RESET default_transaction_read_only", f->dbname);
	terminate_sessions(f);
	check_all_applied(f);
	/* the outage was logged with its SQLSTATE once (after the line of the
	 * dropped connection, if a batch was in flight), and its end once */
	long long waits = th_count_in_log(f->logs[A_CALLS], "database fault, messages wait");
	assert_true(waits >= 1 && waits <= 2);
	assert_int_equal(th_count_in_log(f->logs[A_CALLS], "sqlstate=25006"), 1);
	assert_int_equal(th_count_in_log(f->logs[A_CALLS], "database fault over"), 1);
}

static void test_statement_timeout(void **state)
{
	fixture *f = *state;
	warm_up(f);
	th_pg_okf(f->db, "ALTER DATABASE %s SET statement_timeout = '1ms'", f->dbname);
	/* a slow statement in every actor's path, so that 1 ms always fails */
	th_pg_ok(f->db, "CREATE FUNCTION it_slow() RETURNS trigger LANGUAGE plpgsql AS"
			" $$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$");
	th_pg_ok(f->db, "CREATE TRIGGER it_slow_calls BEFORE INSERT OR UPDATE ON calls"
			" FOR EACH ROW EXECUTE FUNCTION it_slow()");
	th_pg_ok(f->db, "CREATE TRIGGER it_slow_ledger BEFORE INSERT ON credit_transactions"
			" FOR EACH ROW EXECUTE FUNCTION it_slow()");
	th_pg_ok(f->db, "CREATE TRIGGER it_slow_contacts BEFORE UPDATE ON contacts"
			" FOR EACH ROW EXECUTE FUNCTION it_slow()");
	terminate_sessions(f);
	publish_round(f);
	wait_fault_seen(f, A_CALLS, "57014", 20000);
	wait_fault_seen(f, A_BILLING, "57014", 20000);
	wait_fault_seen(f, A_LEADS, "57014", 20000);
	th_sleep_ms(1000);
	assert_no_dead_letters(f);
	th_pg_okf(f->db, "ALTER DATABASE %s RESET statement_timeout", f->dbname);
	terminate_sessions(f);
	check_all_applied(f);
}

static void test_lock_timeout(void **state)
{
	fixture *f = *state;
	warm_up(f);
	th_pg_okf(f->db, "ALTER DATABASE %s SET lock_timeout = '50ms'", f->dbname);
	terminate_sessions(f);
	/* an operator's long transaction holds every org row */
	PGconn *holder = th_pg_connect(f->dsn);
	th_pg_ok(holder, "BEGIN");
	PQclear(th_pg_query(holder, "SELECT id FROM organizations FOR UPDATE"));
	long long before = count_sql(f, "SELECT count(*) FROM call_charges");
	publish_round(f);
	wait_fault_seen(f, A_BILLING, "55P03", 20000);
	wait_fault_seen(f, A_CALLS, "55P03", 20000);
	th_sleep_ms(1000);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM call_charges"), before);
	assert_no_dead_letters(f);
	th_pg_ok(holder, "COMMIT");
	PQfinish(holder);
	th_pg_okf(f->db, "ALTER DATABASE %s RESET lock_timeout", f->dbname);
	check_all_applied(f);
}

static void test_revoked_grant(void **state)
{
	fixture *f = *state;
	warm_up(f);
	th_pg_okf(f->db, "REVOKE INSERT ON credit_transactions, hot_lead_alerts, calls FROM %s",
		  f->role);
	long long before = count_sql(f, "SELECT count(*) FROM call_charges");
	publish_round(f);
	wait_fault_seen(f, A_CALLS, "42501", 20000);
	wait_fault_seen(f, A_BILLING, "42501", 20000);
	wait_fault_seen(f, A_LEADS, "42501", 20000);
	th_sleep_ms(1000);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM call_charges"), before);
	assert_no_dead_letters(f);
	th_pg_okf(f->db, "GRANT INSERT ON credit_transactions, hot_lead_alerts, calls TO %s",
		  f->role);
	check_all_applied(f);
}

/* Actors ahead of a migration: a column and a table they use are not
 * there (yet, or any more). */
static void test_renamed_column_and_table(void **state)
{
	fixture *f = *state;
	warm_up(f);
	th_pg_ok(f->db, "ALTER TABLE calls RENAME COLUMN summary TO summary_old");
	th_pg_ok(f->db, "ALTER TABLE call_charges RENAME TO call_charges_old");
	th_pg_ok(f->db, "ALTER TABLE contacts RENAME COLUMN lead_status TO lead_status_old");
	publish_round(f);
	wait_fault_seen(f, A_CALLS, "42703", 20000);
	wait_fault_seen(f, A_BILLING, "42P01", 20000);
	wait_fault_seen(f, A_LEADS, "42703", 20000);
	th_sleep_ms(1000);
	assert_no_dead_letters(f);
	th_pg_ok(f->db, "ALTER TABLE calls RENAME COLUMN summary_old TO summary");
	th_pg_ok(f->db, "ALTER TABLE call_charges_old RENAME TO call_charges");
	th_pg_ok(f->db, "ALTER TABLE contacts RENAME COLUMN lead_status_old TO lead_status");
	check_all_applied(f);
}

/* Every backend of the actors terminated again and again while they work. */
static void test_terminated_backends(void **state)
{
	fixture *f = *state;
	warm_up(f);
	publish_round(f);
	publish_round(f);
	for (int i = 0; i < 30; i++) {
		terminate_sessions(f);
		th_sleep_ms(100);
	}
	assert_no_dead_letters(f);
	check_all_applied(f);
}

/* ---- data errors: every message, or one ----------------------------------------- */

/* A constraint every message breaks (added by hand, or by a schema that
 * moved): not the messages' fault. They wait, the loop stops isolating
 * them one by one, and they are applied once it is dropped. */
static void test_a_constraint_every_message_breaks_waits(void **state)
{
	fixture *f = *state;
	warm_up(f);
	th_pg_ok(f->db, "ALTER TABLE credit_transactions ADD CONSTRAINT it_no_ledger"
			" CHECK (amount_pence = 0) NOT VALID");
	long long before = count_sql(f, "SELECT count(*) FROM call_charges");
	publish_round(f);
	wait_fault_seen(f, A_BILLING, "23514", 20000);
	th_sleep_ms(4000);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM call_charges"), before);
	assert_no_dead_letters(f);
	/* the breaker: far fewer isolation rounds than deliveries */
	char json[8192];
	stats_of(f, A_BILLING, json, sizeof(json));
	long long isolated = stat_int(json, "consume.isolated");
	long long naked = stat_int(json, "consume.naked");
	fprintf(stderr, "billing during the fault: isolated %lld, naked %lld\n",
		isolated, naked);
	assert_true(isolated >= 1);
	assert_true(isolated * 2 < naked);
	th_pg_ok(f->db, "ALTER TABLE credit_transactions DROP CONSTRAINT it_no_ledger");
	check_all_applied(f);
}

/* A constraint one message breaks: that message alone is dead-lettered,
 * the rest of its batch applied. The isolation round is slow (a trigger),
 * longer than AckWait, and reports progress so that JetStream redelivers
 * nothing meanwhile. */
static void test_one_poison_message_and_progress(void **state)
{
	fixture *f = *state;
	start_actor(f, A_CALLS, "VOX_ACK_WAIT_S=2", NULL);
	th_pg_ok(f->db, "ALTER TABLE calls ADD CONSTRAINT it_poison"
			" CHECK (caller_name IS DISTINCT FROM 'poison')");
	th_pg_ok(f->db, "CREATE FUNCTION it_slow() RETURNS trigger LANGUAGE plpgsql AS"
			" $$ BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$");
	th_pg_ok(f->db, "CREATE TRIGGER it_slow_calls BEFORE INSERT ON calls"
			" FOR EACH ROW EXECUTE FUNCTION it_slow()");
	/* stop the consumer's fetches from seeing the events one by one:
	 * publish them all while the actor is stopped */
	th_stop(f->actors[A_CALLS], SIGTERM, 20000);
	f->actors[A_CALLS] = 0;
	const int n = 150;
	char poison_id[37] = "";
	for (int i = 0; i < n; i++) {
		evbuf b;
		memset(&b, 0, sizeof(b));
		b.ev.kind = VOX_CALL_STARTED;
		vox_call_started *s = &b.ev.u.call_started;
		snprintf(b.eid, sizeof(b.eid), "p-%d-%d", f->run, i);
		s->event_id = (vox_str){b.eid, strlen(b.eid)};
		snprintf(s->org_id.s, sizeof(s->org_id.s), "%s", f->orgs[0]);
		snprintf(s->call_id.s, sizeof(s->call_id.s), "%08x-0000-4000-8000-%012x",
			 0xbb000000u + (unsigned)f->run, (unsigned)i);
		s->direction = VOX_DIR_OUTBOUND;
		s->from_number = (vox_str){"+442000000000", 13};
		snprintf(b.k1, sizeof(b.k1), "+4479%08d", i);
		s->to_number = (vox_str){b.k1, strlen(b.k1)};
		s->started_at = (vox_time){1795000000 + i, 0, true};
		if (i == n / 2) {
			s->caller_name = (vox_str){"poison", 6};
			snprintf(poison_id, sizeof(poison_id), "%s", s->call_id.s);
		}
		publish(f, &b.ev);
	}
	start_actor(f, A_CALLS, "VOX_ACK_WAIT_S=2", NULL);
	assert_int_equal(th_wait_int(f->dsn, "SELECT count(*) FROM calls", n - 1, 60000), n - 1);
	long long dl = -1;
	for (int i = 0; i < 100 && dl < 1; i++) {
		dl = th_stream_count(f->js, "DLQ");
		th_sleep_ms(100);
	}
	assert_int_equal(dl, 1);
	natsMsg *m = NULL;
	assert_int_equal(js_GetMsg(&m, f->js, "DLQ", 1, NULL, NULL), NATS_OK);
	const char *code = NULL, *reason = NULL;
	assert_int_equal(natsMsgHeader_Get(m, "Vox-Error-Code", &code), NATS_OK);
	assert_int_equal(natsMsgHeader_Get(m, "Vox-Error-Reason", &reason), NATS_OK);
	assert_string_equal(code, "400");
	assert_string_equal(reason, "integrity_violation");
	natsMsg_Destroy(m);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM calls WHERE id = '%s'", poison_id), 0);
	/* the round took longer than AckWait, yet nothing was redelivered */
	char json[8192];
	stats_of(f, A_CALLS, json, sizeof(json));
	fprintf(stderr, "vox-calls: %s\n", json);
	assert_true(stat_int(json, "consume.isolated") >= 1);
	assert_int_equal(stat_int(json, "consume.redelivered"), 0);
	wait_drained_n(f, 1, 30000); /* vox-calls only */
}

/* ---- deferrals, the outbox, MaxDeliver ---------------------------------------- */

/* A refund that arrives before its payment, then waits through an outage
 * (delivered many times meanwhile), still gets every one of its
 * deferrals afterwards, and is applied when the payment comes. */
static void test_deferral_window_survives_an_outage(void **state)
{
	fixture *f = *state;
	start_actor(f, A_BILLING, "VOX_DEFER_DELIVERIES=4", NULL);
	th_pg_okf(f->db, "ALTER DATABASE %s SET default_transaction_read_only = on", f->dbname);
	terminate_sessions(f);
	evbuf b;
	memset(&b, 0, sizeof(b));
	b.ev.kind = VOX_PAYMENT_REFUNDED;
	vox_payment_refunded *x = &b.ev.u.payment_refunded;
	snprintf(b.eid, sizeof(b.eid), "early-refund-%d", f->run);
	snprintf(b.k1, sizeof(b.k1), "re_early_%d", f->run);
	snprintf(b.k2, sizeof(b.k2), "pi_late_%d", f->run);
	x->event_id = (vox_str){b.eid, strlen(b.eid)};
	snprintf(x->org_id.s, sizeof(x->org_id.s), "%s", f->orgs[0]);
	x->stripe_refund_id = (vox_str){b.k1, strlen(b.k1)};
	x->stripe_payment_intent_id = (vox_str){b.k2, strlen(b.k2)};
	x->amount_pence = 700;
	x->occurred_at = (vox_time){1795000100, 0, true};
	publish(f, &b.ev);
	wait_fault_seen(f, A_BILLING, "25006", 20000);
	/* the outage lasts: the refund is delivered more often than its
	 * deferral limit, naked every time for the database's fault */
	jsConsumerInfo *ci = NULL;
	long long delivered = 0;
	for (int i = 0; i < 150 && delivered < 7; i++) {
		th_sleep_ms(100);
		if (js_GetConsumerInfo(&ci, f->js, "EVENTS", "vox-billing-payments",
				       NULL, NULL) == NATS_OK) {
			delivered = (long long)ci->NumRedelivered + (long long)ci->Delivered.Consumer;
			jsConsumerInfo_Destroy(ci);
			ci = NULL;
		}
	}
	assert_true(delivered >= 7);
	assert_no_dead_letters(f);
	th_pg_okf(f->db, "ALTER DATABASE %s RESET default_transaction_read_only", f->dbname);
	terminate_sessions(f);
	/* now deferred for real, once: the count starts at 1 */
	assert_int_equal(th_wait_int(f->dsn, "SELECT coalesce(max(deferrals), 0) FROM vox_deferrals",
				     1, 20000), 1);
	assert_no_dead_letters(f);
	memset(&b, 0, sizeof(b));
	b.ev.kind = VOX_PAYMENT_SUCCEEDED;
	vox_payment_succeeded *p = &b.ev.u.payment_succeeded;
	snprintf(b.eid, sizeof(b.eid), "late-pay-%d", f->run);
	snprintf(b.k1, sizeof(b.k1), "pi_late_%d", f->run);
	p->event_id = (vox_str){b.eid, strlen(b.eid)};
	snprintf(p->org_id.s, sizeof(p->org_id.s), "%s", f->orgs[0]);
	p->stripe_payment_intent_id = (vox_str){b.k1, strlen(b.k1)};
	p->amount_pence = 2000;
	p->occurred_at = (vox_time){1795000000, 0, true};
	publish(f, &b.ev);
	assert_int_equal(th_wait_int(f->dsn, "SELECT count(*) FROM credit_transactions"
				     " WHERE type = 'refund'", 1, 20000), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT wallet_balance_pence FROM organizations"
				    " WHERE id = '%s'", f->orgs[0]), OPENING + 2000 - 700);
	assert_int_equal(th_wait_int(f->dsn, "SELECT count(*) FROM vox_deferrals", 0, 10000), 0);
	assert_no_dead_letters(f);
	assert_int_equal(th_invariants_broken(f->db, stderr), 0);
}

/* The outbox: JetStream stored an alert but the mark failed (the database
 * refused the UPDATE). Once the duplicate window has passed, the row must
 * be marked, not published a second time. */
static void test_outbox_row_stored_once_when_its_mark_fails(void **state)
{
	fixture *f = *state;
	char dup[] = "VOX_DUPLICATE_WINDOW_S=1";
	char *const stream_env[] = {dup, NULL};
	th_streams_apply(f->nats.url, stream_env);
	start_actor(f, A_BILLING, dup, NULL);
	th_pg_okf(f->db, "UPDATE organizations SET wallet_balance_pence = 1050 WHERE id = '%s'",
		  f->orgs[0]);
	th_pg_okf(f->db, "UPDATE it_opening SET opening = 1050 WHERE org_id = '%s'", f->orgs[0]);
	th_pg_okf(f->db, "REVOKE UPDATE ON vox_outbox FROM %s", f->role);
	evbuf b;
	memset(&b, 0, sizeof(b));
	b.ev.kind = VOX_CALL_ENDED;
	vox_call_ended *e = &b.ev.u.call_ended;
	snprintf(b.eid, sizeof(b.eid), "low-%d", f->run);
	e->event_id = (vox_str){b.eid, strlen(b.eid)};
	snprintf(e->org_id.s, sizeof(e->org_id.s), "%s", f->orgs[0]);
	snprintf(e->call_id.s, sizeof(e->call_id.s), "%08x-0000-4000-8000-000000000001",
		 0xdd000000u + (unsigned)f->run);
	e->duration_seconds = 120; /* 140: the wallet crosses below 1000 */
	e->ended_at = (vox_time){1795000120, 0, true};
	e->status = VOX_CALL_COMPLETED;
	publish(f, &b.ev);
	long long n = -1;
	for (int i = 0; i < 100 && n < 1; i++) {
		n = th_stream_count(f->js, "ALERTS");
		th_sleep_ms(100);
	}
	assert_int_equal(n, 1);
	/* well past the duplicate window, with the mark still refused */
	th_sleep_ms(3000);
	assert_int_equal(count_sql(f, "SELECT count(*) FROM vox_outbox WHERE published_at IS NULL"), 1);
	th_pg_okf(f->db, "GRANT UPDATE ON vox_outbox TO %s", f->role);
	assert_int_equal(th_wait_int(f->dsn, "SELECT count(*) FROM vox_outbox WHERE published_at IS NULL",
				     0, 20000), 0);
	th_sleep_ms(1500); /* a second copy would show by now */
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 1);
	assert_no_dead_letters(f);
}

static void test_finite_max_deliver_is_refused(void **state)
{
	fixture *f = *state;
	char e_url[160], e_dsn[800], e_max[] = "VOX_MAX_DELIVER=5";
	snprintf(e_url, sizeof(e_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(e_dsn, sizeof(e_dsn), "VOX_PG_DSN=%s", f->actor_dsn);
	char *const env[] = {e_url, e_dsn, e_max, NULL};
	th_run_result r;
	const char *argv[] = {"vox-billing", NULL};
	th_run("vox-billing", argv, env, NULL, 20000, &r);
	th_run_expect(&r, 2, "VOX_MAX_DELIVER: must be -1");
	th_run_release(&r);
}

/* MaxAckPending below two batches would stall JetStream's deliveries
 * while the writer works: refused at start too; exactly two is fine. */
static void test_max_ack_pending_below_two_batches_is_refused(void **state)
{
	fixture *f = *state;
	char e_url[160], e_dsn[800], e_batch[] = "VOX_BATCH=600",
	     e_map[] = "VOX_MAX_ACK_PENDING=1199";
	snprintf(e_url, sizeof(e_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(e_dsn, sizeof(e_dsn), "VOX_PG_DSN=%s", f->actor_dsn);
	char *const env[] = {e_url, e_dsn, e_batch, e_map, NULL};
	th_run_result r;
	const char *argv[] = {"vox-calls", NULL};
	th_run("vox-calls", argv, env, NULL, 20000, &r);
	th_run_expect(&r, 2, "VOX_MAX_ACK_PENDING: 1199 is below 2 x VOX_BATCH (1200)");
	th_run_release(&r);
	/* 1200 passes the check: the actor starts (and is stopped) */
	char e_ok[] = "VOX_MAX_ACK_PENDING=1200";
	char *const env_ok[] = {e_url, e_dsn, e_batch, e_ok, NULL};
	char log[512];
	snprintf(log, sizeof(log), "%s/faults-map-%ld.log", th_env("VOX_TEST_TMP"),
		 (long)getpid());
	pid_t pid = th_spawn("vox-calls", env_ok, log);
	th_wait_started(&pid, "vox-calls", log, 100);
	assert_true(th_alive(pid));
	assert_true(th_stop(pid, SIGTERM, 10000) == 0);
	assert_int_equal(th_count_in_log(log, "VOX_MAX_ACK_PENDING"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_only_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statement_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoked_grant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renamed_column_and_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_terminated_backends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_constraint_every_message_breaks_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_poison_message_and_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferral_window_survives_an_outage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_row_stored_once_when_its_mark_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finite_max_deliver_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_ack_pending_below_two_batches_is_refused,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
