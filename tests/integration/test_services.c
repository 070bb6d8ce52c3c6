/*
 * Integration: the ADR-32 services protocol of a real actor process,
 * checked field by field with core/json.c. Each test runs
 * vox-test-actor against its own nats-server (fresh streams) and its own
 * database:
 *   - PING, INFO and STATS answer on $SRV.<VERB>, $SRV.<VERB>.<name> and
 *     $SRV.<VERB>.<name>.<id> with exactly the keys and JSON types ADR-32
 *     defines, one id across all nine, and nothing on a wrong name or id;
 *   - endpoint requests (echo, 409 errors) show in the STATS counters;
 *   - the consume statistics reach the STATS metadata as strings;
 *   - two instances both answer one $SRV.PING and share the endpoints'
 *     queue group; a stopped instance no longer answers;
 *   - an actor without a reload hook logs SIGHUP and keeps serving.
 * The actors and the nats-server are stopped in the teardown, so they go
 * away also when an assertion fails.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "harness.h"
#include "io/migrate.h"
#include "core/json.h"
#include "vox/client.h"

#define ACTOR "vox-test-actor"
#define ORG "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define MAX_ACTORS 2

/* ---- fixture: private nats-server, fresh database, actor processes ---- */

typedef struct fixture {
	th_nats nats;
	pid_t actors[MAX_ACTORS];
	char dsn[512];
	natsConnection *nc;
	jsCtx *js;
} fixture;

static int fx_setup(void **state)
{
	*state = vox_calloc(1, sizeof(fixture));
	return 0;
}

static int fx_teardown(void **state)
{
	fixture *f = *state;
	for (int i = 0; i < MAX_ACTORS; i++) {
		if (f->actors[i] > 0)
			th_stop(f->actors[i], SIGTERM, 10000);
		f->actors[i] = 0;
	}
	jsCtx_Destroy(f->js);
	if (f->nc)
		natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	free(f);
	return 0;
}

static void fx_start(fixture *f)
{
	th_nats_start(&f->nats);
	th_pg_create_db("svc", f->dsn, sizeof(f->dsn));

	int applied = -1;
	vox_buf err;
	vox_buf_init(&err);
	PGconn *c = th_pg_connect(f->dsn);
	vox_status st = vox_migrate_apply(c, vox_migrations,
					  vox_migrations_count, &applied, &err);
	if (st != VOX_OK)
		fprintf(stderr, "migrate: %s\n", err.data);
	vox_buf_release(&err);
	assert_int_equal(st, VOX_OK);
	th_pg_ok(c, "CREATE TABLE rt_processed (event_id text PRIMARY KEY);"
		    " CREATE TABLE rt_total (total bigint NOT NULL,"
		    " count bigint NOT NULL);"
		    " INSERT INTO rt_total VALUES (0, 0);"
		    " CREATE TABLE rt_check (v int CHECK (v >= 0))");
	PQfinish(c);

	assert_int_equal(natsConnection_ConnectTo(&f->nc, f->nats.url), NATS_OK);
	assert_int_equal(natsConnection_JetStream(&f->js, f->nc, NULL), NATS_OK);
}

