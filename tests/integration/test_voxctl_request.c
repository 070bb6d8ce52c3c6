/*
 * Integration: voxctl request, the query shorthands (wallet, calls, call,
 * hot-leads), services and credentials, run as the built binary against a
 * private nats-server, a migrated database seeded with one org, and real
 * vox-query and vox-vault actors. Output is parsed with core/json.h; the
 * exit codes of bad input (2), server errors (1) and nothing answering (3)
 * are checked, and the secret put through credentials never shows outside
 * `credentials get`.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <unistd.h>

#include "core/json.h"
#include "harness.h"

#define ORG_A "a0000000-0000-4000-8000-00000000000a"
#define ORG_X "e0000000-0000-4000-8000-0000000000ee" /* never inserted */
#define CALL_1 "ca000000-0000-4000-8000-000000000001"
#define CALL_2 "ca000000-0000-4000-8000-000000000002"
#define CALL_3 "ca000000-0000-4000-8000-000000000003"
#define CALL_X "ca000000-0000-4000-8000-0000000000ff"
#define SECRET "{\"auth_token\":\"tw-7f3e9a2b-TOP-SECRET-d41d8c\"}"
#define VAULT_KEY "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="

typedef struct fixture {
	th_nats nats;
	char dsn[512];
	char query_dsn[768];
	char env_url[128];
	char env_query_dsn[800];
	char env_owner_dsn[600];
	char env_keys[128];
	char qlog[600], vlog[600];
	pid_t query, vault;
	PGconn *db;
} fixture;

static fixture *F;

/* ---- running voxctl ------------------------------------------------------- */

/* Run voxctl with the NULL-ended arguments after argv[0]. */
static void run_in(th_run_result *r, const char *stdin_data, const char *a0, ...)
{
	const char *argv[32];
	int n = 0;
	va_list ap;
	argv[n++] = "voxctl";
	argv[n++] = a0;
	va_start(ap, a0);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	char *env[] = {F->env_url, NULL};
	th_run("voxctl", argv, env, stdin_data, 20000, r);
}

#define run(r, ...) run_in(r, NULL, __VA_ARGS__, (const char *)NULL)

static void expect_code(th_run_result *r, int code)
{
	if (r->code != code)
		fprintf(stderr, "exit %d (want %d)\nstdout: %.*s\nstderr: %.*s\n", r->code,
			code, (int)r->out.len, r->out.data ? r->out.data : "",
			(int)r->err.len, r->err.data ? r->err.data : "");
	assert_int_equal(r->code, code);
}

/* stderr contains needle, on one line. */
static void expect_err(th_run_result *r, const char *needle)
{
	vox_buf_putc(&r->err, '\0');
	r->err.len--;
	if (!strstr(r->err.data, needle))
		fprintf(stderr, "stderr lacks '%s': %s\n", needle, r->err.data);
	assert_non_null(strstr(r->err.data, needle));
	/* one line */
	const char *nl = strchr(r->err.data, '\n');
	assert_true(nl == NULL || nl[1] == '\0');
}

static bool out_has(th_run_result *r, const char *needle)
{
	vox_buf_putc(&r->out, '\0');
	r->out.len--;
	return r->out.data && strstr(r->out.data, needle) != NULL;
}

/* Parse stdout as one JSON document (fails the test otherwise). */
static vox_json *out_json(th_run_result *r)
{
	size_t at = 0;
	vox_json *v = vox_json_parse(r->out.data ? r->out.data : "", r->out.len, &at);
	if (!v)
		fprintf(stderr, "stdout is not JSON (byte %zu): %.*s\n", at,
			(int)r->out.len, r->out.data ? r->out.data : "");
	assert_non_null(v);
	return v;
}

static long long jint(const vox_json *o, const char *k)
{
	const vox_json *v = vox_json_get(o, k);
	assert_int_equal(vox_json_type_of(v), VOX_JSON_INT);
	return vox_json_int(v);
}

