/*
 * Integration: the migrations against a real PostgreSQL. Applies them to an
 * empty database, checks the seed's 29 tables, constraints, indexes and RLS
 * policies, re-applies (no change), runs four runners concurrently, proves
 * the runner rejects an edited migration and rolls back a failing one,
 * shows that a role subject to RLS sees only its org's rows, and that the
 * money columns become bigint in place (0008) with their rows and checks.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/json.h"
#include "harness.h"
#include "io/migrate.h"

static const char *seed_tables[] = {
	"calls", "appointments", "organizations", "profiles", "contacts",
	"call_tracking", "feature_flags", "org_tools", "onboarding_submissions",
	"credit_transactions", "processed_webhook_events",
	"backup_verification_log", "agents", "services", "knowledge_base",
	"knowledge_base_chunks", "knowledge_base_changelog", "integrations",
	"org_credentials", "carrier_forwarding_rules", "leads", "audit_logs",
	"telephony_country_audit_log", "security_audit_log",
	"org_feature_flags", "hot_lead_alerts", "twilio_subaccounts",
	"escalation_rules", "integration_settings",
};

/* Every enumerated column of the seed has a named check constraint. */
static const char *seed_checks[] = {
	"calls_status_check", "calls_call_direction_check",
	"calls_sentiment_label_check", "calls_sentiment_urgency_check",
	"calls_sentiment_score_check", "appointments_status_check",
	"organizations_plan_check", "organizations_telephony_mode_check",
	"profiles_role_check", "profiles_status_check",
	"contacts_lead_status_check", "contacts_lead_score_check",
	"call_tracking_device_type_check", "credit_transactions_type_check",
	"feature_flags_rollout_percentage_check", "org_credentials_provider_check",
	"hot_lead_alerts_urgency_level_check",
};

static const char *seed_indexes[] = {
	"idx_credit_txn_created_at", "idx_credit_txn_stripe_pi", "idx_webhook_events_event_type",
	"idx_webhook_events_org_id", "idx_webhook_events_created_at",
	"idx_contacts_phone", "idx_calls_created_at", "idx_calls_contact_id",
};

/* The seed indexes 0006 drops, each with the index that still serves its
 * lookups (NULL: none needed, a column of two or three values). */
static const struct {
	const char *dropped, *served_by;
} write_path_drops[] = {
	{"idx_webhook_events_event_id", "processed_webhook_events_event_id_key"},
	{"idx_calls_org_id", "idx_calls_org_created_id"},
	{"idx_credit_txn_org_id", "credit_transactions_org_seq_key"},
	{"idx_calls_status", NULL},
	{"idx_calls_call_direction", NULL},
	/* 0009 */
	{"idx_credit_txn_type", "idx_credit_txn_org_type_seq"},
	{"idx_credit_txn_org_seq", "credit_transactions_org_seq_key"},
	{"credit_transactions_seq_key", "credit_transactions_org_seq_key"},
	{"idx_contacts_org_id", "contacts_org_id_phone_key"},
};

static int apply_all(const char *dsn);

#define ORG_1 "00000000-0000-4000-8000-0000000000a1"
#define ORG_2 "00000000-0000-4000-8000-0000000000a2"
#define ORG_NONE "00000000-0000-4000-8000-0000000000ff"

static void expect_state(PGconn *c, const char *sql, const char *state)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_FATAL_ERROR)
		fprintf(stderr, "expected %s from: %s\n", state, sql);
	assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
	assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), state);
	PQclear(r);
}

/* 0009: the write path's tables check their org once per statement (no
 * per-row foreign key), yet no row can name a missing org, and deleting
 * an org still deletes its calls, ledger and charges. */