static void fx_spawn(fixture *f, int i)
{
	char url[128], dsn[600], log[512];
	char wait[] = "VOX_FETCH_WAIT_MS=200";
	snprintf(url, sizeof(url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(dsn, sizeof(dsn), "VOX_PG_DSN=%s", f->dsn);
	snprintf(log, sizeof(log), "%s/svc-%ld-%s-%d.log", th_env("VOX_TEST_TMP"),
		 (long)getpid(), ACTOR, i);
	char *env[] = {url, dsn, wait, NULL};
	f->actors[i] = th_spawn(ACTOR, env, log);
}

/* Stop actor i with SIGTERM and require a clean exit. */
static void fx_stop(fixture *f, int i)
{
	int ws = th_stop(f->actors[i], SIGTERM, 10000);
	f->actors[i] = 0;
	assert_int_not_equal(ws, -1);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
}

/* ---- requests ---------------------------------------------------------- */

/* Request subj until a reply comes or about 20 s pass. */
static natsMsg *request_retry(natsConnection *nc, const char *subj)
{
	natsMsg *reply = NULL;
	for (int i = 0; i < 100; i++) {
		if (natsConnection_RequestString(&reply, nc, subj, "", 200) == NATS_OK)
			return reply;
		th_sleep_ms(100);
	}
	return NULL;
}

static vox_json *parse_msg(natsMsg *m)
{
	const char *data = natsMsg_GetData(m);
	int len = natsMsg_GetDataLength(m);
	vox_json *v = vox_json_parse(data, (size_t)len, NULL);
	if (!v)
		fprintf(stderr, "not valid JSON (%s): %.*s\n", natsMsg_GetSubject(m),
			len, data ? data : "");
	assert_non_null(v);
	return v;
}

static vox_json *request_json(natsConnection *nc, const char *subj)
{
	natsMsg *m = request_retry(nc, subj);
	if (!m)
		fprintf(stderr, "no reply on %s\n", subj);
	assert_non_null(m);
	vox_json *v = parse_msg(m);
	natsMsg_Destroy(m);
	return v;
}

/* Publish one request to subj and collect the replies that come within
 * ms. Returns how many were stored in out (up to max). */
static size_t gather(natsConnection *nc, const char *subj, long ms,
		     vox_json **out, size_t max)
{
	natsSubscription *sub = NULL;
	natsMsg *m = NULL;
	char inbox[64];
	size_t n = 0;
	static int counter;
	snprintf(inbox, sizeof(inbox), "_T.gather.%ld.%d", (long)getpid(),
		 counter++);
	assert_int_equal(natsConnection_SubscribeSync(&sub, nc, inbox), NATS_OK);
	assert_int_equal(natsConnection_Flush(nc), NATS_OK);
	assert_int_equal(natsConnection_PublishRequestString(nc, subj, inbox, ""),
			 NATS_OK);
	while (natsSubscription_NextMsg(&m, sub, ms) == NATS_OK) {
		if (n < max)
			out[n++] = parse_msg(m);
		natsMsg_Destroy(m);
	}
	natsSubscription_Destroy(sub);
	return n;
}

static void expect_no_reply(natsConnection *nc, const char *subj)
{
	natsMsg *m = NULL;
	natsStatus s = natsConnection_RequestString(&m, nc, subj, "", 500);
	if (s == NATS_OK)
		fprintf(stderr, "unexpected reply on %s: %.*s\n", subj,
			natsMsg_GetDataLength(m), natsMsg_GetData(m));
	natsMsg_Destroy(m);
	assert_int_not_equal(s, NATS_OK);
}

/* ---- field checks ------------------------------------------------------- */

static void expect_type(const vox_json *v, vox_json_type t, const char *what)
{
	if (!v) {
		fprintf(stderr, "%s: missing\n", what);
		fail();
	}
	if (vox_json_type_of(v) != t) {
		fprintf(stderr, "%s: %s, want %s\n", what,
			vox_json_type_name(vox_json_type_of(v)), vox_json_type_name(t));
		fail();
	}
}

/* obj is an object with exactly these keys (the parser refuses duplicates). */
static void expect_keys(const vox_json *obj, const char *what,
			const char *const *keys, size_t n)
{
	expect_type(obj, VOX_JSON_OBJECT, what);
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		if (!vox_json_get(obj, keys[i])) {
			fprintf(stderr, "%s: missing key \"%s\"\n", what, keys[i]);
			ok = false;
		}
	}
	for (size_t i = 0; i < vox_json_len(obj); i++) {
		bool known = false;
		for (size_t k = 0; k < n && !known; k++)
			known = strcmp(vox_json_key_at(obj, i), keys[k]) == 0;
		if (!known) {
			fprintf(stderr, "%s: extra key \"%s\"\n", what,
				vox_json_key_at(obj, i));
			ok = false;
		}
	}
	assert_true(ok);
	assert_int_equal(vox_json_len(obj), n);
}

static const char *expect_str(const vox_json *obj, const char *key)
{
	expect_type(vox_json_get(obj, key), VOX_JSON_STRING, key);
	return vox_json_str(vox_json_get(obj, key));
}

static long long expect_int(const vox_json *obj, const char *key)
{
	expect_type(vox_json_get(obj, key), VOX_JSON_INT, key);
	return vox_json_int(vox_json_get(obj, key));
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num2(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), with sane ranges. */
static bool is_rfc3339(const char *s)
{
	size_t n = strlen(s);
	if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
	    s[16] != ':' || !digits(s + 17, 2))
		return false;
	if (num2(s + 5) < 1 || num2(s + 5) > 12 || num2(s + 8) < 1 ||
	    num2(s + 8) > 31 || num2(s + 11) > 23 || num2(s + 14) > 59 ||
	    num2(s + 17) > 60)
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!digits(p, 1))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return true;
	return (*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2) &&
	       p[3] == ':' && digits(p + 4, 2) && num2(p + 1) <= 23 &&
	       num2(p + 4) <= 59;
}

