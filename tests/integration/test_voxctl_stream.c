/*
 * Integration: `voxctl publish`, `voxctl tail` and `voxctl dlq` against a
 * private nats-server, a migrated database with one organization, and
 * vox-calls (which creates the streams and stores calls). Events
 * published from JSON are checked in Postgres; refused input must leave
 * the stream untouched; a poison message goes to the DLQ, is listed with
 * its reason, and a fixed version replayed from the DLQ is applied.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "core/json.h"
#include "harness.h"

#define ORG "5a000000-0000-4000-8000-00000000005a"
#define ORG2 "5b000000-0000-4000-8000-00000000005b" /* never inserted */
#define CALL_A "ca000000-0000-4000-8000-0000000000a1"
#define CALL_P "ca000000-0000-4000-8000-0000000000f1" /* the poison's call */

typedef struct fixture {
	th_nats nats;
	bool nats_up;
	char dsn[512];
	char env_url[128];
	char env_dsn[600];
	char log[600];
	pid_t actor;
	natsConnection *nc;
	jsCtx *js;
	PGconn *db;
} fixture;

static void expect_this_year(const char *t);

static int group_setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	*state = f;
	th_nats_start(&f->nats);
	f->nats_up = true;
	th_pg_migrated_db("vstream", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
	th_pg_okf(f->db, "INSERT INTO organizations (id, name, email)"
			 " VALUES ('%s', 'Stream Dental', 's@example.com')", ORG);
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
	snprintf(f->log, sizeof(f->log), "%s/vstream-calls-%ld.log",
		 th_env("VOX_TEST_TMP"), (long)getpid());
	char e_fetch[] = "VOX_FETCH_WAIT_MS=100";
	char *env[] = {f->env_url, f->env_dsn, e_fetch, NULL};
	f->actor = th_spawn("vox-calls", env, f->log);
	int t;
	for (t = 0; t < 200; t++) {
		if (th_count_in_log(f->log, "msg=\"started\"") > 0)
			break;
		if (!th_alive(f->actor)) {
			f->actor = 0;
			fail_msg("vox-calls exited at start (see %s)", f->log);
		}
		th_sleep_ms(100);
	}
	if (t == 200)
		fail_msg("vox-calls did not start (see %s)", f->log);
	th_js_connect(f->nats.url, NULL, &f->nc, &f->js);
	return 0;
}

static int group_teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	if (f->actor > 0)
		th_stop(f->actor, SIGTERM, 10000);
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->nc);
	if (f->nats_up)
		th_nats_stop(&f->nats);
	PQfinish(f->db);
	free(f);
	return 0;
}

/* ---- running voxctl -------------------------------------------------------- */

static void run_in(fixture *f, const char *stdin_data, const char *const argv[],
		   th_run_result *r)
{
	char *env[] = {f->env_url, NULL};
	th_run("voxctl", argv, env, stdin_data, 60000, r);
}

static void run(fixture *f, const char *const argv[], th_run_result *r)
{
	run_in(f, NULL, argv, r);
}