static void test_org_references_checked_per_statement(void **state)
{
	(void)state;
	char dsn[512];
	th_pg_create_db("mig_orgref", dsn, sizeof(dsn));
	assert_int_equal(apply_all(dsn), (int)vox_migrations_count);
	PGconn *c = th_pg_connect(dsn);
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND"
		" confrelid = 'organizations'::regclass AND conrelid::regclass::text"
		" IN ('calls', 'credit_transactions', 'call_charges')"), 0);
	th_pg_ok(c, "INSERT INTO organizations (id, name, email) VALUES"
		    " ('" ORG_1 "', 'a', 'a@x'), ('" ORG_2 "', 'b', 'b@x')");

	/* one statement naming a missing org among good ones: refused whole */
	expect_state(c, "INSERT INTO calls (org_id, status) VALUES"
		     " ('" ORG_1 "', 'pending'), ('" ORG_NONE "', 'pending')", "23503");
	expect_state(c, "INSERT INTO credit_transactions (org_id, amount_pence,"
		     " type) VALUES ('" ORG_NONE "', 5, 'topup')", "23503");
	expect_state(c, "INSERT INTO call_charges (call_id, org_id,"
		     " duration_seconds, rate_per_minute, charge_pence,"
		     " deducted_pence, shortfall_pence, event_id) VALUES"
		     " (gen_random_uuid(), '" ORG_NONE "', 60, 10, 10, 10, 0, 'e')",
		     "23503");
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM calls"), 0);
	th_pg_ok(c, "INSERT INTO calls (org_id, status) VALUES"
		    " ('" ORG_1 "', 'pending'), ('" ORG_2 "', 'pending')");
	/* moving a row to a missing org is refused too */
	expect_state(c, "UPDATE calls SET org_id = '" ORG_NONE "'", "23503");

	for (int i = 0; i < 2; i++) {
		const char *org = i ? ORG_2 : ORG_1;
		char sql[512];
		snprintf(sql, sizeof(sql), "INSERT INTO credit_transactions (org_id,"
			 " amount_pence, type) VALUES ('%s', 5, 'topup'), ('%s', 7, 'topup')",
			 org, org);
		th_pg_ok(c, sql);
		snprintf(sql, sizeof(sql), "INSERT INTO call_charges (call_id, org_id,"
			 " duration_seconds, rate_per_minute, charge_pence,"
			 " deducted_pence, shortfall_pence, event_id) VALUES"
			 " (gen_random_uuid(), '%s', 60, 10, 10, 10, 0, 'e')", org);
		th_pg_ok(c, sql);
	}
	/* the cascade the foreign keys did */
	th_pg_ok(c, "DELETE FROM organizations WHERE id = '" ORG_1 "'");
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM calls"
		" WHERE org_id = '" ORG_1 "'"), 0);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM credit_transactions"
		" WHERE org_id = '" ORG_1 "'"), 0);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM call_charges"
		" WHERE org_id = '" ORG_1 "'"), 0);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM calls"), 1);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM credit_transactions"), 2);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM call_charges"), 1);

	/* append-only tables: time-ordered ids (UUID version 7) in insert order */
	th_pg_ok(c, "INSERT INTO credit_transactions (org_id, amount_pence, type)"
		    " SELECT '" ORG_2 "', 1, 'topup' FROM generate_series(1, 50)");
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM credit_transactions"
		" WHERE substr(id::text, 15, 1) <> '7'"), 0);
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY seq) AS prev"
		" FROM credit_transactions) t WHERE prev IS NOT NULL"
		" AND left(id::text, 13) < left(prev::text, 13)"), 0);
	/* created_at of append-only tables: BRIN */
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM pg_class i"
		" JOIN pg_am a ON a.oid = i.relam WHERE a.amname = 'brin' AND"
		" i.relname IN ('idx_calls_created_at', 'idx_credit_txn_created_at')"), 2);
	PQfinish(c);
}

static int apply_all(const char *dsn)
{
	int applied = -1;
	vox_buf err;
	vox_buf_init(&err);
	PGconn *c = th_pg_connect(dsn);
	vox_status st = vox_migrate_apply(c, vox_migrations,
					  vox_migrations_count, &applied, &err);
	if (st != VOX_OK)
		fprintf(stderr, "migrate: %s\n", err.data);
	assert_int_equal(st, VOX_OK);
	vox_buf_release(&err);
	PQfinish(c);
	return applied;
}