static const char *jstr(const vox_json *o, const char *k)
{
	const vox_json *v = vox_json_get(o, k);
	assert_int_equal(vox_json_type_of(v), VOX_JSON_STRING);
	return vox_json_str(v);
}

/* ---- fixture ------------------------------------------------------------- */

static void seed(PGconn *db)
{
	th_pg_okf(db, "INSERT INTO organizations (id, name, email, wallet_balance_pence,"
		      " debt_limit_pence, unbilled_pence, low_balance_pence)"
		      " VALUES ('%s', 'Riverside Dental', 'a@example.com', 180, 500, 30, 200)",
		  ORG_A);
	th_pg_okf(db, "INSERT INTO calls (id, org_id, call_direction, from_number, to_number,"
		      " status, duration_seconds, created_at) VALUES"
		      " ('%s', '%s', 'inbound', '+447700900001', '+442071838750', 'completed',"
		      "  61, '2026-11-01 09:00:00+00'),"
		      " ('%s', '%s', 'outbound', '+447700900002', '+442071838750', 'failed',"
		      "  0, '2026-11-01 10:00:00+00'),"
		      " ('%s', '%s', 'inbound', '+447700900003', '+442071838750', 'completed',"
		      "  300, '2026-11-01 11:00:00+00')",
		  CALL_1, ORG_A, CALL_2, ORG_A, CALL_3, ORG_A);
	th_pg_okf(db, "INSERT INTO contacts (id, org_id, phone, first_name, last_name,"
		      " lead_status, lead_score)"
		      " VALUES ('c0000000-0000-4000-8000-0000000000a1', '%s', '+447700900001',"
		      "  'Priya', 'Shah', 'hot', 91)",
		  ORG_A);
	th_pg_okf(db, "INSERT INTO hot_lead_alerts (org_id, contact_id, call_id, lead_name,"
		      " lead_phone, lead_score, urgency_level, summary, created_at)"
		      " SELECT '%s', 'c0000000-0000-4000-8000-0000000000a1', gen_random_uuid(),"
		      "  'Priya Shah', '+447700900001', 80 + i, 'high', 'alert ' || i,"
		      "  timestamptz '2026-11-02 10:00:00+00' + i * interval '1 second'"
		      " FROM generate_series(1, 3) i",
		  ORG_A);
}

/* Run voxctl argv until it exits 0 (about 10 s at most). */
static void wait_ok(const char *what, const char *a0, const char *a1, const char *a2)
{
	for (int i = 0; i < 100; i++) {
		th_run_result r;
		run(&r, a0, a1, a2);
		int code = r.code;
		th_run_release(&r);
		if (code == 0)
			return;
		th_sleep_ms(100);
	}
	fail_msg("%s does not answer (see %s, %s)", what, F->qlog, F->vlog);
}

static int group_setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	F = f;
	*state = f;
	th_nats_start(&f->nats);
	th_pg_migrated_db("voxctl_req", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
	seed(f->db);
	const char *name = strstr(f->dsn, "dbname=");
	assert_non_null(name);
	snprintf(f->query_dsn, sizeof(f->query_dsn), "%s %s",
		 th_env("VOX_PG_QUERY_DSN"), name);
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_query_dsn, sizeof(f->env_query_dsn), "VOX_PG_DSN=%s",
		 f->query_dsn);
	snprintf(f->env_owner_dsn, sizeof(f->env_owner_dsn), "VOX_PG_DSN=%s", f->dsn);
	snprintf(f->env_keys, sizeof(f->env_keys), "VOX_VAULT_KEYS=1 %s", VAULT_KEY);
	snprintf(f->qlog, sizeof(f->qlog), "%s/voxctl-query-%ld.log",
		 th_env("VOX_TEST_TMP"), (long)getpid());
	snprintf(f->vlog, sizeof(f->vlog), "%s/voxctl-vault-%ld.log",
		 th_env("VOX_TEST_TMP"), (long)getpid());
	char *qenv[] = {f->env_url, f->env_query_dsn, NULL};
	f->query = th_spawn("vox-query", qenv, f->qlog);
	char *venv[] = {f->env_url, f->env_owner_dsn, f->env_keys, NULL};
	f->vault = th_spawn("vox-vault", venv, f->vlog);
	wait_ok("vox-query", "wallet", ORG_A, NULL);
	wait_ok("vox-vault", "credentials", "list", ORG_A);
	return 0;
}

