/*
 * Integration: `voxctl org create|show` and `voxctl demo` against real
 * servers: a migrated database, a private nats-server and the actors
 * vox-calls, vox-billing and vox-leads. The demo's summary is checked
 * against SQL: balances equal the database, ledger sums equal balances,
 * each call charged once despite repeated events, dead letters explained.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/json.h"
#include "harness.h"

#define ORG_A "0a000000-0000-4000-8000-00000000000a"
#define ORG_X "0f000000-0000-4000-8000-0000000000ff" /* never inserted */
#define NACTORS 3

static const char *const actor_names[NACTORS] = {"vox-calls", "vox-billing",
						 "vox-leads"};

typedef struct fixture {
	th_nats nats;
	bool nats_up;
	char dsn[512];
	char env_url[128];
	char env_dsn[600];
	pid_t actors[NACTORS];
	char logs[NACTORS][600];
	PGconn *db;
} fixture;

static int run_counter;

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	th_nats_start(&f->nats);
	f->nats_up = true;
	th_pg_migrated_db("vdemo", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
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
	if (f->nats_up)
		th_nats_stop(&f->nats);
	PQfinish(f->db);
	free(f);
	return 0;
}

static void start_actors(fixture *f)
{
	char e_fetch[] = "VOX_FETCH_WAIT_MS=200";
	char e_age[] = "VOX_OUTBOX_AGE_MS=0";
	char *env[] = {f->env_url, f->env_dsn, e_fetch, e_age, NULL};
	int run = run_counter++;
	for (int i = 0; i < NACTORS; i++) {
		snprintf(f->logs[i], sizeof(f->logs[i]), "%s/vdemo-%s-%ld-%d.log",
			 th_env("VOX_TEST_TMP"), actor_names[i], (long)getpid(), run);
		f->actors[i] = th_spawn(actor_names[i], env, f->logs[i]);
	}
	for (int i = 0; i < NACTORS; i++)
		th_wait_started(&f->actors[i], actor_names[i], f->logs[i], 200);
}

static void stop_actors(fixture *f)
{
	for (int i = 0; i < NACTORS; i++) {
		if (f->actors[i] > 0)
			th_stop(f->actors[i], SIGTERM, 10000);
		f->actors[i] = 0;
	}
}

/* Run voxctl (argv NULL-ended, at most 31 words) with env. */
static void voxctl_env(char *const env[], const char *const argv[],
		       th_run_result *r)
{
	th_run("voxctl", argv, env, NULL, 120000, r);
}

/* Run voxctl with the fixture's NATS and database. */
static void voxctl(fixture *f, const char *const argv[], th_run_result *r)
{
	char *env[] = {f->env_url, f->env_dsn, NULL};
	voxctl_env(env, argv, r);
}


/* ---- org ----------------------------------------------------------------- */