static void test_fresh_database_gets_the_seed_schema(void **state)
{
	(void)state;
	char dsn[512], sql[512];
	th_pg_create_db("mig_fresh", dsn, sizeof(dsn));
	assert_int_equal(apply_all(dsn), (int)vox_migrations_count);
	PGconn *c = th_pg_connect(dsn);

	for (size_t i = 0; i < VOX_NELEM(seed_tables); i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM information_schema.tables WHERE"
			 " table_schema = 'public' AND table_type = 'BASE TABLE'"
			 " AND table_name = '%s'", seed_tables[i]);
		if (th_pg_int(c, sql) != 1)
			fprintf(stderr, "missing table %s\n", seed_tables[i]);
		assert_int_equal(th_pg_int(c, sql), 1);
	}
	assert_int_equal(VOX_NELEM(seed_tables), 29);

	for (size_t i = 0; i < VOX_NELEM(seed_checks); i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_constraint WHERE contype = 'c'"
			 " AND conname = '%s'", seed_checks[i]);
		if (th_pg_int(c, sql) != 1)
			fprintf(stderr, "missing check %s\n", seed_checks[i]);
		assert_int_equal(th_pg_int(c, sql), 1);
	}
	for (size_t i = 0; i < VOX_NELEM(seed_indexes); i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_indexes WHERE indexname = '%s'",
			 seed_indexes[i]);
		assert_int_equal(th_pg_int(c, sql), 1);
	}
	for (size_t i = 0; i < VOX_NELEM(write_path_drops); i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_indexes WHERE indexname = '%s'",
			 write_path_drops[i].dropped);
		assert_int_equal(th_pg_int(c, sql), 0);
		if (!write_path_drops[i].served_by)
			continue;
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_indexes WHERE indexname = '%s'",
			 write_path_drops[i].served_by);
		assert_int_equal(th_pg_int(c, sql), 1);
	}
	/* room for HOT updates of calls (0006) */
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM pg_class WHERE"
		" relname = 'calls' AND 'fillfactor=80' = ANY(reloptions)"), 1);

	/* Every table with org_id has RLS enabled and a policy. */
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM information_schema.columns col"
		" JOIN pg_class k ON k.relname = col.table_name"
		" AND k.relnamespace = 'public'::regnamespace"
		" WHERE col.table_schema = 'public' AND col.column_name = 'org_id'"
		" AND (NOT k.relrowsecurity OR NOT EXISTS"
		"  (SELECT 1 FROM pg_policy p WHERE p.polrelid = k.oid))"), 0);
	assert_true(th_pg_int(c,
		"SELECT count(*) FROM information_schema.columns WHERE"
		" table_schema = 'public' AND column_name = 'org_id'") >= 20);
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM pg_class WHERE relname = 'organizations'"
		" AND relrowsecurity"), 1);

	/* The replaced system's deferrable unique constraint broke every
	 * ON CONFLICT insert: none may be deferrable, and the top-up upsert
	 * on its idempotency key (a partial unique index since 0003) works. */
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM pg_constraint WHERE condeferrable"), 0);
	th_pg_ok(c, "INSERT INTO organizations (id, name, email) VALUES"
		    " ('00000000-0000-4000-8000-000000000001', 'a', 'a@x')");
	for (int i = 0; i < 2; i++)
		th_pg_ok(c, "INSERT INTO credit_transactions (org_id,"
			    " amount_pence, type, stripe_payment_intent_id)"
			    " VALUES ('00000000-0000-4000-8000-000000000001',"
			    " 500, 'topup', 'pi_1')"
			    " ON CONFLICT (stripe_payment_intent_id)"
			    " WHERE type = 'topup' DO NOTHING");
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM credit_transactions"), 1);

	/* A bad enumerated value is refused by the server. */
	PGresult *r = PQexec(c, "INSERT INTO calls (org_id, call_direction,"
				" from_number, to_number, status) VALUES"
				" ('00000000-0000-4000-8000-000000000001',"
				" 'sideways', '+441', '+442', 'completed')");
	assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
	assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514");
	PQclear(r);

	/* cleanup_old_webhook_events() deletes only what is old enough. */
	th_pg_ok(c, "INSERT INTO processed_webhook_events (event_id, event_type,"
		    " event_data, created_at) VALUES"
		    " ('old', 't', '{}', now() - interval '25 hours'),"
		    " ('new', 't', '{}', now())");
	assert_int_equal(th_pg_int(c, "SELECT cleanup_old_webhook_events()"), 1);
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM processed_webhook_events"), 1);
	PQfinish(c);
}