/* One numeric SemVer identifier: 0 or no leading zero; NULL if none. */
static const char *semver_num(const char *p)
{
	if (*p == '0')
		return p + 1;
	if (*p < '1' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

/* Dot-separated non-empty identifiers of [0-9A-Za-z-]; NULL if none. */
static const char *semver_idents(const char *p)
{
	for (;;) {
		const char *start = p;
		while ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= 'a' && *p <= 'z') || *p == '-')
			p++;
		if (p == start)
			return NULL;
		if (*p != '.')
			return p;
		p++;
	}
}

/* MAJOR.MINOR.PATCH[-pre][+build] */
static bool is_semver(const char *s)
{
	const char *p = semver_num(s);
	for (int i = 0; i < 2 && p; i++)
		p = *p == '.' ? semver_num(p + 1) : NULL;
	if (p && *p == '-')
		p = semver_idents(p + 1);
	if (p && *p == '+')
		p = semver_idents(p + 1);
	return p && *p == '\0';
}

static bool is_base62_id(const char *s)
{
	if (strlen(s) != 22)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= 'a' && *s <= 'z')))
			return false;
	return true;
}

/* type, name, id, version, metadata; the id is copied to id (23 bytes). */
static void check_common(const vox_json *doc, const char *type, char *id)
{
	assert_string_equal(expect_str(doc, "type"), type);
	assert_string_equal(expect_str(doc, "name"), ACTOR);
	const char *got = expect_str(doc, "id");
	if (!is_base62_id(got))
		fprintf(stderr, "id \"%s\" is not 22 base62 characters\n", got);
	assert_true(is_base62_id(got));
	snprintf(id, 23, "%s", got);
	const char *version = expect_str(doc, "version");
	if (!is_semver(version))
		fprintf(stderr, "version \"%s\" is not SemVer\n", version);
	assert_true(is_semver(version));
	assert_string_equal(version, VOX_VERSION);
	const vox_json *meta = vox_json_get(doc, "metadata");
	assert_non_null(meta);
	if (vox_json_type_of(meta) != VOX_JSON_NULL) {
		expect_type(meta, VOX_JSON_OBJECT, "metadata");
		for (size_t i = 0; i < vox_json_len(meta); i++)
			expect_type(vox_json_at(meta, i), VOX_JSON_STRING, vox_json_key_at(meta, i));
	}
}

static const char *const ping_keys[] = {"type", "name", "id", "version",
					"metadata"};
static const char *const info_keys[] = {"type", "name", "id", "version",
					"metadata", "description", "endpoints"};
static const char *const stats_keys[] = {"type", "name", "id", "version",
					 "metadata", "started", "endpoints"};
static const char *const info_ep_keys[] = {"name", "subject", "queue_group",
					   "metadata"};
static const char *const stats_ep_keys[] = {
	"name", "subject", "queue_group", "num_requests", "num_errors",
	"last_error", "processing_time", "average_processing_time"};

typedef struct ep_want {
	const char *name;
	const char *subject;
	long long requests; /* -1: do not check the counters */
	long long errors;
	const char *last_error;
} ep_want;

static const ep_want endpoints_fresh[] = {
	{"echo", "test.echo.*", 0, 0, ""},
	{"fail", "test.fail.*", 0, 0, ""},
};

/* Echo counters vary (load-balanced); fail was never called. */
static const ep_want endpoints_any[] = {
	{"echo", "test.echo.*", -1, 0, ""},
	{"fail", "test.fail.*", 0, 0, ""},
};

static void check_ping(const vox_json *doc, char *id)
{
	expect_keys(doc, "ping", ping_keys, VOX_NELEM(ping_keys));
	check_common(doc, "io.nats.micro.v1.ping_response", id);
}