static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The JSON text of one output line (0-based), parsed. */
static vox_json *line_json(const char *out, int line)
{
	const char *p = out;
	for (int i = 0; i < line && p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	assert_non_null(p);
	const char *e = strchr(p, '\n');
	size_t n = e ? (size_t)(e - p) : strlen(p);
	vox_json *v = vox_json_parse(p, n, NULL);
	if (!v)
		fail_msg("not JSON: %.*s", (int)n, p);
	return v;
}

static long long json_int(const vox_json *obj, const char *key)
{
	const vox_json *v = vox_json_get(obj, key);
	if (!v || vox_json_type_of(v) != VOX_JSON_INT)
		fail_msg("no integer '%s'", key);
	return vox_json_int(v);
}

static const char *json_str(const vox_json *obj, const char *key)
{
	const vox_json *v = vox_json_get(obj, key);
	if (!v || vox_json_type_of(v) != VOX_JSON_STRING)
		fail_msg("no string '%s'", key);
	return vox_json_str(v);
}

static long long wait_sql(fixture *f, long long want, const char *sql)
{
	return th_wait_int(f->dsn, sql, want, 15000);
}

static void started_json(char *buf, size_t n, const char *event_id,
			 const char *call, const char *org)
{
	snprintf(buf, n,
		 "{\"event_id\": \"%s\", \"org_id\": \"%s\", \"call_id\": \"%s\","
		 " \"direction\": \"inbound\", \"from_number\": \"+447700900123\","
		 " \"to_number\": \"+442071838750\","
		 " \"started_at\": \"2026-11-24T10:00:00Z\"}",
		 event_id, org, call);
}

/* ---- publish ---------------------------------------------------------------- */

static void test_help(void **state)
{
	fixture *f = *state;
	th_run_result r;
	const char *cmds[] = {"publish", "tail", "dlq"};
	const char *want[] = {"voxctl publish <subject>", "voxctl tail [alert|dlq|events]",
			      "voxctl dlq replay --seq N"};
	for (size_t i = 0; i < VOX_NELEM(cmds); i++) {
		const char *argv[] = {"voxctl", cmds[i], "--help", NULL};
		run(f, argv, &r);
		th_run_expect(&r, 0, NULL);
		if (!strstr(r.out.data, want[i]))
			fail_msg("%s --help lacks '%s': %s", cmds[i], want[i], r.out.data);
		th_run_release(&r);
	}
}

static void test_publish_json_is_stored(void **state)
{
	fixture *f = *state;
	th_run_result r;
	char started[512], subject[128];
	started_json(started, sizeof(started), "vs-start-a", CALL_A, ORG);
	snprintf(subject, sizeof(subject), "call.started.%s", ORG);

	const char *pub[] = {"voxctl", "publish", subject, started, NULL};
	run(f, pub, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(count_lines(r.out.data), 1);
	vox_json *ack = line_json(r.out.data, 0);
	assert_string_equal(json_str(ack, "stream"), "EVENTS");
	long long seq = json_int(ack, "seq");
	assert_true(seq >= 1);
	assert_false(vox_json_bool(vox_json_get(ack, "duplicate")));
	vox_json_free(ack);
	th_run_release(&r);
	assert_int_equal(wait_sql(f, 1, "SELECT count(*) FROM calls WHERE id = '"
				  CALL_A "' AND org_id = '" ORG "' AND from_number ="
				  " '+447700900123' AND created_at ="
				  " '2026-11-24T10:00:00Z'"), 1);

	/* the same event again: JetStream's duplicate window drops it */
	run(f, pub, &r);
	th_run_expect(&r, 0, NULL);
	ack = line_json(r.out.data, 0);
	assert_true(vox_json_bool(vox_json_get(ack, "duplicate")));
	assert_int_equal(json_int(ack, "seq"), seq);
	vox_json_free(ack);
	th_run_release(&r);

	/* call.ended from a file */
	char path[600], ended[512];
	snprintf(path, sizeof(path), "%s/vstream-ended-%ld.json",
		 th_env("VOX_TEST_TMP"), (long)getpid());
	snprintf(ended, sizeof(ended),
		 "{\n  \"event_id\": \"vs-end-a\",\n  \"org_id\": \"%s\",\n"
		 "  \"call_id\": \"%s\",\n  \"ended_at\": \"2026-11-24T10:02:05.5Z\",\n"
		 "  \"duration_seconds\": 125,\n  \"status\": \"completed\"\n}\n",
		 ORG, CALL_A);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(ended, fp);
	fclose(fp);
	snprintf(subject, sizeof(subject), "call.ended.%s", ORG);
	const char *pub_file[] = {"voxctl", "publish", subject, "-f", path, NULL};
	run(f, pub_file, &r);
	th_run_expect(&r, 0, NULL);
	assert_non_null(strstr(r.out.data, "\"stream\":\"EVENTS\""));
	th_run_release(&r);
	unlink(path);
	assert_int_equal(wait_sql(f, 1, "SELECT count(*) FROM calls WHERE id = '"
				  CALL_A "' AND duration_seconds = 125 AND status ="
				  " 'completed' AND ended_at = '2026-11-24T10:02:05.5Z'"),
			 1);
}

static void test_publish_bad_input(void **state)
{
	fixture *f = *state;
	th_run_result r;
	char subject[128], bad_number[512], good[512], other_org[128];
	snprintf(subject, sizeof(subject), "call.started.%s", ORG);
	snprintf(other_org, sizeof(other_org), "call.started.%s", ORG2);
	started_json(good, sizeof(good), "vs-bad-1",
		     "ca000000-0000-4000-8000-0000000000b1", ORG);
	started_json(bad_number, sizeof(bad_number), "vs-bad-2",
		     "ca000000-0000-4000-8000-0000000000b2", ORG);
	char *plus = strstr(bad_number, "+447700900123");
	assert_non_null(plus);
	plus[0] = '0'; /* not E.164 */
	long long before = th_stream_count(f->js, "EVENTS");

	const char *not_json[] = {"voxctl", "publish", subject, "{\"event_id\": ", NULL};
	run(f, not_json, &r);
	th_run_expect(&r, 2, "invalid JSON at byte");
	th_run_release(&r);

	const char *bad_field[] = {"voxctl", "publish", subject, bad_number, NULL};
	run(f, bad_field, &r);
	th_run_expect(&r, 2, "from_number");
	assert_int_equal(r.out.len, 0);
	th_run_release(&r);

	/* a timestamp that is not RFC 3339 stays a string: the field is named */
	char bad_time[512];
	snprintf(bad_time, sizeof(bad_time), "%s", good);
	char *t = strstr(bad_time, "2026-11-24T10:00:00Z");
	assert_non_null(t);
	memcpy(t, "yesterday at ten    ", 20);
	const char *bad_ts[] = {"voxctl", "publish", subject, bad_time, NULL};
	run(f, bad_ts, &r);
	th_run_expect(&r, 2, "started_at");
	th_run_release(&r);

	/* the subject's org differs from the payload's */
	const char *mismatch[] = {"voxctl", "publish", other_org, good, NULL};
	run(f, mismatch, &r);
	th_run_expect(&r, 2, "org");
	th_run_release(&r);

	const char *bad_subject[] = {"voxctl", "publish", "call.dropped.x", good, NULL};
	run(f, bad_subject, &r);
	th_run_expect(&r, 2, "not an event subject");
	th_run_release(&r);

	const char *no_subject[] = {"voxctl", "publish", NULL};
	run(f, no_subject, &r);
	th_run_expect(&r, 2, "missing <subject>");
	th_run_release(&r);

	const char *bad_opt[] = {"voxctl", "publish", subject, "--frobnicate", NULL};
	run(f, bad_opt, &r);
	th_run_expect(&r, 2, "--frobnicate");
	th_run_release(&r);

	/* a stream whose second line is bad: nothing at all is published */
	char lines[2048];
	snprintf(lines, sizeof(lines), "%s\n%s\n", good, bad_number);
	const char *stdin_pub[] = {"voxctl", "publish", subject, NULL};
	run_in(f, lines, stdin_pub, &r);
	th_run_expect(&r, 2, "line 2");
	if (!strstr(r.err.data, "from_number"))
		fail_msg("stderr lacks the field: %s", r.err.data);
	assert_int_equal(r.out.len, 0);
	th_run_release(&r);

	assert_int_equal(th_stream_count(f->js, "EVENTS"), before);
}

static void test_publish_lines_from_stdin(void **state)
{
	fixture *f = *state;
	th_run_result r;
	char subject[128], lines[4096], one[512];
	size_t at = 0;
	snprintf(subject, sizeof(subject), "call.started.%s", ORG);
	for (int i = 1; i <= 3; i++) {
		char id[32], call[64];
		snprintf(id, sizeof(id), "vs-line-%d", i);
		snprintf(call, sizeof(call), "ca000000-0000-4000-8000-0000000000c%d", i);
		started_json(one, sizeof(one), id, call, ORG);
		at += (size_t)snprintf(lines + at, sizeof(lines) - at, "%s\n%s", one,
				       i == 2 ? "\n" : ""); /* a blank line too */
	}
	const char *pub[] = {"voxctl", "publish", subject, NULL};
	run_in(f, lines, pub, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(count_lines(r.out.data), 3);
	vox_json *a0 = line_json(r.out.data, 0), *a2 = line_json(r.out.data, 2);
	assert_int_equal(json_int(a2, "seq"), json_int(a0, "seq") + 2);
	vox_json_free(a0);
	vox_json_free(a2);
	th_run_release(&r);
	assert_int_equal(wait_sql(f, 3, "SELECT count(*) FROM calls WHERE id IN ("
				  "'ca000000-0000-4000-8000-0000000000c1',"
				  "'ca000000-0000-4000-8000-0000000000c2',"
				  "'ca000000-0000-4000-8000-0000000000c3')"), 3);

	/* subject "-": each line names its subject */
	char mixed[1024];
	started_json(one, sizeof(one), "vs-mixed-1",
		     "ca000000-0000-4000-8000-0000000000d1", ORG);
	snprintf(mixed, sizeof(mixed), "{\"subject\": \"%s\", \"payload\": %s}\n",
		 subject, one);
	const char *pub_mixed[] = {"voxctl", "publish", "-", NULL};
	run_in(f, mixed, pub_mixed, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(count_lines(r.out.data), 1);
	th_run_release(&r);
	assert_int_equal(wait_sql(f, 1, "SELECT count(*) FROM calls WHERE id ="
				  " 'ca000000-0000-4000-8000-0000000000d1'"), 1);

	/* no input at all */
	run_in(f, "", pub, &r);
	th_run_expect(&r, 2, "no JSON document");
	th_run_release(&r);
}

/* ---- tail ------------------------------------------------------------------- */

static void test_tail_since_start(void **state)
{
	fixture *f = *state;
	th_run_result r;
	const char *tail[] = {"voxctl", "tail", "events", "--org", ORG, "--since-start",
			      "--count", "2", "--timeout", "30", NULL};
	run(f, tail, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(count_lines(r.out.data), 2);
	vox_json *l0 = line_json(r.out.data, 0);
	assert_string_equal(json_str(l0, "subject"), "call.started." ORG);
	assert_int_equal(json_int(l0, "seq"), 1);
	expect_this_year(json_str(l0, "time"));
	assert_string_equal(json_str(vox_json_get(l0, "headers"), "Nats-Msg-Id"),
			    "vs-start-a");
	const vox_json *p = vox_json_get(l0, "payload");
	assert_string_equal(json_str(p, "call_id"), CALL_A);
	assert_string_equal(json_str(p, "started_at"),
			    "2026-11-24T10:00:00.000000000Z");
	vox_json_free(l0);
	th_run_release(&r);

	/* another org's events are not shown: none exist, so --timeout ends it */
	const char *other[] = {"voxctl", "tail", "events", "--org", ORG2,
			       "--since-start", "--timeout", "2", NULL};
	run(f, other, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(r.out.len, 0);
	th_run_release(&r);

	const char *bad[] = {"voxctl", "tail", "everything", NULL};
	run(f, bad, &r);
	th_run_expect(&r, 2, "alert, dlq or events");
	th_run_release(&r);
	const char *bad_org[] = {"voxctl", "tail", "alert", "--org", "acme", NULL};
	run(f, bad_org, &r);
	th_run_expect(&r, 2, "--org");
	th_run_release(&r);
	const char *bad_count[] = {"voxctl", "tail", "--count", "0", NULL};
	run(f, bad_count, &r);
	th_run_expect(&r, 2, "--count");
	th_run_release(&r);
}

typedef struct tail_job {
	fixture *f;
	th_run_result r;
	volatile int done;
} tail_job;

static void *tail_thread(void *arg)
{
	tail_job *j = arg;
	const char *argv[] = {"voxctl", "tail", "alert", "--org", ORG2, "--count", "1",
			      "--timeout", "30", NULL};
	run(j->f, argv, &j->r);
	__atomic_store_n(&j->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_tail_alert_new_messages(void **state)
{
	fixture *f = *state;
	char subject[128];
	snprintf(subject, sizeof(subject), "alert.hot_lead.%s", ORG2);
	/* an old alert that tail (from new messages) must not show */
	th_publish_raw(f->js, subject, "old", 3, "vs-alert-old");
	tail_job j = {.f = f};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, tail_thread, &j), 0);
	/* tail may not have its consumer yet: publish until it has shown one
	 * (bounded: 60 x 250 ms) */
	int sent = 0;
	for (int i = 0; i < 60 && !__atomic_load_n(&j.done, __ATOMIC_SEQ_CST); i++) {
		char id[32];
		snprintf(id, sizeof(id), "vs-alert-%d", i);
		th_publish_raw(f->js, subject, "\x81\xa1n\x07", 4, id); /* {"n": 7} */
		sent++;
		th_sleep_ms(250);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(sent > 0);
	th_run_expect(&j.r, 0, NULL);
	assert_int_equal(count_lines(j.r.out.data), 1);
	vox_json *l = line_json(j.r.out.data, 0);
	assert_string_equal(json_str(l, "subject"), subject);
	assert_true(json_int(l, "seq") >= 2); /* not the old one (seq 1) */
	assert_int_equal(json_int(vox_json_get(l, "payload"), "n"), 7);
	vox_json_free(l);
	th_run_release(&j.r);

	/* from the start: the old one, whose bytes are not msgpack */
	const char *first[] = {"voxctl", "tail", "alert", "--since-start", "--count",
			       "1", "--timeout", "30", NULL};
	th_run_result r;
	run(f, first, &r);
	th_run_expect(&r, 0, NULL);
	l = line_json(r.out.data, 0);
	assert_int_equal(json_int(l, "seq"), 1);
	assert_string_equal(json_str(vox_json_get(l, "payload"), "base64"), "b2xk");
	vox_json_free(l);
	th_run_release(&r);
}

/* ---- dlq -------------------------------------------------------------------- */

/* A time stamped by JetStream just now: RFC 3339 in the current year. */
static void expect_this_year(const char *t)
{
	char year[16];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	snprintf(year, sizeof(year), "%04d-", tm.tm_year + 1900);
	if (strncmp(t, year, 5) != 0 || strlen(t) < 20 || t[strlen(t) - 1] != 'Z')
		fail_msg("not a time of this year: %s", t);
}

/* call.ended for CALL_P with a duration the contract refuses. */
static void poison(msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
#define KS(k, v)                                                      \
	do {                                                          \
		msgpack_pack_str_with_body(&pk, k, strlen(k));        \
		msgpack_pack_str_with_body(&pk, v, strlen(v));        \
	} while (0)
	KS("event_id", "vs-poison");
	KS("org_id", ORG);
	KS("call_id", CALL_P);
	msgpack_pack_str_with_body(&pk, "ended_at", 8);
	msgpack_pack_int64(&pk, 1795514400000LL); /* ms: 2026-11-24 */
	msgpack_pack_str_with_body(&pk, "duration_seconds", 16);
	msgpack_pack_int64(&pk, 100000);
	KS("status", "completed");
#undef KS
}

static void test_dlq_list_show_replay(void **state)
{
	fixture *f = *state;
	th_run_result r;
	char subject[128], started[512];
	snprintf(subject, sizeof(subject), "call.started.%s", ORG);
	started_json(started, sizeof(started), "vs-start-p", CALL_P, ORG);
	const char *pub[] = {"voxctl", "publish", subject, started, NULL};
	run(f, pub, &r);
	th_run_expect(&r, 0, NULL);
	th_run_release(&r);

	long long dlq_before = th_stream_count(f->js, "DLQ");
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	poison(&sb);
	snprintf(subject, sizeof(subject), "call.ended.%s", ORG);
	th_publish_raw(f->js, subject, sb.data, sb.size, "vs-poison");
	msgpack_sbuffer_destroy(&sb);
	int i;
	for (i = 0; i < 150 && th_stream_count(f->js, "DLQ") <= dlq_before; i++)
		th_sleep_ms(100);
	if (i == 150)
		fail_msg("the poison message was not dead-lettered (see %s)", f->log);

	const char *list[] = {"voxctl", "dlq", "list", "--subject", "call.ended.*", NULL};
	run(f, list, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(count_lines(r.out.data), 1);
	vox_json *l = line_json(r.out.data, 0);
	assert_string_equal(json_str(l, "subject"), subject);
	long long seq = json_int(l, "seq");
	expect_this_year(json_str(l, "time"));
	const vox_json *h = vox_json_get(l, "headers");
	assert_string_equal(json_str(h, "Vox-Error-Reason"), "out_of_range");
	assert_string_equal(json_str(h, "Vox-Error-Code"), "400");
	assert_string_equal(json_str(h, "Vox-Actor"), "vox-calls");
	assert_non_null(strstr(json_str(h, "Vox-Error"), "duration_seconds"));
	assert_int_equal(json_int(vox_json_get(l, "payload"), "duration_seconds"),
			 100000);
	vox_json_free(l);
	th_run_release(&r);

	/* a filter that matches nothing lists nothing */
	const char *none[] = {"voxctl", "dlq", "list", "--subject", "lead.scored.*", NULL};
	run(f, none, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(r.out.len, 0);
	th_run_release(&r);

	char seqtxt[32];
	snprintf(seqtxt, sizeof(seqtxt), "%lld", seq);
	const char *show[] = {"voxctl", "--compact", "dlq", "show", "--seq", seqtxt, NULL};
	run(f, show, &r);
	th_run_expect(&r, 0, NULL);
	l = line_json(r.out.data, 0);
	assert_int_equal(json_int(l, "seq"), seq);
	assert_string_equal(json_str(vox_json_get(l, "headers"), "Vox-Actor"),
			    "vox-calls");
	vox_json_free(l);
	th_run_release(&r);

	const char *show_missing[] = {"voxctl", "dlq", "show", "--seq", "999999", NULL};
	run(f, show_missing, &r);
	th_run_expect(&r, 1, "no dead letter with seq 999999");
	th_run_release(&r);
	const char *show_noseq[] = {"voxctl", "dlq", "show", NULL};
	run(f, show_noseq, &r);
	th_run_expect(&r, 2, "--seq");
	th_run_release(&r);
	const char *bad_verb[] = {"voxctl", "dlq", "purge", NULL};
	run(f, bad_verb, &r);
	th_run_expect(&r, 2, "list, show or replay");
	th_run_release(&r);

	/* unchanged, it still breaks the contract: refused */
	const char *replay_same[] = {"voxctl", "dlq", "replay", "--seq", seqtxt, NULL};
	run(f, replay_same, &r);
	th_run_expect(&r, 2, "duration_seconds");
	th_run_release(&r);

	/* replaying every dead letter on the subject: the poison is skipped */
	long long events_before = th_stream_count(f->js, "EVENTS");
	const char *replay_all[] = {"voxctl", "dlq", "replay", "--subject",
				    "call.ended.*", NULL};
	run(f, replay_all, &r);
	th_run_expect(&r, 2, "still breaks the contract");
	assert_int_equal(r.out.len, 0);
	th_run_release(&r);
	/* --all: every dead letter, the same way (and never with --subject) */
	const char *replay_every[] = {"voxctl", "dlq", "replay", "--all", NULL};
	run(f, replay_every, &r);
	th_run_expect(&r, 2, "still breaks the contract");
	assert_int_equal(r.out.len, 0);
	assert_null(strstr(r.err.data, "dlq replay [")); /* a pipe: no bar */
	th_run_release(&r);
	/* on a terminal (script(1) gives it one) the same run draws a
	 * progress bar on stderr, to its end; in a pipe, above, none */
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "env %s script -qefc '%s dlq replay --all'"
		 " /dev/null 2>&1", f->env_url, th_bin("voxctl"));
	FILE *tty = popen(cmd, "r");
	assert_non_null(tty);
	char seen[8192];
	size_t got = fread(seen, 1, sizeof(seen) - 1, tty);
	seen[got] = '\0';
	pclose(tty);
	if (!strstr(seen, "dlq replay [") || !strstr(seen, "100%"))
		fail_msg("no progress bar on a terminal: %s", seen);
	const char *replay_mixed[] = {"voxctl", "dlq", "replay", "--all",
				      "--subject", "call.ended.*", NULL};
	run(f, replay_mixed, &r);
	th_run_expect(&r, 2, "--all replays every dead letter");
	th_run_release(&r);
	/* --opt=value as well as --opt value */
	char seq_eq[48];
	snprintf(seq_eq, sizeof(seq_eq), "--seq=%s", seqtxt);
	const char *show_eq[] = {"voxctl", "dlq", "show", seq_eq, NULL};
	run(f, show_eq, &r);
	th_run_expect(&r, 0, NULL);
	assert_non_null(strstr(r.out.data, "vs-poison"));
	th_run_release(&r);
	const char *replay_none[] = {"voxctl", "dlq", "replay", "--subject",
				     "payment.*.*", NULL};
	run(f, replay_none, &r);
	th_run_expect(&r, 1, "no dead letter on payment.*.*");
	th_run_release(&r);
	assert_int_equal(th_stream_count(f->js, "EVENTS"), events_before);

	/* a fix that is itself wrong: refused with the field */
	char path[600], fixed[512];
	snprintf(path, sizeof(path), "%s/vstream-fixed-%ld.json",
		 th_env("VOX_TEST_TMP"), (long)getpid());
	snprintf(fixed, sizeof(fixed),
		 "{\"event_id\": \"vs-poison\", \"org_id\": \"%s\", \"call_id\": \"%s\","
		 " \"ended_at\": \"2026-11-24T10:05:00Z\", \"duration_seconds\": %s,"
		 " \"status\": \"completed\"}",
		 ORG, CALL_P, "-5");
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(fixed, fp);
	fclose(fp);
	const char *replay_fix[] = {"voxctl", "dlq", "replay", "--seq", seqtxt,
				    "--file", path, NULL};
	run(f, replay_fix, &r);
	th_run_expect(&r, 2, "duration_seconds");
	th_run_release(&r);

	/* the real fix is applied */
	snprintf(fixed, sizeof(fixed),
		 "{\"event_id\": \"vs-poison\", \"org_id\": \"%s\", \"call_id\": \"%s\","
		 " \"ended_at\": \"2026-11-24T10:05:00Z\", \"duration_seconds\": %s,"
		 " \"status\": \"completed\"}",
		 ORG, CALL_P, "300");
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(fixed, fp);
	fclose(fp);
	run(f, replay_fix, &r);
	th_run_expect(&r, 0, NULL);
	l = line_json(r.out.data, 0);
	assert_int_equal(json_int(l, "dlq_seq"), seq);
	assert_string_equal(json_str(l, "subject"), subject);
	assert_true(vox_json_bool(vox_json_get(l, "fixed")));
	assert_false(vox_json_bool(vox_json_get(l, "duplicate")));
	assert_non_null(strstr(json_str(l, "msg_id"), "replay:"));
	vox_json_free(l);
	th_run_release(&r);
	assert_int_equal(wait_sql(f, 1, "SELECT count(*) FROM calls WHERE id = '"
				  CALL_P "' AND duration_seconds = 300 AND status ="
				  " 'completed'"), 1);

	/* the same replay again is a duplicate */
	run(f, replay_fix, &r);
	th_run_expect(&r, 0, NULL);
	l = line_json(r.out.data, 0);
	assert_true(vox_json_bool(vox_json_get(l, "duplicate")));
	vox_json_free(l);
	th_run_release(&r);
	unlink(path);

	const char *replay_both[] = {"voxctl", "dlq", "replay", NULL};
	run(f, replay_both, &r);
	th_run_expect(&r, 2, "--seq N");
	th_run_release(&r);
}

/* ---- unreachable ------------------------------------------------------------- */

static void test_unreachable(void **state)
{
	fixture *f = *state;
	th_run_result r;
	char subject[128], good[512];
	snprintf(subject, sizeof(subject), "call.started.%s", ORG);
	started_json(good, sizeof(good), "vs-unreach",
		     "ca000000-0000-4000-8000-0000000000e1", ORG);
	const char *pub[] = {"voxctl", "--server", "nats://127.0.0.1:1", "publish",
			     subject, good, NULL};
	run(f, pub, &r);
	th_run_expect(&r, 3, "cannot reach NATS");
	th_run_release(&r);
	/* invalid input is refused before connecting */
	const char *pub_bad[] = {"voxctl", "--server", "nats://127.0.0.1:1", "publish",
				 subject, "{}", NULL};
	run(f, pub_bad, &r);
	th_run_expect(&r, 2, "event_id");
	th_run_release(&r);
	const char *tail[] = {"voxctl", "--server", "nats://127.0.0.1:1", "tail",
			      "--count", "1", NULL};
	run(f, tail, &r);
	th_run_expect(&r, 3, "cannot reach NATS");
	th_run_release(&r);
	const char *list[] = {"voxctl", "--server", "nats://127.0.0.1:1", "dlq", "list",
			      NULL};
	run(f, list, &r);
	th_run_expect(&r, 3, "cannot reach NATS");
	th_run_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_publish_json_is_stored),
		cmocka_unit_test(test_publish_bad_input),
		cmocka_unit_test(test_publish_lines_from_stdin),
		cmocka_unit_test(test_tail_since_start),
		cmocka_unit_test(test_tail_alert_new_messages),
		cmocka_unit_test(test_dlq_list_show_replay),
		cmocka_unit_test(test_unreachable),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