static void test_reapply_is_a_noop(void **state)
{
	(void)state;
	char dsn[512];
	th_pg_create_db("mig_again", dsn, sizeof(dsn));
	assert_int_equal(apply_all(dsn), (int)vox_migrations_count);
	PGconn *c = th_pg_connect(dsn);
	long long objects = th_pg_int(c,
		"SELECT count(*) FROM pg_class WHERE relnamespace ="
		" 'public'::regnamespace");
	PQfinish(c);
	assert_int_equal(apply_all(dsn), 0);
	c = th_pg_connect(dsn);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM schema_migrations"),
			 (long long)vox_migrations_count);
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM pg_class WHERE relnamespace ="
		" 'public'::regnamespace"), objects);
	PQfinish(c);
}

static void test_concurrent_runners_are_safe(void **state)
{
	(void)state;
	char dsn[512];
	pid_t kids[4];
	th_pg_create_db("mig_race", dsn, sizeof(dsn));
	setenv("VOX_PG_DSN", dsn, 1); /* inherited by the four voxctl runs */
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			execl(th_bin("voxctl"), "voxctl", "migrate", (char *)NULL);
			_exit(127);
		}
	}
	for (int i = 0; i < 4; i++) {
		int ws = 0;
		assert_int_equal(waitpid(kids[i], &ws, 0), kids[i]);
		assert_true(WIFEXITED(ws));
		assert_int_equal(WEXITSTATUS(ws), 0);
	}
	PGconn *c = th_pg_connect(dsn);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM schema_migrations"),
			 (long long)vox_migrations_count);
	PQfinish(c);
}

static void test_edited_migration_is_refused(void **state)
{
	(void)state;
	char dsn[512];
	th_pg_create_db("mig_edit", dsn, sizeof(dsn));
	assert_int_equal(apply_all(dsn), (int)vox_migrations_count);
	vox_migration edited = vox_migrations[0];
	edited.sql = "SELECT 1";
	edited.len = 8;
	vox_buf err;
	vox_buf_init(&err);
	int applied = -1;
	PGconn *c = th_pg_connect(dsn);
	assert_int_equal(vox_migrate_apply(c, &edited, 1, &applied, &err),
			 VOX_E_CONFLICT);
	assert_non_null(strstr(err.data, "changed after it was applied"));
	assert_int_equal(applied, -1);
	vox_buf_release(&err);
	PQfinish(c);
}

static void test_failing_migration_leaves_no_trace(void **state)
{
	(void)state;
	char dsn[512];
	th_pg_create_db("mig_fail", dsn, sizeof(dsn));
	const vox_migration bad[] = {
		{"0001_ok", "CREATE TABLE t_ok (id int)", 26},
		{"0002_bad", "CREATE TABLE t_half (id int); SELECT nope_no_such_fn()", 55},
	};
	vox_buf err;
	vox_buf_init(&err);
	int applied = -1;
	PGconn *c = th_pg_connect(dsn);
	assert_int_not_equal(vox_migrate_apply(c, bad, 2, &applied, &err), VOX_OK);
	assert_non_null(strstr(err.data, "0002_bad"));
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM schema_migrations"), 1);
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM pg_class WHERE relname = 't_half'"), 0);
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM pg_class WHERE relname = 't_ok'"), 1);
	/* The advisory lock was released: a second run can take it. */
	assert_int_equal(th_pg_int(c,
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), 0);
	vox_buf_release(&err);
	PQfinish(c);
}