static void check_info(const vox_json *doc, char *id)
{
	expect_keys(doc, "info", info_keys, VOX_NELEM(info_keys));
	check_common(doc, "io.nats.micro.v1.info_response", id);
	assert_true(strlen(expect_str(doc, "description")) > 0);
	const vox_json *eps = vox_json_get(doc, "endpoints");
	expect_type(eps, VOX_JSON_ARRAY, "endpoints");
	assert_int_equal(vox_json_len(eps), 2);
	for (size_t i = 0; i < 2; i++) {
		const vox_json *ep = vox_json_at(eps, i);
		expect_keys(ep, "info endpoint", info_ep_keys,
			    VOX_NELEM(info_ep_keys));
		assert_string_equal(expect_str(ep, "name"), endpoints_fresh[i].name);
		assert_string_equal(expect_str(ep, "subject"),
				    endpoints_fresh[i].subject);
		assert_string_equal(expect_str(ep, "queue_group"), "q");
		expect_type(vox_json_get(ep, "metadata"), VOX_JSON_NULL, "endpoint metadata");
	}
}

/* Checks a STATS document; want has two entries (echo, fail). */
static void check_stats(const vox_json *doc, char *id, const ep_want *want)
{
	expect_keys(doc, "stats", stats_keys, VOX_NELEM(stats_keys));
	check_common(doc, "io.nats.micro.v1.stats_response", id);
	const char *started = expect_str(doc, "started");
	if (!is_rfc3339(started))
		fprintf(stderr, "started \"%s\" is not RFC 3339\n", started);
	assert_true(is_rfc3339(started));
	const vox_json *eps = vox_json_get(doc, "endpoints");
	expect_type(eps, VOX_JSON_ARRAY, "endpoints");
	assert_int_equal(vox_json_len(eps), 2);
	for (size_t i = 0; i < 2; i++) {
		const vox_json *ep = vox_json_at(eps, i);
		expect_keys(ep, "stats endpoint", stats_ep_keys,
			    VOX_NELEM(stats_ep_keys));
		assert_string_equal(expect_str(ep, "name"), want[i].name);
		assert_string_equal(expect_str(ep, "subject"), want[i].subject);
		assert_string_equal(expect_str(ep, "queue_group"), "q");
		long long req = expect_int(ep, "num_requests");
		long long errs = expect_int(ep, "num_errors");
		const char *last = expect_str(ep, "last_error");
		long long total = expect_int(ep, "processing_time");
		long long avg = expect_int(ep, "average_processing_time");
		assert_true(req >= 0 && errs >= 0 && errs <= req);
		if (want[i].requests < 0)
			continue;
		assert_int_equal(req, want[i].requests);
		assert_int_equal(errs, want[i].errors);
		assert_string_equal(last, want[i].last_error);
		if (req == 0) {
			assert_int_equal(total, 0);
			assert_int_equal(avg, 0);
		} else {
			assert_true(avg > 0);
			assert_true(total >= avg);
			assert_int_equal(avg, total / req);
		}
	}
}

/* An endpoint entry of a STATS document by name. */
static const vox_json *stats_endpoint(const vox_json *doc, const char *name)
{
	const vox_json *eps = vox_json_get(doc, "endpoints");
	for (size_t i = 0; i < vox_json_len(eps); i++)
		if (strcmp(vox_json_str(vox_json_get(vox_json_at(eps, i), "name")), name) == 0)
			return vox_json_at(eps, i);
	fprintf(stderr, "no endpoint %s in STATS\n", name);
	fail();
	return NULL;
}

/* Wait for the first instance's PING and return its id. */
static void wait_ping(fixture *f, char *id)
{
	vox_json *doc = request_json(f->nc, "$SRV.PING." ACTOR);
	check_ping(doc, id);
	vox_json_free(doc);
}

/* ---- tests ------------------------------------------------------------- */