/* Stops everything, also after a failed assertion. */
static int group_teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	if (f->query > 0)
		th_stop(f->query, SIGTERM, 10000);
	if (f->vault > 0)
		th_stop(f->vault, SIGTERM, 10000);
	th_nats_stop(&f->nats);
	PQfinish(f->db);
	free(f);
	return 0;
}

/* ---- the query shorthands ------------------------------------------------- */

static void test_wallet(void **state)
{
	(void)state;
	th_run_result r;
	run(&r, "wallet", ORG_A);
	expect_code(&r, 0);
	vox_json *v = out_json(&r);
	assert_int_equal(jint(v, "balance_pence"), 180);
	assert_int_equal(jint(v, "debt_limit_pence"), 500);
	assert_int_equal(jint(v, "available_pence"), 680);
	assert_int_equal(jint(v, "unbilled_pence"), 30);
	assert_false(vox_json_bool(vox_json_get(v, "in_debt")));
	vox_json_free(v);
	th_run_release(&r);

	/* --compact, --server before the command */
	char server[100];
	snprintf(server, sizeof(server), "--server=%s", F->nats.url);
	run(&r, "--compact", server, "wallet", ORG_A);
	expect_code(&r, 0);
	assert_true(out_has(&r, "\"balance_pence\":180"));
	th_run_release(&r);

	/* bad org: refused locally */
	run(&r, "wallet", "not-a-uuid");
	expect_code(&r, 2);
	expect_err(&r, "not an org id");
	th_run_release(&r);
	run(&r, "wallet");
	expect_code(&r, 2);
	th_run_release(&r);
	run(&r, "wallet", ORG_A, "--bogus");
	expect_code(&r, 2);
	expect_err(&r, "unknown option");
	th_run_release(&r);

	/* an org vox-query does not know: 404 from the server */
	run(&r, "wallet", ORG_X);
	expect_code(&r, 1);
	expect_err(&r, "404");
	expect_err(&r, "query.wallet." ORG_X);
	th_run_release(&r);

	/* --help prints the usage */
	run(&r, "wallet", "--help");
	expect_code(&r, 0);
	assert_true(out_has(&r, "voxctl wallet <org_id>"));
	th_run_release(&r);
	/* and so does voxctl help wallet, not the general usage */
	run(&r, "help", "wallet");
	expect_code(&r, 0);
	assert_true(out_has(&r, "voxctl wallet <org_id>"));
	assert_false(out_has(&r, "commands:"));
	th_run_release(&r);
	run(&r, "help", "walet");
	expect_code(&r, 2);
	expect_err(&r, "unknown command 'walet'");
	th_run_release(&r);
}