static void test_rls_role_sees_only_its_org(void **state)
{
	(void)state;
	char dsn[512], role[64], sql[512], rdsn[700];
	th_pg_create_db("mig_rls", dsn, sizeof(dsn));
	assert_int_equal(apply_all(dsn), (int)vox_migrations_count);
	PGconn *c = th_pg_connect(dsn);
	snprintf(role, sizeof(role), "reader_%ld", (long)getpid());
	snprintf(sql, sizeof(sql),
		 "CREATE ROLE %s LOGIN PASSWORD 'pw' IN ROLE vox_reader", role);
	th_pg_ok(c, sql);
	th_pg_ok(c, "INSERT INTO organizations (id, name, email) VALUES"
		    " ('00000000-0000-4000-8000-00000000000a', 'A', 'a@x'),"
		    " ('00000000-0000-4000-8000-00000000000b', 'B', 'b@x')");
	th_pg_ok(c, "INSERT INTO calls (org_id, call_direction, from_number,"
		    " to_number, status) VALUES"
		    " ('00000000-0000-4000-8000-00000000000a', 'inbound', '+441',"
		    "  '+442', 'completed'),"
		    " ('00000000-0000-4000-8000-00000000000a', 'inbound', '+443',"
		    "  '+442', 'completed'),"
		    " ('00000000-0000-4000-8000-00000000000b', 'inbound', '+444',"
		    "  '+445', 'completed')");
	PQfinish(c);

	/* Same cluster, same database, but as the RLS-bound role. */
	snprintf(rdsn, sizeof(rdsn), "%s user=%s password=pw passfile=/dev/null",
		 dsn, role);
	PGconn *rc = th_pg_connect(rdsn);
	/* No tenant set: nothing at all (fail closed). */
	assert_int_equal(th_pg_int(rc, "SELECT count(*) FROM calls"), 0);
	th_pg_ok(rc, "SET app.org_id = '00000000-0000-4000-8000-00000000000a'");
	assert_int_equal(th_pg_int(rc, "SELECT count(*) FROM calls"), 2);
	assert_int_equal(th_pg_int(rc, "SELECT count(*) FROM organizations"), 1);
	th_pg_ok(rc, "SET app.org_id = '00000000-0000-4000-8000-00000000000b'");
	assert_int_equal(th_pg_int(rc, "SELECT count(*) FROM calls"), 1);
	/* A deliberately unfiltered read cannot reach the other org. */
	assert_int_equal(th_pg_int(rc,
		"SELECT count(*) FROM calls WHERE org_id ="
		" '00000000-0000-4000-8000-00000000000a'"), 0);
	PQfinish(rc);
}

/* migrate --status: JSON (every migration with its state, the count
 * pending), or the lines of --text; the same two before and after. */
static void test_status_lists_every_migration(void **state)
{
	(void)state;
	char dsn[512];
	th_pg_create_db("mig_status", dsn, sizeof(dsn));
	char env_dsn[600];
	snprintf(env_dsn, sizeof(env_dsn), "VOX_PG_DSN=%s", dsn);
	char *const env[] = {env_dsn, NULL};
	const char *status[] = {"voxctl", "migrate", "--status", NULL};
	const char *text[] = {"voxctl", "migrate", "--status", "--text", NULL};
	th_run_result r;

	th_run("voxctl", status, env, NULL, 20000, &r);
	th_run_expect(&r, 0, NULL);
	vox_json *j = vox_json_parse(r.out.data, r.out.len, NULL);
	assert_non_null(j);
	const vox_json *list = vox_json_get(j, "migrations");
	assert_int_equal(vox_json_len(list), vox_migrations_count);
	for (size_t i = 0; i < vox_migrations_count; i++) {
		const vox_json *m = vox_json_at(list, i);
		assert_string_equal(vox_json_str(vox_json_get(m, "name")),
				    vox_migrations[i].name);
		assert_string_equal(vox_json_str(vox_json_get(m, "state")), "pending");
		assert_null(vox_json_get(m, "applied_at"));
	}
	assert_int_equal(vox_json_int(vox_json_get(j, "pending")),
			 (int64_t)vox_migrations_count);
	vox_json_free(j);
	th_run_release(&r);
	th_run("voxctl", text, env, NULL, 20000, &r);
	th_run_expect(&r, 0, NULL);
	char want[64];
	snprintf(want, sizeof(want), "\n%zu pending\n", vox_migrations_count);
	assert_non_null(strstr(r.out.data, want));
	th_run_release(&r);

	assert_int_equal(apply_all(dsn), (int)vox_migrations_count);
	th_run("voxctl", status, env, NULL, 20000, &r);
	th_run_expect(&r, 0, NULL);
	j = vox_json_parse(r.out.data, r.out.len, NULL);
	assert_non_null(j);
	list = vox_json_get(j, "migrations");
	assert_int_equal(vox_json_len(list), vox_migrations_count);
	for (size_t i = 0; i < vox_migrations_count; i++) {
		const vox_json *m = vox_json_at(list, i);
		assert_string_equal(vox_json_str(vox_json_get(m, "state")), "applied");
		assert_non_null(vox_json_str(vox_json_get(m, "applied_at")));
	}
	assert_int_equal(vox_json_int(vox_json_get(j, "pending")), 0);
	vox_json_free(j);
	th_run_release(&r);
	th_run("voxctl", text, env, NULL, 20000, &r);
	th_run_expect(&r, 0, NULL);
	assert_non_null(strstr(r.out.data, "\n0 pending\n"));
	th_run_release(&r);
}