static void test_org_create_show_and_bad_input(void **state)
{
	fixture *f = *state;
	th_run_result r;

	const char *create[] = {"voxctl", "--compact", "org", "create", "--name",
			  "Harley Street Dental", "--email", "desk@example.com",
			  "--id", ORG_A, "--balance", "2500", "--plan",
			  "professional", NULL};
	voxctl(f, create, &r);
	th_run_expect(&r, 0, NULL);
	assert_non_null(strstr(r.out.data, "\"id\":\"" ORG_A "\""));
	assert_non_null(strstr(r.out.data, "\"balance_pence\":2500"));
	th_run_release(&r);
	assert_int_equal(th_pg_intf(f->db, "SELECT wallet_balance_pence FROM"
				    " organizations WHERE id = '%s' AND plan ="
				    " 'professional'", ORG_A), 2500);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"
				    " WHERE org_id = '%s' AND type = 'topup' AND"
				    " amount_pence = 2500 AND balance_before_pence = 0"
				    " AND balance_after_pence = 2500 AND description ="
				    " 'opening balance'", ORG_A), 1);

	/* the same id again: refused by the server, nothing changed */
	voxctl(f, create, &r);
	th_run_expect(&r, 1, "already exists");
	th_run_release(&r);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM credit_transactions"
				    " WHERE org_id = '%s'", ORG_A), 1);

	/* a zero balance writes no ledger row */
	const char *zero[] = {"voxctl", "--compact", "org", "create", "--name", "Zero",
			"--email", "z@example.com", NULL};
	voxctl(f, zero, &r);
	th_run_expect(&r, 0, NULL);
	assert_non_null(strstr(r.out.data, "\"ledger_rows\":0"));
	th_run_release(&r);
	assert_int_equal(th_pg_int(f->db, "SELECT count(*) FROM organizations o"
				   " WHERE name = 'Zero' AND NOT EXISTS (SELECT 1 FROM"
				   " credit_transactions t WHERE t.org_id = o.id)"), 1);

	/* bad input: exit 2, nothing written */
	const char *negative[] = {"voxctl", "org", "create", "--name", "Neg", "--email",
			    "n@example.com", "--balance", "-100", NULL};
	const char *no_email[] = {"voxctl", "org", "create", "--name", "NoMail", NULL};
	const char *bad_id[] = {"voxctl", "org", "create", "--name", "B", "--email",
			  "b@example.com", "--id", "not-a-uuid", NULL};
	const char *bad_plan[] = {"voxctl", "org", "create", "--name", "B", "--email",
			    "b@example.com", "--plan", "gold", NULL};
	const char *bad_num[] = {"voxctl", "org", "create", "--name", "B", "--email",
			   "b@example.com", "--debt-limit", "12abc", NULL};
	const char *bad_sub[] = {"voxctl", "org", "delete", NULL};
	voxctl(f, negative, &r);
	th_run_expect(&r, 2, "--balance");
	th_run_release(&r);
	voxctl(f, no_email, &r);
	th_run_expect(&r, 2, "--email");
	th_run_release(&r);
	voxctl(f, bad_id, &r);
	th_run_expect(&r, 2, "not a UUID");
	th_run_release(&r);
	voxctl(f, bad_plan, &r);
	th_run_expect(&r, 2, "--plan");
	th_run_release(&r);
	voxctl(f, bad_num, &r);
	th_run_expect(&r, 2, "--debt-limit");
	th_run_release(&r);
	voxctl(f, bad_sub, &r);
	th_run_expect(&r, 2, "unknown subcommand");
	th_run_release(&r);
	/* one past what the bigint columns hold */
	const char *too_big[] = {"voxctl", "org", "create", "--name", "B", "--email",
			   "b@example.com", "--debt-limit", "9223372036854775808", NULL};
	voxctl(f, too_big, &r);
	th_run_expect(&r, 2, "--debt-limit");
	th_run_release(&r);
	assert_int_equal(th_pg_int(f->db, "SELECT count(*) FROM organizations"), 2);

	/* amounts past 32 bits: what the (bigint) columns take, voxctl takes */
	const char *big[] = {"voxctl", "--compact", "org", "create", "--name", "Big",
		       "--email", "big@example.com", "--balance", "4000000000000",
		       "--debt-limit", "9223372036854775807", "--low-balance",
		       "3000000000", NULL};
	voxctl(f, big, &r);
	th_run_expect(&r, 0, NULL);
	assert_non_null(strstr(r.out.data, "\"balance_pence\":4000000000000"));
	assert_non_null(strstr(r.out.data, "\"debt_limit_pence\":9223372036854775807"));
	assert_non_null(strstr(r.out.data, "\"low_balance_pence\":3000000000"));
	assert_non_null(strstr(r.out.data, "\"ledger_sum_pence\":4000000000000"));
	th_run_release(&r);
	assert_int_equal(th_pg_int(f->db, "SELECT count(*) FROM organizations o"
				   " JOIN credit_transactions t ON t.org_id = o.id"
				   " WHERE o.name = 'Big' AND o.wallet_balance_pence = 4000000000000"
				   " AND o.debt_limit_pence = 9223372036854775807"
				   " AND o.low_balance_pence = 3000000000"
				   " AND t.amount_pence = 4000000000000"
				   " AND t.balance_after_pence = 4000000000000"), 1);
	th_pg_ok(f->db, "DELETE FROM organizations WHERE name = 'Big'");
	assert_int_equal(th_pg_int(f->db, "SELECT count(*) FROM organizations"), 2);

	/* show */
	const char *show[] = {"voxctl", "--compact", "org", "show", ORG_A, NULL};
	voxctl(f, show, &r);
	th_run_expect(&r, 0, NULL);
	assert_non_null(strstr(r.out.data, "\"name\":\"Harley Street Dental\""));
	assert_non_null(strstr(r.out.data, "\"ledger_sum_pence\":2500"));
	th_run_release(&r);
	const char *show_none[] = {"voxctl", "org", "show", ORG_X, NULL};
	voxctl(f, show_none, &r);
	th_run_expect(&r, 1, "no organization");
	th_run_release(&r);
	const char *show_bad[] = {"voxctl", "org", "show", "42", NULL};
	voxctl(f, show_bad, &r);
	th_run_expect(&r, 2, "not a UUID");
	th_run_release(&r);

	/* --help, and Postgres unreachable */
	const char *help[] = {"voxctl", "org", "--help", NULL};
	voxctl(f, help, &r);
	th_run_expect(&r, 0, NULL);
	assert_non_null(strstr(r.out.data, "--debt-limit"));
	th_run_release(&r);
	char e_bad[] = "VOX_PG_DSN=host=127.0.0.1 port=1 dbname=x connect_timeout=2";
	char *env_bad[] = {f->env_url, e_bad, NULL};
	voxctl_env(env_bad, show, &r);
	th_run_expect(&r, 3, "PostgreSQL");
	th_run_release(&r);
}