static void test_calls(void **state)
{
	(void)state;
	th_run_result r;
	run(&r, "calls", ORG_A, "--limit", "2");
	expect_code(&r, 0);
	vox_json *v = out_json(&r);
	const vox_json *items = vox_json_get(v, "items");
	assert_int_equal(vox_json_len(items), 2);
	/* newest first */
	assert_string_equal(jstr(vox_json_at(items, 0), "id"), CALL_3);
	assert_string_equal(jstr(vox_json_at(items, 1), "id"), CALL_2);
	/* timestamps come out as RFC 3339 text */
	assert_string_equal(jstr(vox_json_at(items, 0), "created_at"),
			    "2026-11-01T11:00:00.000000000Z");
	char *next = vox_strndup(jstr(v, "next"), strlen(jstr(v, "next")));
	vox_json_free(v);
	th_run_release(&r);

	/* the next page by its cursor */
	run(&r, "calls", ORG_A, "--limit=2", "--before", next);
	expect_code(&r, 0);
	v = out_json(&r);
	items = vox_json_get(v, "items");
	assert_int_equal(vox_json_len(items), 1);
	assert_string_equal(jstr(vox_json_at(items, 0), "id"), CALL_1);
	assert_int_equal(jint(vox_json_at(items, 0), "duration_seconds"), 61);
	assert_int_equal(vox_json_type_of(vox_json_get(v, "next")), VOX_JSON_NULL);
	vox_json_free(v);
	th_run_release(&r);
	free(next);

	/* filters: status, direction, a time window */
	run(&r, "calls", ORG_A, "--status", "failed");
	expect_code(&r, 0);
	v = out_json(&r);
	items = vox_json_get(v, "items");
	assert_int_equal(vox_json_len(items), 1);
	assert_string_equal(jstr(vox_json_at(items, 0), "id"), CALL_2);
	vox_json_free(v);
	th_run_release(&r);

	run(&r, "calls", ORG_A, "--direction", "inbound", "--since",
	    "2026-11-01T09:30:00Z", "--until", "2026-11-01T12:00:00+01:00");
	expect_code(&r, 0);
	v = out_json(&r);
	items = vox_json_get(v, "items");
	/* inbound, created from 09:30 to 11:00 UTC (exclusive): none */
	assert_int_equal(vox_json_len(items), 0);
	vox_json_free(v);
	th_run_release(&r);

	run(&r, "calls", ORG_A, "--direction", "inbound", "--since",
	    "2026-11-01T09:30:00Z", "--until", "2026-11-01T12:00:01+01:00");
	expect_code(&r, 0);
	v = out_json(&r);
	items = vox_json_get(v, "items");
	assert_int_equal(vox_json_len(items), 1);
	assert_string_equal(jstr(vox_json_at(items, 0), "id"), CALL_3);
	vox_json_free(v);
	th_run_release(&r);

	/* bad input, refused before anything is sent */
	static const char *const bad[][3] = {
		{"--status", "done", "--status"},
		{"--direction", "sideways", "--direction"},
		{"--limit", "0", "--limit"},
		{"--limit", "101", "--limit"},
		{"--limit", "ten", "--limit"},
		{"--since", "yesterday", "--since"},
		{"--until", "2026-13-01T00:00:00Z", "--until"},
	};
	for (size_t i = 0; i < VOX_NELEM(bad); i++) {
		run(&r, "calls", ORG_A, bad[i][0], bad[i][1]);
		expect_code(&r, 2);
		expect_err(&r, bad[i][2]);
		th_run_release(&r);
	}
	run(&r, "calls", ORG_A, "--since", "2026-11-02T00:00:00Z", "--until",
	    "2026-11-01T00:00:00Z");
	expect_code(&r, 2);
	expect_err(&r, "after --since");
	th_run_release(&r);
	run(&r, "calls", ORG_A, "--limit");
	expect_code(&r, 2);
	expect_err(&r, "needs a value");
	th_run_release(&r);
	/* a cursor the server does not accept: 400, the caller's input */
	run(&r, "calls", ORG_A, "--before", "not-a-cursor");
	expect_code(&r, 2);
	expect_err(&r, "400");
	th_run_release(&r);
}