static void test_voxctl_reports_unreachable(void **state)
{
	(void)state;
	char cmd[1024];
	setenv("VOX_PG_DSN", "host=127.0.0.1 port=1 dbname=x connect_timeout=2", 1);
	snprintf(cmd, sizeof(cmd), "%s migrate 2>/dev/null", th_bin("voxctl"));
	int ws = system(cmd);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 3);
	unsetenv("VOX_PG_DSN");
	ws = system(cmd);
	assert_int_equal(WEXITSTATUS(ws), 2);
}

/* The money columns, bigint since 0008. */
static const struct {
	const char *table, *column;
} money_columns[] = {
	{"organizations", "wallet_balance_pence"},
	{"organizations", "debt_limit_pence"},
	{"organizations", "low_balance_pence"},
	{"organizations", "unbilled_pence"},
	{"credit_transactions", "amount_pence"},
	{"credit_transactions", "balance_before_pence"},
	{"credit_transactions", "balance_after_pence"},
	{"credit_transactions", "shortfall_pence"},
	{"call_charges", "charge_pence"},
	{"call_charges", "deducted_pence"},
	{"call_charges", "shortfall_pence"},
};

static long long column_is(PGconn *c, const char *table, const char *column,
			   const char *type)
{
	return th_pg_intf(c, "SELECT count(*) FROM information_schema.columns"
			  " WHERE table_schema = 'public' AND table_name = '%s'"
			  " AND column_name = '%s' AND data_type = '%s'",
			  table, column, type);
}

/* A database of the replaced system upgrades in place: the migrations
 * before 0008 are applied and hold rows (one of them a ledger row the
 * NOT VALID sign check would refuse), then 0008 turns every money column
 * into bigint, keeps every value and every constraint as it was, and
 * amounts past 2^31 fit. */