static void test_ping_info_stats_on_every_subject(void **state)
{
	fixture *f = *state;
	char id[23], got[23], subj[128];
	static const char *verbs[] = {"PING", "INFO", "STATS"};
	fx_start(f);
	fx_spawn(f, 0);
	wait_ping(f, id);

	for (size_t v = 0; v < VOX_NELEM(verbs); v++) {
		for (int form = 0; form < 3; form++) {
			if (form == 0)
				snprintf(subj, sizeof(subj), "$SRV.%s", verbs[v]);
			else if (form == 1)
				snprintf(subj, sizeof(subj), "$SRV.%s.%s", verbs[v],
					 ACTOR);
			else
				snprintf(subj, sizeof(subj), "$SRV.%s.%s.%s",
					 verbs[v], ACTOR, id);
			vox_json *doc = request_json(f->nc, subj);
			if (v == 0)
				check_ping(doc, got);
			else if (v == 1)
				check_info(doc, got);
			else
				check_stats(doc, got, endpoints_fresh);
			assert_string_equal(got, id);
			vox_json_free(doc);
		}
		/* nothing answers for another name or another id */
		snprintf(subj, sizeof(subj), "$SRV.%s.vox-no-such-actor", verbs[v]);
		expect_no_reply(f->nc, subj);
		snprintf(subj, sizeof(subj), "$SRV.%s.%s.0000000000000000000000",
			 verbs[v], ACTOR);
		expect_no_reply(f->nc, subj);
	}
	fx_stop(f, 0);
}

static void test_endpoint_requests_show_in_stats(void **state)
{
	fixture *f = *state;
	char id[23], got[23], subj[128];
	natsMsg *m = NULL;
	fx_start(f);
	fx_spawn(f, 0);
	wait_ping(f, id);

	static const char *tokens[] = {"org-1", ORG, "x"};
	for (int i = 0; i < 3; i++) {
		char body[64];
		int n = snprintf(body, sizeof(body), "ping %d \x01\xff", i);
		snprintf(subj, sizeof(subj), "test.echo.%s", tokens[i]);
		assert_int_equal(natsConnection_Request(&m, f->nc, subj, body, n,
							5000), NATS_OK);
		assert_int_equal(natsMsg_GetDataLength(m), n);
		assert_memory_equal(natsMsg_GetData(m), body, (size_t)n);
		const char *h = NULL;
		assert_int_not_equal(natsMsgHeader_Get(m, "Nats-Service-Error", &h),
				     NATS_OK);
		natsMsg_Destroy(m);
	}
	for (int i = 0; i < 2; i++) {
		const char *text = NULL, *code = NULL;
		assert_int_equal(natsConnection_RequestString(&m, f->nc,
			"test.fail.x", "please", 5000), NATS_OK);
		assert_int_equal(natsMsg_GetDataLength(m), 0);
		assert_int_equal(natsMsgHeader_Get(m, "Nats-Service-Error", &text),
				 NATS_OK);
		assert_string_equal(text, "refused on purpose");
		assert_int_equal(natsMsgHeader_Get(m, "Nats-Service-Error-Code",
						   &code), NATS_OK);
		assert_string_equal(code, "409");
		natsMsg_Destroy(m);
	}

	/* The counters are updated just after the reply is sent: poll a
	 * little rather than race the handler thread. */
	snprintf(subj, sizeof(subj), "$SRV.STATS.%s.%s", ACTOR, id);
	vox_json *doc = NULL;
	for (int i = 0; i < 50; i++) {
		vox_json_free(doc);
		doc = request_json(f->nc, subj);
		if (vox_json_int(vox_json_get(stats_endpoint(doc, "echo"), "num_requests")) == 3 &&
		    vox_json_int(vox_json_get(stats_endpoint(doc, "fail"), "num_requests")) == 2)
			break;
		if (i == 0)
			fprintf(stderr, "note: first STATS after the replies was stale\n");
		th_sleep_ms(20);
	}
	static const ep_want after[] = {
		{"echo", "test.echo.*", 3, 0, ""},
		{"fail", "test.fail.*", 2, 2, "refused on purpose"},
	};
	check_stats(doc, got, after);
	assert_string_equal(got, id);
	vox_json_free(doc);
	fx_stop(f, 0);
}

static void payment(vox_event *ev, const char *event_id, int64_t amount)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_PAYMENT_SUCCEEDED;
	vox_payment_succeeded *p = &ev->u.payment_succeeded;
	p->event_id = (vox_str){event_id, strlen(event_id)};
	memcpy(p->org_id.s, ORG, 37);
	p->stripe_payment_intent_id = (vox_str){"pi_svc_1", 8};
	p->amount_pence = amount;
	p->occurred_at = (vox_time){1795000000, 0, true};
}

static const char *meta_value(const vox_json *doc, const char *key)
{
	const vox_json *v = vox_json_get(vox_json_get(doc, "metadata"), key);
	expect_type(v, VOX_JSON_STRING, key);
	return vox_json_str(v);
}