static void test_call(void **state)
{
	(void)state;
	th_run_result r;
	run(&r, "call", ORG_A, CALL_1);
	expect_code(&r, 0);
	vox_json *v = out_json(&r);
	assert_string_equal(jstr(v, "id"), CALL_1);
	assert_string_equal(jstr(v, "org_id"), ORG_A);
	assert_string_equal(jstr(v, "status"), "completed");
	assert_int_equal(jint(v, "duration_seconds"), 61);
	vox_json_free(v);
	th_run_release(&r);

	run(&r, "call", ORG_A, CALL_X);
	expect_code(&r, 1);
	expect_err(&r, "404");
	th_run_release(&r);

	run(&r, "call", ORG_A, "42");
	expect_code(&r, 2);
	expect_err(&r, "not a call id");
	th_run_release(&r);
	run(&r, "call", ORG_A);
	expect_code(&r, 2);
	th_run_release(&r);
	run(&r, "call", "x", CALL_1);
	expect_code(&r, 2);
	th_run_release(&r);
}

static void test_hot_leads(void **state)
{
	(void)state;
	th_run_result r;
	run(&r, "hot-leads", ORG_A);
	expect_code(&r, 0);
	vox_json *v = out_json(&r);
	const vox_json *items = vox_json_get(v, "items");
	assert_int_equal(vox_json_len(items), 3);
	assert_int_equal(jint(vox_json_at(items, 0), "lead_score"), 83);
	assert_int_equal(jint(vox_json_at(items, 2), "lead_score"), 81);
	vox_json_free(v);
	th_run_release(&r);

	run(&r, "hot-leads", ORG_A, "--limit", "1");
	expect_code(&r, 0);
	v = out_json(&r);
	items = vox_json_get(v, "items");
	assert_int_equal(vox_json_len(items), 1);
	assert_int_equal(jint(vox_json_at(items, 0), "lead_score"), 83);
	vox_json_free(v);
	th_run_release(&r);

	run(&r, "hot-leads", ORG_A, "--status", "x"); /* not an option here */
	expect_code(&r, 2);
	th_run_release(&r);
}

/* ---- voxctl request ------------------------------------------------------- */

static void test_request(void **state)
{
	(void)state;
	th_run_result r;
	/* no body is {} */
	run(&r, "request", "query.wallet." ORG_A);
	expect_code(&r, 0);
	vox_json *v = out_json(&r);
	assert_int_equal(jint(v, "balance_pence"), 180);
	vox_json_free(v);
	th_run_release(&r);

	/* since/until in JSON become timestamps (a string would be a 400) */
	run(&r, "request", "query.calls." ORG_A,
	    "{\"limit\": 5, \"since\": \"2026-11-01T09:30:00Z\"}");
	expect_code(&r, 0);
	v = out_json(&r);
	assert_int_equal(vox_json_len(vox_json_get(v, "items")), 2);
	vox_json_free(v);
	th_run_release(&r);

	/* the body from a file ('-' is stdin) */
	char body[128];
	snprintf(body, sizeof(body), "{\"call_id\": \"%s\"}", CALL_2);
	run_in(&r, body, "request", "query.call." ORG_A, "-f", "-", (const char *)NULL);
	expect_code(&r, 0);
	v = out_json(&r);
	assert_string_equal(jstr(v, "status"), "failed");
	vox_json_free(v);
	th_run_release(&r);

	/* bad JSON, a body that is not an object, a missing subject */
	run(&r, "request", "query.wallet." ORG_A, "{\"limit\": }");
	expect_code(&r, 2);
	expect_err(&r, "invalid JSON at byte");
	th_run_release(&r);
	run(&r, "request", "query.wallet." ORG_A, "[1]");
	expect_code(&r, 2);
	expect_err(&r, "JSON object");
	th_run_release(&r);
	run(&r, "request");
	expect_code(&r, 2);
	th_run_release(&r);
	run(&r, "request", "query.*." ORG_A);
	expect_code(&r, 2);
	th_run_release(&r);
	run(&r, "request", "query.calls." ORG_A, "-f", "/nonexistent/body.json");
	expect_code(&r, 2);
	expect_err(&r, "/nonexistent/body.json");
	th_run_release(&r);

	/* the server refuses a field: 400, shown with the code, exit 2 */
	run(&r, "request", "query.calls." ORG_A, "{\"limit\": 1000}");
	expect_code(&r, 2);
	expect_err(&r, "query.calls." ORG_A ": 400");
	th_run_release(&r);
	/* a time that does not parse stays a string; the server names it */
	run(&r, "request", "query.calls." ORG_A, "{\"since\": \"soon\"}");
	expect_code(&r, 2);
	expect_err(&r, "400");
	th_run_release(&r);

	/* 404 */
	run(&r, "request", "query.wallet." ORG_X, "{}");
	expect_code(&r, 1);
	expect_err(&r, "404");
	th_run_release(&r);

	/* nobody listens: 3 */
	run(&r, "request", "nobody.listens.here", "{}");
	expect_code(&r, 3);
	expect_err(&r, "no service answers");
	th_run_release(&r);

	/* NATS unreachable: 3 */
	run(&r, "--server", "nats://127.0.0.1:1", "request", "query.wallet." ORG_A);
	expect_code(&r, 3);
	expect_err(&r, "cannot reach NATS");
	th_run_release(&r);
}