static void test_money_columns_become_bigint_in_place(void **state)
{
	(void)state;
	char dsn[512];
	th_pg_create_db("mig_bigint", dsn, sizeof(dsn));
	size_t seeded = 0, before = 0;
	while (seeded < vox_migrations_count &&
	       strncmp(vox_migrations[seeded].name, "0003", 4) < 0)
		seeded++;
	while (before < vox_migrations_count &&
	       strncmp(vox_migrations[before].name, "0008", 4) < 0)
		before++;
	assert_int_equal(seeded, 2);
	assert_true(before >= 6);
	assert_true(before < vox_migrations_count);
	assert_string_equal(vox_migrations[before].name, "0008_money_bigint");

	vox_buf err;
	vox_buf_init(&err);
	int applied = -1;
	PGconn *c = th_pg_connect(dsn);
	/* the replaced system's rows, before vox's own migrations: a
	 * deduction stored as a positive amount, which 0003's NOT VALID sign
	 * check lets stay */
	assert_int_equal(vox_migrate_apply(c, vox_migrations, seeded, &applied, &err),
			 VOX_OK);
	th_pg_ok(c, "INSERT INTO organizations (id, name, email, wallet_balance_pence,"
		    " debt_limit_pence) VALUES ('00000000-0000-4000-8000-0000000000b1',"
		    " 'old', 'o@x', 2147483647, 2000000000)");
	th_pg_ok(c, "INSERT INTO credit_transactions (org_id, amount_pence, type,"
		    " balance_before_pence, balance_after_pence) VALUES"
		    " ('00000000-0000-4000-8000-0000000000b1', 70, 'deduction',"
		    " -2147483648, 2147483647)");
	assert_int_equal(vox_migrate_apply(c, vox_migrations, before, &applied, &err),
			 VOX_OK);
	for (size_t i = 0; i < VOX_NELEM(money_columns); i++)
		if (strcmp(money_columns[i].column, "unbilled_pence") != 0)
			assert_int_equal(column_is(c, money_columns[i].table,
						   money_columns[i].column, "integer"), 1);
	th_pg_ok(c, "UPDATE organizations SET low_balance_pence = 1500");
	th_pg_ok(c, "INSERT INTO call_charges (call_id, org_id, duration_seconds,"
		    " rate_per_minute, charge_pence, deducted_pence, shortfall_pence,"
		    " event_id) VALUES ('00000000-0000-4000-8000-0000000000c1',"
		    " '00000000-0000-4000-8000-0000000000b1', 60, 70, 70, 30, 40, 'e')");

	assert_int_equal(vox_migrate_apply(c, vox_migrations, vox_migrations_count,
					   &applied, &err), VOX_OK);
	assert_int_equal(applied, (int)(vox_migrations_count - before));
	vox_buf_release(&err);
	for (size_t i = 0; i < VOX_NELEM(money_columns); i++) {
		if (column_is(c, money_columns[i].table, money_columns[i].column,
			      "bigint") != 1)
			fprintf(stderr, "%s.%s is not bigint\n", money_columns[i].table,
				money_columns[i].column);
		assert_int_equal(column_is(c, money_columns[i].table,
					   money_columns[i].column, "bigint"), 1);
	}
	/* not money: still integer */
	assert_int_equal(column_is(c, "call_charges", "duration_seconds", "integer"), 1);
	assert_int_equal(column_is(c, "call_charges", "rate_per_minute", "integer"), 1);
	/* every value kept */
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM organizations WHERE"
		" wallet_balance_pence = 2147483647 AND debt_limit_pence = 2000000000"
		" AND low_balance_pence = 1500"), 1);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM credit_transactions WHERE"
		" amount_pence = 70 AND balance_before_pence = -2147483648"
		" AND balance_after_pence = 2147483647 AND shortfall_pence = 0"), 1);
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM call_charges WHERE"
		" charge_pence = 70 AND deducted_pence = 30 AND shortfall_pence = 40"), 1);
	/* the sign check is still there and still not validated */
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM pg_constraint WHERE"
		" conname = 'credit_transactions_sign_check' AND NOT convalidated"), 1);
	/* and the other checks on money columns still refuse */
	static const char *const refused[] = {
		"UPDATE organizations SET debt_limit_pence = -1",
		"UPDATE organizations SET low_balance_pence = -1",
		"INSERT INTO credit_transactions (org_id, amount_pence, type) VALUES"
		" ('00000000-0000-4000-8000-0000000000b1', -5, 'topup')",
		"INSERT INTO call_charges (call_id, org_id, duration_seconds,"
		" rate_per_minute, charge_pence, deducted_pence, shortfall_pence,"
		" event_id) VALUES ('00000000-0000-4000-8000-0000000000c2',"
		" '00000000-0000-4000-8000-0000000000b1', 60, 70, 70, 30, 30, 'e')",
	};
	for (size_t i = 0; i < VOX_NELEM(refused); i++) {
		PGresult *r = PQexec(c, refused[i]);
		assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
		assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514");
		PQclear(r);
	}
	/* the ledger is still append-only */
	PGresult *r = PQexec(c, "UPDATE credit_transactions SET amount_pence = 1");
	assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	/* amounts past 2^31 fit */
	th_pg_ok(c, "UPDATE organizations SET wallet_balance_pence = 9223372036854775807,"
		    " debt_limit_pence = 9223372036854775807,"
		    " low_balance_pence = 5000000000");
	th_pg_ok(c, "INSERT INTO credit_transactions (org_id, amount_pence, type,"
		    " balance_before_pence, balance_after_pence) VALUES"
		    " ('00000000-0000-4000-8000-0000000000b1', 5000000000, 'topup',"
		    " 0, 5000000000)");
	assert_int_equal(th_pg_int(c, "SELECT sum(amount_pence) FROM credit_transactions"),
			 5000000070LL);
	PQfinish(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_database_gets_the_seed_schema),
		cmocka_unit_test(test_reapply_is_a_noop),
		cmocka_unit_test(test_concurrent_runners_are_safe),
		cmocka_unit_test(test_edited_migration_is_refused),
		cmocka_unit_test(test_failing_migration_leaves_no_trace),
		cmocka_unit_test(test_rls_role_sees_only_its_org),
		cmocka_unit_test(test_status_lists_every_migration),
		cmocka_unit_test(test_voxctl_reports_unreachable),
		cmocka_unit_test(test_money_columns_become_bigint_in_place),
		cmocka_unit_test(test_org_references_checked_per_statement),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