static void test_consume_stats_in_metadata(void **state)
{
	fixture *f = *state;
	char id[23], got[23], subj[128];
	static const char *const meta_keys[] = {
		"consume.received", "consume.batches", "consume.committed",
		"consume.acked", "consume.dead_letters", "consume.naked",
		"consume.redelivered", "consume.isolated", "consume.deferred", "consume.lag",
		"consume.faults", "outbox.published", "outbox.refused",
		"consume.last_sqlstate"};
	/* all but the last are counters */
	const size_t ncounters = VOX_NELEM(meta_keys) - 1;
	fx_start(f);
	fx_spawn(f, 0);
	wait_ping(f, id); /* the actor has created the streams by now */

	snprintf(subj, sizeof(subj), "$SRV.STATS.%s.%s", ACTOR, id);
	vox_json *doc = request_json(f->nc, subj);
	expect_keys(vox_json_get(doc, "metadata"), "metadata", meta_keys,
		    VOX_NELEM(meta_keys));
	for (size_t i = 0; i < ncounters; i++)
		assert_string_equal(meta_value(doc, meta_keys[i]), "0");
	/* no fault met yet: no SQLSTATE */
	assert_string_equal(meta_value(doc, "consume.last_sqlstate"), "");
	vox_json_free(doc);

	for (int i = 0; i < 20; i++) {
		char eid[32];
		vox_event ev;
		vox_pub_ack ack;
		vox_error err;
		snprintf(eid, sizeof(eid), "evt_svc_%d", i);
		payment(&ev, eid, 100 + i);
		assert_int_equal(vox_publish(&ack, f->js, &ev, 5000, &err), VOX_OK);
		assert_false(ack.duplicate);
	}
	assert_int_equal(th_wait_int(f->dsn, "SELECT count FROM rt_total", 20,
				     20000), 20);
	assert_int_equal(th_wait_int(f->dsn, "SELECT total FROM rt_total",
				     20 * 100 + 190, 1000), 20 * 100 + 190);

	/* Acks are counted just after the commit: poll briefly. */
	doc = NULL;
	for (int i = 0; i < 100; i++) {
		vox_json_free(doc);
		doc = request_json(f->nc, subj);
		if (strcmp(meta_value(doc, "consume.acked"), "20") == 0)
			break;
		th_sleep_ms(50);
	}
	check_stats(doc, got, endpoints_fresh);
	assert_string_equal(got, id);
	expect_keys(vox_json_get(doc, "metadata"), "metadata", meta_keys,
		    VOX_NELEM(meta_keys));
	for (size_t i = 0; i < ncounters; i++) {
		const char *val = meta_value(doc, meta_keys[i]);
		assert_true(*val && digits(val, strlen(val)));
	}
	assert_string_equal(meta_value(doc, "consume.faults"), "0");
	assert_string_equal(meta_value(doc, "consume.received"), "20");
	assert_string_equal(meta_value(doc, "consume.acked"), "20");
	assert_string_equal(meta_value(doc, "consume.dead_letters"), "0");
	assert_string_equal(meta_value(doc, "consume.naked"), "0");
	assert_string_equal(meta_value(doc, "consume.redelivered"), "0");
	assert_string_equal(meta_value(doc, "consume.isolated"), "0");
	assert_string_equal(meta_value(doc, "consume.lag"), "0");
	assert_string_equal(meta_value(doc, "outbox.published"), "0");
	long long batches = strtoll(meta_value(doc, "consume.batches"), NULL, 10);
	long long committed = strtoll(meta_value(doc, "consume.committed"), NULL, 10);
	assert_true(batches >= 1 && batches <= 20);
	assert_true(committed >= 1 && committed <= batches);
	vox_json_free(doc);

	/* PING and INFO carry the same metadata. */
	doc = request_json(f->nc, "$SRV.PING." ACTOR);
	check_ping(doc, got);
	assert_string_equal(meta_value(doc, "consume.acked"), "20");
	vox_json_free(doc);
	doc = request_json(f->nc, "$SRV.INFO." ACTOR);
	check_info(doc, got);
	assert_string_equal(meta_value(doc, "consume.received"), "20");
	vox_json_free(doc);
	fx_stop(f, 0);
}