/* ---- voxctl services ------------------------------------------------------ */

static void test_services(void **state)
{
	(void)state;
	th_run_result r;
	/* ls: one JSON array, an object per instance; lag null for the
	 * request-only actors */
	run(&r, "services");
	expect_code(&r, 0);
	vox_json *ls = vox_json_parse(r.out.data, r.out.len, NULL);
	assert_non_null(ls);
	int queries = 0, vaults = 0;
	for (size_t i = 0; i < vox_json_len(ls); i++) {
		const vox_json *row = vox_json_at(ls, i);
		const char *name = jstr(row, "name");
		queries += strcmp(name, "vox-query") == 0;
		vaults += strcmp(name, "vox-vault") == 0;
		assert_int_equal(strlen(jstr(row, "id")), 22);
		assert_true(vox_json_int(vox_json_get(row, "requests")) >= 0);
		if (strcmp(name, "vox-query") == 0)
			assert_int_equal(vox_json_type_of(vox_json_get(row, "lag")),
					 VOX_JSON_NULL);
	}
	assert_true(queries >= 1 && vaults >= 1);
	vox_json_free(ls);
	th_run_release(&r);

	/* --text: the table, a header plus one instance */
	run(&r, "services", "ls", "vox-query", "--wait=300", "--text");
	expect_code(&r, 0);
	assert_true(out_has(&r, "NAME"));
	assert_true(out_has(&r, "vox-query"));
	assert_false(out_has(&r, "vox-vault"));
	size_t lines = 0;
	for (size_t i = 0; i < r.out.len; i++)
		lines += r.out.data[i] == '\n';
	assert_int_equal(lines, 2);
	th_run_release(&r);

	/* info/stats/ping: one JSON document per line and instance */
	static const char *const verbs[][2] = {
		{"info", "io.nats.micro.v1.info_response"},
		{"stats", "io.nats.micro.v1.stats_response"},
		{"ping", "io.nats.micro.v1.ping_response"},
	};
	for (size_t k = 0; k < VOX_NELEM(verbs); k++) {
		run(&r, "services", verbs[k][0]);
		expect_code(&r, 0);
		int seen_query = 0, seen_vault = 0, n = 0;
		const char *p = r.out.data, *end = r.out.data + r.out.len;
		while (p && p < end && n < 20) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			assert_non_null(nl);
			vox_json *v = vox_json_parse(p, (size_t)(nl - p), NULL);
			assert_non_null(v);
			assert_string_equal(jstr(v, "type"), verbs[k][1]);
			seen_query += strcmp(jstr(v, "name"), "vox-query") == 0;
			seen_vault += strcmp(jstr(v, "name"), "vox-vault") == 0;
			assert_int_equal(strlen(jstr(v, "id")), 22);
			vox_json_free(v);
			p = nl + 1;
			n++;
		}
		assert_int_equal(seen_query, 1);
		assert_int_equal(seen_vault, 1);
		th_run_release(&r);
	}

	/* stats of vox-query count the requests made by the tests before */
	run(&r, "services", "stats", "vox-query");
	expect_code(&r, 0);
	vox_json *v = out_json(&r);
	const vox_json *eps = vox_json_get(v, "endpoints");
	long long reqs = 0;
	for (size_t i = 0; i < vox_json_len(eps); i++)
		reqs += jint(vox_json_at(eps, i), "num_requests");
	assert_true(reqs >= 10);
	vox_json_free(v);
	th_run_release(&r);

	/* no such service: nothing answers, 3 */
	run(&r, "services", "ping", "vox-nothing", "--wait", "200");
	expect_code(&r, 3);
	expect_err(&r, "no service answered");
	th_run_release(&r);
	/* bad usage */
	run(&r, "services", "list");
	expect_code(&r, 2);
	th_run_release(&r);
	run(&r, "services", "ls", "bad name!");
	expect_code(&r, 2);
	th_run_release(&r);
	run(&r, "services", "--wait", "0");
	expect_code(&r, 2);
	th_run_release(&r);
}