/* ---- demo ----------------------------------------------------------------- */

static long long jint(const vox_json *obj, const char *key)
{
	const vox_json *v = vox_json_get(obj, key);
	if (!v || vox_json_type_of(v) != VOX_JSON_INT)
		fail_msg("summary: %s missing or not an integer", key);
	return vox_json_int(v);
}

static void test_demo_matches_the_database(void **state)
{
	fixture *f = *state;
	th_run_result r;
	start_actors(f);

	const char *demo[] = {"voxctl", "--compact", "demo", "--orgs", "2", "--calls",
			"20", "--seed", "1", "--no-progress", "--wait-seconds", "90",
			NULL};
	voxctl(f, demo, &r);
	th_run_expect(&r, 0, NULL);
	size_t at = 0;
	vox_json *sum = vox_json_parse(r.out.data, r.out.len, &at);
	if (!sum)
		fail_msg("summary is not JSON (byte %zu): %s", at, r.out.data);

	assert_true(jint(sum, "duplicates_ignored") > 0);
	assert_true(jint(sum, "malformed") > 0);
	long long dead = jint(sum, "dead_letters");
	assert_true(dead >= jint(sum, "malformed"));
	const vox_json *orgs = vox_json_get(sum, "orgs");
	assert_non_null(orgs);
	assert_int_equal(vox_json_len(orgs), 2);
	assert_int_equal(th_pg_int(f->db, "SELECT count(*) FROM organizations"), 2);

	long long dead_sum = 0;
	for (size_t i = 0; i < 2; i++) {
		const vox_json *o = vox_json_at(orgs, i);
		const vox_json *idv = vox_json_get(o, "id");
		assert_non_null(idv);
		const char *id = vox_json_str(idv);
		long long bal = th_pg_intf(f->db, "SELECT wallet_balance_pence FROM"
					   " organizations WHERE id = '%s'", id);
		assert_int_equal(jint(o, "balance_pence"), bal);
		/* the ledger sums to the balance */
		assert_int_equal(th_pg_intf(f->db, "SELECT coalesce(sum(amount_pence),"
					    " 0) FROM credit_transactions WHERE org_id ="
					    " '%s'", id), bal);
		assert_int_equal(jint(o, "ledger_sum_pence"), bal);
		/* every call ended once, charged once, despite repeated events */
		assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM calls WHERE"
					    " org_id = '%s' AND ended_at IS NOT NULL", id), 20);
		assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM call_charges"
					    " WHERE org_id = '%s'", id), 20);
		assert_int_equal(jint(o, "calls_charged"), 20);
		assert_int_equal(th_pg_intf(f->db, "SELECT count(*) - count(DISTINCT"
					    " call_id) FROM credit_transactions WHERE"
					    " org_id = '%s' AND type = 'deduction'", id), 0);
		long long charges = th_pg_intf(f->db, "SELECT sum((duration_seconds * 70"
					       " + 59) / 60) FROM calls WHERE org_id ="
					       " '%s'", id);
		assert_int_equal(jint(o, "charges_pence"), charges);
		/* one top-up per clinic, though it was published twice */
		assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM"
					    " credit_transactions WHERE org_id = '%s' AND"
					    " type = 'topup' AND stripe_payment_intent_id IS"
					    " NOT NULL", id), 1);
		assert_int_equal(jint(o, "opening_balance_pence") +
					 jint(o, "topups_pence") - jint(o, "refunds_pence") -
					 (charges - jint(o, "unbilled_pence")),
				 bal);
		const vox_json *alerts = vox_json_get(o, "alerts");
		assert_non_null(alerts);
		assert_int_equal(jint(alerts, "hot_lead"),
				 th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"
					    " WHERE org_id = '%s'", id));
		dead_sum += jint(o, "dead_letters");
	}
	assert_int_equal(dead_sum, dead);
	const vox_json *reasons = vox_json_get(sum, "dead_letter_reasons");
	assert_non_null(reasons);
	assert_int_equal((long long)vox_json_len(reasons), dead);
	for (size_t i = 0; i < vox_json_len(reasons); i++) {
		const vox_json *d = vox_json_at(reasons, i);
		const vox_json *why = vox_json_get(d, "reason");
		assert_non_null(why);
		assert_true(vox_json_type_of(why) == VOX_JSON_STRING);
		assert_true(vox_json_str_len(why) > 0);
	}
	vox_json_free(sum);
	th_run_release(&r);

	/* without actors the events stay pending: a clear exit 1 */
	stop_actors(f);
	const char *demo_short[] = {"voxctl", "demo", "--orgs", "1", "--calls", "2",
			      "--no-progress", "--wait-seconds", "2", NULL};
	voxctl(f, demo_short, &r);
	th_run_expect(&r, 1, "did not process");
	assert_non_null(strstr(r.err.data, "make run"));
	th_run_release(&r);
}