static void test_two_instances_then_one(void **state)
{
	fixture *f = *state;
	char id0[23], id1[23], got[23], subj[128];
	vox_json *docs[4];
	size_t n = 0;
	fx_start(f);
	fx_spawn(f, 0);
	wait_ping(f, id0);
	fx_spawn(f, 1);

	/* One $SRV.PING, two replies with different ids. */
	for (int attempt = 0; attempt < 50; attempt++) {
		n = gather(f->nc, "$SRV.PING", 500, docs, VOX_NELEM(docs));
		if (n == 2)
			break;
		for (size_t i = 0; i < n; i++)
			vox_json_free(docs[i]);
		th_sleep_ms(100);
	}
	assert_int_equal(n, 2);
	char a[23], b[23];
	check_ping(docs[0], a);
	check_ping(docs[1], b);
	vox_json_free(docs[0]);
	vox_json_free(docs[1]);
	assert_string_not_equal(a, b);
	assert_true(strcmp(a, id0) == 0 || strcmp(b, id0) == 0);
	snprintf(id1, sizeof(id1), "%s", strcmp(a, id0) == 0 ? b : a);

	/* The endpoints are one queue group across instances: every request
	 * is served exactly once. */
	for (int i = 0; i < 20; i++) {
		natsMsg *m = NULL;
		assert_int_equal(natsConnection_RequestString(&m, f->nc,
			"test.echo.shared", "hi", 5000), NATS_OK);
		assert_int_equal(natsMsg_GetDataLength(m), 2);
		natsMsg_Destroy(m);
	}
	long long served = 0;
	for (int attempt = 0; attempt < 50; attempt++) {
		served = 0;
		for (int k = 0; k < 2; k++) {
			snprintf(subj, sizeof(subj), "$SRV.STATS.%s.%s", ACTOR,
				 k ? id1 : id0);
			vox_json *doc = request_json(f->nc, subj);
			check_stats(doc, got, endpoints_any);
			assert_string_equal(got, k ? id1 : id0);
			served += vox_json_int(vox_json_get(stats_endpoint(doc, "echo"),
						"num_requests"));
			vox_json_free(doc);
		}
		if (served == 20)
			break;
		th_sleep_ms(20);
	}
	assert_int_equal(served, 20);

	/* Stop the first: it no longer answers, the second still does. */
	fx_stop(f, 0);
	snprintf(subj, sizeof(subj), "$SRV.PING.%s.%s", ACTOR, id0);
	expect_no_reply(f->nc, subj);
	snprintf(subj, sizeof(subj), "$SRV.INFO.%s.%s", ACTOR, id0);
	expect_no_reply(f->nc, subj);
	n = gather(f->nc, "$SRV.PING", 500, docs, VOX_NELEM(docs));
	assert_int_equal(n, 1);
	check_ping(docs[0], got);
	assert_string_equal(got, id1);
	vox_json_free(docs[0]);
	snprintf(subj, sizeof(subj), "$SRV.STATS.%s.%s", ACTOR, id1);
	vox_json *doc = request_json(f->nc, subj);
	check_stats(doc, got, endpoints_any);
	assert_string_equal(got, id1);
	vox_json_free(doc);
	fx_stop(f, 1);
}

/* SIGHUP's default action ends a process: the shell waits for it, and an
 * actor with nothing to reload says so and goes on serving. */
static void test_sighup_without_reload_is_logged(void **state)
{
	fixture *f = *state;
	char id[23], got[23], log[512];
	fx_start(f);
	fx_spawn(f, 0);
	wait_ping(f, id);
	snprintf(log, sizeof(log), "%s/svc-%ld-%s-%d.log", th_env("VOX_TEST_TMP"),
		 (long)getpid(), ACTOR, 0);
	for (int round = 1; round <= 2; round++) {
		assert_int_equal(kill(f->actors[0], SIGHUP), 0);
		for (int t = 0; t < 100 && th_count_in_log(log, "sighup ignored") < round &&
				th_alive(f->actors[0]); t++)
			th_sleep_ms(50);
		assert_true(th_alive(f->actors[0]));
		assert_int_equal(th_count_in_log(log, "msg=\"sighup ignored: nothing to reload\""),
				 round);
	}
	vox_json *doc = request_json(f->nc, "$SRV.PING." ACTOR);
	check_ping(doc, got);
	assert_string_equal(got, id);
	vox_json_free(doc);
	fx_stop(f, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sighup_without_reload_is_logged,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ping_info_stats_on_every_subject,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_requests_show_in_stats,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_consume_stats_in_metadata,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_two_instances_then_one,
						fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