/* ---- voxctl credentials --------------------------------------------------- */

static void test_credentials(void **state)
{
	(void)state;
	th_run_result r;
	run(&r, "credentials", "put", ORG_A, "twilio", "--config", SECRET);
	expect_code(&r, 0);
	vox_json *v = out_json(&r);
	assert_int_equal(jint(v, "key_version"), 1);
	assert_int_equal(strlen(jstr(v, "id")), 36);
	assert_false(out_has(&r, "TOP-SECRET"));
	vox_json_free(v);
	th_run_release(&r);

	/* get: the sealed reply opened locally gives back exactly the secret */
	run(&r, "credentials", "get", ORG_A, "twilio");
	expect_code(&r, 0);
	assert_int_equal(r.out.len, strlen(SECRET));
	assert_memory_equal(r.out.data, SECRET, strlen(SECRET));
	assert_int_equal(r.err.len, 0);
	th_run_release(&r);
	/* the secret is stored encrypted, not as text */
	assert_int_equal(th_pg_intf(F->db, "SELECT count(*) FROM org_credentials"
					   " WHERE org_id = '%s' AND provider = 'twilio'",
				    ORG_A),
			 1);

	/* another type, the secret from stdin */
	run_in(&r, "inbound-secret-42", "credentials", "put", ORG_A, "twilio", "--type",
	       "inbound", "-f", "-", (const char *)NULL);
	expect_code(&r, 0);
	th_run_release(&r);
	run(&r, "credentials", "get", ORG_A, "twilio", "--type=inbound");
	expect_code(&r, 0);
	assert_int_equal(r.out.len, strlen("inbound-secret-42"));
	assert_memory_equal(r.out.data, "inbound-secret-42", r.out.len);
	th_run_release(&r);

	/* list: both, without secrets */
	run(&r, "credentials", "list", ORG_A);
	expect_code(&r, 0);
	v = out_json(&r);
	const vox_json *items = vox_json_get(v, "items");
	assert_int_equal(vox_json_len(items), 2);
	int inbound = 0, deflt = 0;
	for (size_t i = 0; i < vox_json_len(items); i++) {
		const vox_json *it = vox_json_at(items, i);
		assert_string_equal(jstr(it, "provider"), "twilio");
		inbound += strcmp(jstr(it, "type"), "inbound") == 0;
		deflt += strcmp(jstr(it, "type"), "default") == 0;
		assert_null(vox_json_get(it, "config"));
	}
	assert_int_equal(inbound, 1);
	assert_int_equal(deflt, 1);
	assert_false(out_has(&r, "TOP-SECRET"));
	assert_false(out_has(&r, "inbound-secret"));
	vox_json_free(v);
	th_run_release(&r);

	/* delete, then get is a 404 and delete says false */
	run(&r, "credentials", "delete", ORG_A, "twilio");
	expect_code(&r, 0);
	v = out_json(&r);
	assert_true(vox_json_bool(vox_json_get(v, "deleted")));
	vox_json_free(v);
	th_run_release(&r);
	run(&r, "credentials", "get", ORG_A, "twilio");
	expect_code(&r, 1);
	expect_err(&r, "404");
	assert_int_equal(r.out.len, 0);
	th_run_release(&r);
	run(&r, "credentials", "delete", ORG_A, "twilio");
	expect_code(&r, 0);
	v = out_json(&r);
	assert_false(vox_json_bool(vox_json_get(v, "deleted")));
	vox_json_free(v);
	th_run_release(&r);
	run(&r, "credentials", "list", ORG_A);
	expect_code(&r, 0);
	v = out_json(&r);
	assert_int_equal(vox_json_len(vox_json_get(v, "items")), 1);
	vox_json_free(v);
	th_run_release(&r);

	/* bad input */
	static const char *const bad[][6] = {
		{"credentials", "put", ORG_A, "myspace", "--config", "x"},
		{"credentials", "put", ORG_A, "twilio", "--type", "sideways"},
		{"credentials", "put", ORG_A, "twilio", "--config", ""},
		{"credentials", "put", ORG_A, "twilio", NULL, NULL},
		{"credentials", "get", "nope", "twilio", NULL, NULL},
		{"credentials", "get", ORG_A, NULL, NULL, NULL},
		{"credentials", "list", ORG_A, "twilio", NULL, NULL},
		{"credentials", "rename", ORG_A, "twilio", NULL, NULL},
		{"credentials", NULL, NULL, NULL, NULL, NULL},
	};
	for (size_t i = 0; i < VOX_NELEM(bad); i++) {
		run(&r, bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], bad[i][5]);
		expect_code(&r, 2);
		th_run_release(&r);
	}
	/* an org vox-vault does not know */
	run(&r, "credentials", "get", ORG_X, "stripe");
	expect_code(&r, 1);
	expect_err(&r, "404");
	th_run_release(&r);

	/* the secrets never reached the actors' logs */
	for (int i = 0; i < 2; i++) {
		const char *log = i ? F->vlog : F->qlog;
		assert_int_equal(th_count_in_log(log, "TOP-SECRET"), 0);
		assert_int_equal(th_count_in_log(log, "inbound-secret"), 0);
	}
}

/* Last: with vox-query stopped its subjects have no responders. */
static void test_no_responders(void **state)
{
	(void)state;
	th_stop(F->query, SIGTERM, 10000);
	F->query = 0;
	th_run_result r;
	run(&r, "wallet", ORG_A);
	expect_code(&r, 3);
	expect_err(&r, "no service answers");
	th_run_release(&r);
	run(&r, "calls", ORG_A, "--limit", "1");
	expect_code(&r, 3);
	th_run_release(&r);
	/* vox-vault still answers; services lists only it */
	run(&r, "services");
	expect_code(&r, 0);
	assert_true(out_has(&r, "vox-vault"));
	assert_false(out_has(&r, "vox-query"));
	th_run_release(&r);
	/* credentials with vox-vault stopped too */
	th_stop(F->vault, SIGTERM, 10000);
	F->vault = 0;
	run(&r, "credentials", "list", ORG_A);
	expect_code(&r, 3);
	th_run_release(&r);
	run(&r, "services", "--wait", "200");
	expect_code(&r, 3);
	th_run_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wallet),
		cmocka_unit_test(test_calls),
		cmocka_unit_test(test_call),
		cmocka_unit_test(test_hot_leads),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_no_responders),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