static void test_demo_without_actors_or_servers(void **state)
{
	fixture *f = *state;
	th_run_result r;

	/* a server without streams: the demo names the command that makes
	 * them and creates none itself */
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	th_js_connect(f->nats.url, NULL, &nc, &js);
	const char *streams[] = {"EVENTS", "ALERTS", "DLQ"};
	for (size_t i = 0; i < VOX_NELEM(streams); i++)
		assert_int_equal(js_DeleteStream(js, streams[i], NULL, NULL), NATS_OK);
	const char *demo[] = {"voxctl", "demo", "--orgs", "1", "--calls", "2",
			"--no-progress", "--wait-seconds", "2", NULL};
	voxctl(f, demo, &r);
	th_run_expect(&r, 1, "EVENTS");
	assert_non_null(strstr(r.err.data, "voxctl streams apply"));
	th_run_release(&r);
	assert_int_equal(th_stream_count(js, "EVENTS"), -1);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	assert_int_equal(th_pg_int(f->db, "SELECT count(*) FROM organizations"), 0);

	/* bad usage */
	const char *bad[] = {"voxctl", "demo", "--orgs", "0", NULL};
	voxctl(f, bad, &r);
	th_run_expect(&r, 2, "--orgs");
	th_run_release(&r);
	const char *bad2[] = {"voxctl", "demo", "--calls", NULL};
	voxctl(f, bad2, &r);
	th_run_expect(&r, 2, "option '--calls' needs a value");
	th_run_release(&r);
	const char *bad3[] = {"voxctl", "demo", "--fast", NULL};
	voxctl(f, bad3, &r);
	th_run_expect(&r, 2, "voxctl demo: unknown option '--fast' (see voxctl help demo)");
	th_run_release(&r);

	/* NATS unreachable */
	th_nats_stop(&f->nats);
	f->nats_up = false;
	voxctl(f, demo, &r);
	th_run_expect(&r, 3, "NATS");
	th_run_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_org_create_show_and_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_demo_matches_the_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_demo_without_actors_or_servers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
