/*
 * Integration: vox-calls against a private nats-server and a fresh
 * database. Events are published with the C client; results are awaited
 * by polling SQL (never by fixed sleeps) and checked column by column:
 *
 *  - call.started then call.ended; call.ended before call.started
 *  - repeats of both change nothing (rows compared before and after)
 *  - a call.started after a failed call.ended; failed stays failed
 *  - inbound calls create their contact, outbound ones only match
 *  - two instances fed 200 calls with duplicates create each contact once
 *  - a call.started and a call.ended sharing an event_id are both applied
 *  - unknown org -> dead letter 404 unknown_org; another org's call -> 409
 *  - a call_id two orgs commit at the same time -> 409 for the second, in
 *    vox-calls and vox-billing, no money moved
 *  - array literals survive the trip through Postgres byte for byte
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/calls_plan.h"
#include "harness.h"
#include "io/migrate.h"
#include "io/pg.h"
#include "vox/client.h"

#define ORG "2b6c1f0e-5d4a-4c3b-9a8f-7e6d5c4b3a21"
#define OTHER_ORG "3c7d2a1f-6e5b-4d4c-8b9a-8f7e6d5c4b32"
#define UNKNOWN_ORG "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
#define CLINIC "+442071234567"
#define T0 1800000000 /* 2027-01-15 */
#define MAX_ACTORS 2
#define WAIT_MS 30000

typedef struct fixture {
	th_nats nats;
	char dsn[512];
	char env_url[128];
	char env_dsn[600];
	pid_t actors[MAX_ACTORS];
	natsConnection *nc;
	jsCtx *js;
	PGconn *pg;
	PGconn *hold; /* a transaction a test keeps open, or NULL */
	int run;
} fixture;

static int run_counter;

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	f->run = run_counter++;
	th_nats_start(&f->nats);
	th_pg_migrated_db("calls", f->dsn, sizeof(f->dsn));
	f->pg = th_pg_connect(f->dsn);
	th_pg_ok(f->pg, "INSERT INTO organizations (id, name, email) VALUES"
			" ('" ORG "', 'Clinic', 'desk@clinic.example'),"
			" ('" OTHER_ORG "', 'Other', 'desk@other.example')");
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 1000;
	th_js_connect(f->nats.url, &jo, &f->nc, &f->js);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	for (int i = 0; i < MAX_ACTORS; i++) {
		if (f->actors[i] <= 0)
			continue;
		int ws = th_stop(f->actors[i], SIGTERM, 10000);
		if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
			fprintf(stderr, "vox-calls %d did not stop cleanly\n", i);
	}
	PQfinish(f->hold);
	PQfinish(f->pg);
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	free(f);
	return 0;
}

static void start_actor(fixture *f, int i, const char *extra)
{
	char *env[8];
	char log[600];
	int k = 0;
	env[k++] = f->env_url;
	env[k++] = f->env_dsn;
	env[k++] = (char *)(uintptr_t)"VOX_FETCH_WAIT_MS=100";
	env[k++] = (char *)(uintptr_t)"VOX_RETRY_MAX_MS=1000";
	if (extra)
		env[k++] = (char *)(uintptr_t)extra;
	env[k] = NULL;
	snprintf(log, sizeof(log), "%s/calls-%ld-%d-%d.log",
		 th_env("VOX_TEST_TMP"), (long)getpid(), f->run, i);
	f->actors[i] = th_spawn("vox-calls", env, log);
}

/* The service name answers $SRV.PING (its consumers exist then). */
static void wait_service(fixture *f, const char *name)
{
	natsMsg *m = NULL;
	char subject[96];
	snprintf(subject, sizeof(subject), "$SRV.PING.%s", name);
	for (int i = 0; i < 150; i++) {
		if (natsConnection_RequestString(&m, f->nc, subject, "", 200) == NATS_OK) {
			natsMsg_Destroy(m);
			return;
		}
		th_sleep_ms(100);
	}
	fail_msg("%s did not announce itself", name);
}

static void wait_ready(fixture *f)
{
	wait_service(f, "vox-calls");
}

/* Every published event acknowledged (applied or dead-lettered). */
static void wait_drained(fixture *f)
{
	long long outstanding = -1;
	for (int i = 0; i < WAIT_MS / 100; i++) {
		outstanding = th_consumer_outstanding(f->js, "EVENTS", "vox-calls");
		if (outstanding == 0)
			break;
		th_sleep_ms(100);
	}
	assert_int_equal(outstanding, 0);
}

/* ---- SQL helpers ------------------------------------------------------- */

static long long qint(fixture *f, const char *fmt, ...) VOX_PRINTF(2, 3);
static long long qint(fixture *f, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return th_pg_int(f->pg, sql);
}

/* Poll until the integer query returns want; returns the last value. */
static long long wait_int(fixture *f, long long want, const char *fmt, ...)
	VOX_PRINTF(3, 4);
static long long wait_int(fixture *f, long long want, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return th_wait_int(f->dsn, sql, want, WAIT_MS);
}

/* First value of a query as a malloc'd string ("<null>" for NULL). */
static char *qtext(fixture *f, const char *fmt, ...) VOX_PRINTF(2, 3);
static char *qtext(fixture *f, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	PGresult *r = th_pg_query(f->pg, sql);
	assert_true(PQntuples(r) >= 1);
	char *v = vox_strndup(PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0),
			      PQgetisnull(r, 0, 0) ? 6 : (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return v;
}

static void assert_text(fixture *f, const char *want, const char *sql)
{
	char *got = qtext(f, "%s", sql);
	assert_string_equal(got, want);
	free(got);
}

/* Everything vox-calls writes, as one text value, to compare before/after. */
static char *snapshot(fixture *f)
{
	return qtext(f, "SELECT concat_ws(E'\\n',"
			" (SELECT string_agg(row_to_json(c)::text, E'\\n' ORDER BY id) FROM calls c),"
			" (SELECT string_agg(row_to_json(k)::text, E'\\n' ORDER BY id) FROM contacts k),"
			" (SELECT string_agg(event_id || ' ' || event_data::text, E'\\n'"
			"   ORDER BY event_id) FROM processed_webhook_events))");
}

/* ---- events ------------------------------------------------------------- */

static vox_str S(const char *s)
{
	return (vox_str){s, s ? strlen(s) : 0};
}

static void call_uuid(char out[37], int n)
{
	snprintf(out, 37, "00000000-0000-4000-8000-%012d", n);
}

static vox_event started(const char *event_id, const char *org,
			 const char *call, vox_direction dir,
			 const char *other_party, int64_t at)
{
	vox_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = VOX_CALL_STARTED;
	vox_call_started *s = &ev.u.call_started;
	s->event_id = S(event_id);
	memcpy(s->org_id.s, org, 37);
	memcpy(s->call_id.s, call, 37);
	s->direction = dir;
	s->from_number = S(dir == VOX_DIR_INBOUND ? other_party : CLINIC);
	s->to_number = S(dir == VOX_DIR_INBOUND ? CLINIC : other_party);
	s->started_at = (vox_time){at, 0, true};
	return ev;
}

static vox_event ended(const char *event_id, const char *org, const char *call,
		       vox_call_status st, int64_t at, int64_t duration)
{
	vox_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = VOX_CALL_ENDED;
	vox_call_ended *e = &ev.u.call_ended;
	e->event_id = S(event_id);
	memcpy(e->org_id.s, org, 37);
	memcpy(e->call_id.s, call, 37);
	e->status = st;
	e->ended_at = (vox_time){at, 0, true};
	e->duration_seconds = duration;
	return ev;
}

static void publish(fixture *f, const vox_event *ev)
{
	vox_pub_ack ack;
	vox_error err;
	vox_status st = vox_publish(&ack, f->js, ev, 5000, &err);
	if (st != VOX_OK)
		fprintf(stderr, "publish: %s %s\n", vox_status_str(st), err.message);
	assert_int_equal(st, VOX_OK);
	assert_false(ack.duplicate);
}

/* Publish under another Nats-Msg-Id, so JetStream keeps a second copy (or
 * a second event with the same event_id) and only the database decides. */
static void publish_as(fixture *f, const vox_event *ev, const char *msgid)
{
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	vox_error err;
	assert_int_equal(vox_event_to_msg(&m, ev, &err), VOX_OK);
	assert_int_equal(natsMsgHeader_Set(m, "Nats-Msg-Id", msgid), NATS_OK);
	assert_int_equal(js_PublishMsg(&pa, f->js, m, NULL, NULL), NATS_OK);
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
}

/* ---- scenarios ---------------------------------------------------------- */

/* Bytes that break naive quoting of array literals and SQL. */
static const char tricky[] =
	"He said \"hi\", then {left}; C:\\temp\\x, NULL, caf\xc3\xa9 \xf0\x9f\x93\x9e '";

static void test_started_then_ended(void **state)
{
	fixture *f = *state;
	char call[37];
	call_uuid(call, 1);
	start_actor(f, 0, NULL);
	wait_ready(f);

	vox_event s = started("evt-s1", ORG, call, VOX_DIR_INBOUND,
			      "+447700900001", T0);
	s.u.call_started.caller_name = S("Ada Lovelace");
	s.u.call_started.vapi_call_id = S("vapi-001");
	s.u.call_started.started_at.nsec = 250000000;
	publish(f, &s);
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND status = 'in_progress'", call), 1);

	vox_event e = ended("evt-e1", ORG, call, VOX_CALL_COMPLETED, T0 + 96, 95);
	vox_call_ended *ce = &e.u.call_ended;
	ce->transcript = S(tricky);
	ce->summary = S("Booked a check-up");
	ce->recording_url = S("https://rec.example/1.wav");
	ce->sentiment_label = VOX_SENTIMENT_POSITIVE;
	ce->has_sentiment_score = true;
	ce->sentiment_score = 0.8;
	ce->sentiment_summary = S("pleased");
	ce->sentiment_urgency = VOX_URGENCY_HIGH;
	publish(f, &e);
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND status = 'completed'", call), 1);

	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT concat_ws('|', org_id, call_direction, from_number, to_number,"
		 " phone_number, caller_name, vapi_call_id, duration_seconds, summary,"
		 " recording_url, sentiment_label, sentiment_score, sentiment_summary,"
		 " sentiment_urgency) FROM calls WHERE id = '%s'", call);
	assert_text(f, ORG "|inbound|+447700900001|" CLINIC "|+447700900001|"
		       "Ada Lovelace|vapi-001|95|Booked a check-up|"
		       "https://rec.example/1.wav|positive|0.8|pleased|high", sql);
	snprintf(sql, sizeof(sql), "SELECT transcript FROM calls WHERE id = '%s'", call);
	assert_text(f, tricky, sql);
	/* created_at = started_at (with its fraction), ended_at kept */
	assert_int_equal(qint(f, "SELECT (extract(epoch FROM created_at) * 1000)::bigint"
			      " FROM calls WHERE id = '%s'", call),
			 (long long)T0 * 1000 + 250);
	assert_int_equal(qint(f, "SELECT extract(epoch FROM ended_at)::bigint"
			      " FROM calls WHERE id = '%s'", call), T0 + 96);
	/* the inbound caller became a contact, linked, last contacted at the end */
	assert_int_equal(qint(f, "SELECT count(*) FROM contacts WHERE org_id = '" ORG "'"
			      " AND phone = '+447700900001' AND first_name = 'Ada Lovelace'"
			      " AND last_name = ''"), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM calls c JOIN contacts k"
			      " ON k.id = c.contact_id WHERE c.id = '%s'"
			      " AND k.phone = '+447700900001'", call), 1);
	assert_int_equal(qint(f, "SELECT extract(epoch FROM last_contacted_at)::bigint"
			      " FROM contacts WHERE phone = '+447700900001'"), T0 + 96);
	/* the merge is its own idempotency: no per-event record, which
	 * nothing would read */
	assert_int_equal(qint(f, "SELECT count(*) FROM processed_webhook_events"), 0);
}

static void test_ended_before_started(void **state)
{
	fixture *f = *state;
	char call[37];
	call_uuid(call, 2);
	start_actor(f, 0, NULL);
	wait_ready(f);

	/* the call.ended comes alone: the row is made of what it carries */
	vox_event e = ended("evt-e2", ORG, call, VOX_CALL_COMPLETED, T0 + 300, 120);
	e.u.call_ended.summary = S("Asked about prices");
	publish(f, &e);
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND status = 'completed'", call), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE id = '%s'"
			      " AND call_direction IS NULL AND from_number IS NULL"
			      " AND to_number IS NULL AND contact_id IS NULL"
			      " AND duration_seconds = 120", call), 1);
	assert_int_equal(qint(f, "SELECT extract(epoch FROM created_at)::bigint"
			      " FROM calls WHERE id = '%s'", call), T0 + 180);

	/* the late call.started fills the gaps and corrects created_at */
	vox_event s = started("evt-s2", ORG, call, VOX_DIR_INBOUND,
			      "+447700900002", T0 + 170);
	s.u.call_started.caller_name = S("Grace");
	s.u.call_started.vapi_call_id = S("vapi-002");
	publish(f, &s);
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND call_direction = 'inbound'", call), 1);
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT concat_ws('|', status, from_number, to_number, phone_number,"
		 " caller_name, vapi_call_id, duration_seconds, summary,"
		 " extract(epoch FROM created_at)::bigint,"
		 " extract(epoch FROM ended_at)::bigint) FROM calls WHERE id = '%s'", call);
	char want[256];
	snprintf(want, sizeof(want),
		 "completed|+447700900002|" CLINIC "|+447700900002|Grace|vapi-002|"
		 "120|Asked about prices|%d|%d", T0 + 170, T0 + 300);
	assert_text(f, want, sql);
	/* the contact was created and linked, and touched by the old end */
	assert_int_equal(qint(f, "SELECT count(*) FROM calls c JOIN contacts k"
			      " ON k.id = c.contact_id WHERE c.id = '%s'"
			      " AND k.phone = '+447700900002' AND k.first_name = 'Grace'"
			      " AND extract(epoch FROM k.last_contacted_at)::bigint = %d",
			      call, T0 + 300), 1);
}

static void test_repeats_change_nothing(void **state)
{
	fixture *f = *state;
	char call[37];
	call_uuid(call, 3);
	start_actor(f, 0, NULL);
	wait_ready(f);
	vox_event s = started("evt-s3", ORG, call, VOX_DIR_INBOUND,
			      "+447700900003", T0);
	vox_event e = ended("evt-e3", ORG, call, VOX_CALL_COMPLETED, T0 + 60, 58);
	e.u.call_ended.transcript = S("first transcript");
	publish(f, &s);
	publish(f, &e);
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND status = 'completed'", call), 1);
	wait_drained(f);
	char *before = snapshot(f);

	/* the same two events again (JetStream keeps them: new Msg-Ids), in
	 * both orders, in one batch and in separate ones */
	publish_as(f, &e, "again-e3-1");
	publish_as(f, &s, "again-s3-1");
	wait_drained(f);
	publish_as(f, &s, "again-s3-2");
	wait_drained(f);
	publish_as(f, &e, "again-e3-2");
	wait_drained(f);
	char *after = snapshot(f);
	assert_string_equal(before, after);

	/* a second, different call.ended for the completed call: its ended
	 * fields never change */
	vox_event e2 = ended("evt-e3b", ORG, call, VOX_CALL_FAILED, T0 + 900, 800);
	e2.u.call_ended.transcript = S("another transcript");
	publish(f, &e2);
	wait_drained(f);
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE id = '%s'"
			      " AND status = 'completed' AND duration_seconds = 58"
			      " AND transcript = 'first transcript'", call), 1);
	char *last = snapshot(f);
	assert_string_equal(before, last);
	free(before);
	free(after);
	free(last);
}

static void test_started_after_failed_ended(void **state)
{
	fixture *f = *state;
	char call[37];
	call_uuid(call, 4);
	start_actor(f, 0, NULL);
	wait_ready(f);
	vox_event e = ended("evt-e4", ORG, call, VOX_CALL_FAILED, T0 + 5, 0);
	e.u.call_ended.direction = VOX_DIR_OUTBOUND;
	e.u.call_ended.from_number = S(CLINIC);
	e.u.call_ended.to_number = S("+447700900004");
	e.u.call_ended.started_at = (vox_time){T0, 0, true};
	publish(f, &e);
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND status = 'failed'", call), 1);
	assert_int_equal(qint(f, "SELECT extract(epoch FROM created_at)::bigint"
			      " FROM calls WHERE id = '%s'", call), T0);

	vox_event s = started("evt-s4", ORG, call, VOX_DIR_OUTBOUND,
			      "+447700900004", T0 + 1);
	s.u.call_started.vapi_call_id = S("vapi-004");
	publish(f, &s);
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND vapi_call_id = 'vapi-004'", call), 1);
	/* never moved back to in_progress; created_at already came with a
	 * direction, so it stays */
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE id = '%s'"
			      " AND status = 'failed' AND duration_seconds = 0"
			      " AND call_direction = 'outbound'"
			      " AND phone_number = '+447700900004'"
			      " AND extract(epoch FROM created_at)::bigint = %d",
			      call, T0), 1);
	/* outbound: no contact is created for the callee */
	assert_int_equal(qint(f, "SELECT count(*) FROM contacts"), 0);
}

static void test_contacts_inbound_creates_outbound_matches(void **state)
{
	fixture *f = *state;
	char c1[37], c2[37], c3[37], c4[37], c5[37];
	call_uuid(c1, 11);
	call_uuid(c2, 12);
	call_uuid(c3, 13);
	call_uuid(c4, 14);
	call_uuid(c5, 15);
	th_pg_ok(f->pg, "INSERT INTO contacts (id, org_id, phone, first_name) VALUES"
			" ('aaaaaaaa-0000-4000-8000-000000000001', '" ORG "', '+447700900013', 'Known'),"
			" ('aaaaaaaa-0000-4000-8000-000000000002', '" ORG "', '+447700900099', 'Given'),"
			" ('bbbbbbbb-0000-4000-8000-000000000001', '" OTHER_ORG "', '+447700900015', 'Foreign')");
	start_actor(f, 0, NULL);
	wait_ready(f);

	vox_event evs[5] = {
		/* inbound, unknown caller: created */
		started("evt-c1", ORG, c1, VOX_DIR_INBOUND, "+447700900011", T0),
		/* outbound to an unknown number: nothing created */
		started("evt-c2", ORG, c2, VOX_DIR_OUTBOUND, "+447700900012", T0),
		/* outbound to a known contact: matched by phone */
		started("evt-c3", ORG, c3, VOX_DIR_OUTBOUND, "+447700900013", T0),
		/* inbound with a valid contact_id: used, nothing created */
		started("evt-c4", ORG, c4, VOX_DIR_INBOUND, "+447700900014", T0),
		/* inbound with another org's contact_id: phone matching */
		started("evt-c5", ORG, c5, VOX_DIR_INBOUND, "+447700900015", T0),
	};
	memcpy(evs[3].u.call_started.contact_id.s,
	       "aaaaaaaa-0000-4000-8000-000000000002", 37);
	memcpy(evs[4].u.call_started.contact_id.s,
	       "bbbbbbbb-0000-4000-8000-000000000001", 37);
	for (int i = 0; i < 5; i++)
		publish(f, &evs[i]);
	assert_int_equal(wait_int(f, 5, "SELECT count(*) FROM calls"), 5);
	wait_drained(f);

	assert_int_equal(qint(f, "SELECT count(*) FROM contacts k JOIN calls c"
			      " ON c.contact_id = k.id WHERE c.id = '%s'"
			      " AND k.phone = '+447700900011' AND k.first_name = ''", c1), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM contacts"
			      " WHERE phone = '+447700900012'"), 0);
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE id = '%s'"
			      " AND contact_id IS NULL AND phone_number = '+447700900012'", c2), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE id = '%s'"
			      " AND contact_id = 'aaaaaaaa-0000-4000-8000-000000000001'", c3), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE id = '%s'"
			      " AND contact_id = 'aaaaaaaa-0000-4000-8000-000000000002'", c4), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM contacts"
			      " WHERE phone = '+447700900014'"), 0);
	assert_int_equal(qint(f, "SELECT count(*) FROM calls c JOIN contacts k"
			      " ON k.id = c.contact_id WHERE c.id = '%s'"
			      " AND k.org_id = '" ORG "' AND k.phone = '+447700900015'", c5), 1);
	/* 3 seeded + c1's + c5's */
	assert_int_equal(qint(f, "SELECT count(*) FROM contacts"), 5);
}

/* 200 calls, 20 callers, every event twice, ended before started for a
 * quarter of the calls, through two instances with small batches. */
static void test_two_instances_create_each_contact_once(void **state)
{
	fixture *f = *state;
	enum { CALLS = 200, CALLERS = 20 };
	start_actor(f, 0, "VOX_BATCH=16");
	start_actor(f, 1, "VOX_BATCH=16");
	wait_ready(f);
	char call[37], phone[20], sid[32], eid[32], dup[48];
	vox_error err;
	for (int i = 0; i < CALLS; i++) {
		call_uuid(call, 1000 + i);
		snprintf(phone, sizeof(phone), "+4477009%05d", i % CALLERS);
		snprintf(sid, sizeof(sid), "s-%d", i);
		snprintf(eid, sizeof(eid), "e-%d", i);
		vox_event s = started(sid, ORG, call, VOX_DIR_INBOUND, phone, T0 + i);
		vox_event e = ended(eid, ORG, call, VOX_CALL_COMPLETED, T0 + 1000 + i, 30);
		const vox_event *order[2] = {&s, &e};
		if (i % 4 == 0) {
			order[0] = &e;
			order[1] = &s;
		}
		for (int k = 0; k < 2; k++) {
			assert_int_equal(vox_publish_async(f->js, order[k], &err), VOX_OK);
			natsMsg *m = NULL;
			assert_int_equal(vox_event_to_msg(&m, order[k], &err), VOX_OK);
			snprintf(dup, sizeof(dup), "dup-%d-%d", i, k);
			natsMsgHeader_Set(m, "Nats-Msg-Id", dup);
			assert_int_equal(js_PublishMsgAsync(f->js, &m, NULL), NATS_OK);
			natsMsg_Destroy(m);
		}
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 30000;
	assert_int_equal(js_PublishAsyncComplete(f->js, &po), NATS_OK);

	assert_int_equal(wait_int(f, CALLS, "SELECT count(*) FROM calls"
				  " WHERE status = 'completed' AND call_direction IS NOT NULL"
				  " AND contact_id IS NOT NULL"), CALLS);
	wait_drained(f);
	assert_int_equal(qint(f, "SELECT count(*) FROM contacts"), CALLERS);
	assert_int_equal(qint(f, "SELECT count(*) FROM calls c JOIN contacts k"
			      " ON k.id = c.contact_id AND k.phone = c.phone_number"
			      " AND k.phone = c.from_number"), CALLS);
	/* created_at from each call.started, even where the ended came first */
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE"
			      " extract(epoch FROM created_at)::bigint"
			      " = extract(epoch FROM ended_at)::bigint - 1000"), CALLS);
	assert_int_equal(qint(f, "SELECT count(*) FROM contacts k WHERE"
			      " last_contacted_at = (SELECT max(ended_at) FROM calls"
			      "  WHERE contact_id = k.id)"), CALLERS);
	assert_int_equal(qint(f, "SELECT count(*) FROM processed_webhook_events"), 0);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	for (int i = 0; i < MAX_ACTORS; i++) {
		int ws;
		assert_int_equal(waitpid(f->actors[i], &ws, WNOHANG), 0); /* alive */
	}
}

static void test_shared_event_id_both_applied(void **state)
{
	fixture *f = *state;
	char call[37];
	call_uuid(call, 5);
	start_actor(f, 0, NULL);
	wait_ready(f);
	vox_event s = started("evt-shared", ORG, call, VOX_DIR_INBOUND,
			      "+447700900005", T0);
	vox_event e = ended("evt-shared", ORG, call, VOX_CALL_COMPLETED, T0 + 42, 42);
	/* vox_publish would give both the same Nats-Msg-Id, and JetStream
	 * would drop the second: publish them under distinct ones */
	publish_as(f, &s, "call.started:evt-shared");
	publish_as(f, &e, "call.ended:evt-shared");
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND status = 'completed' AND call_direction = 'inbound'"
				  " AND duration_seconds = 42", call), 1);
	wait_drained(f);
	/* both kept their effect above, with no per-event record */
	assert_int_equal(qint(f, "SELECT count(*) FROM processed_webhook_events"), 0);
}

static const char *hdr(natsMsg *m, const char *key)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) != NATS_OK)
		return "";
	return v;
}

static void test_unknown_org_and_foreign_call_dead_lettered(void **state)
{
	fixture *f = *state;
	char good[37], stray[37];
	call_uuid(good, 6);
	call_uuid(stray, 7);
	start_actor(f, 0, NULL);
	wait_ready(f);
	/* an unknown org between good events, so they share a batch */
	vox_event s1 = started("evt-g1", ORG, good, VOX_DIR_INBOUND,
			       "+447700900006", T0);
	vox_event bad = started("evt-bad", UNKNOWN_ORG, stray, VOX_DIR_INBOUND,
				"+447700900007", T0);
	vox_event e1 = ended("evt-g2", ORG, good, VOX_CALL_COMPLETED, T0 + 10, 10);
	publish(f, &s1);
	publish(f, &bad);
	publish(f, &e1);
	assert_int_equal(wait_int(f, 1, "SELECT count(*) FROM calls WHERE id = '%s'"
				  " AND status = 'completed'", good), 1);
	wait_drained(f);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 1);
	natsMsg *m = NULL;
	assert_int_equal(js_GetMsg(&m, f->js, "DLQ", 1, NULL, NULL), NATS_OK);
	char subject[128];
	snprintf(subject, sizeof(subject), "dlq.call.started.%s", UNKNOWN_ORG);
	assert_string_equal(natsMsg_GetSubject(m), subject);
	assert_string_equal(hdr(m, "Vox-Error-Code"), "404");
	assert_string_equal(hdr(m, "Vox-Error-Reason"), "unknown_org");
	assert_string_equal(hdr(m, "Vox-Error"), "org_id: no such organization");
	assert_string_equal(hdr(m, "Vox-Actor"), "vox-calls");
	natsMsg_Destroy(m);
	/* no effect of the refused event */
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE id = '%s'", stray), 0);
	assert_int_equal(qint(f, "SELECT count(*) FROM contacts"
			      " WHERE phone = '+447700900007'"), 0);
	assert_int_equal(qint(f, "SELECT count(*) FROM processed_webhook_events"
			      " WHERE event_id LIKE '%%evt-bad'"), 0);

	/* another (known) org naming this org's call: 409, row untouched */
	char *before = snapshot(f);
	vox_event theft = ended("evt-theft", OTHER_ORG, good, VOX_CALL_FAILED,
				T0 + 99, 99);
	publish(f, &theft);
	wait_drained(f);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 2);
	assert_int_equal(js_GetMsg(&m, f->js, "DLQ", 2, NULL, NULL), NATS_OK);
	assert_string_equal(hdr(m, "Vox-Error-Code"), "409");
	assert_string_equal(hdr(m, "Vox-Error-Reason"), "conflict");
	natsMsg_Destroy(m);
	char *after = snapshot(f);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* Every binary array type against the server's own receive functions:
 * each value comes back as it was, NULLs as NULL. */
static PGresult *round_trip(fixture *f, const char *sql, vox_pg_params *p)
{
	PGresult *r = NULL;
	vox_status st = vox_pg_run_sql(f->pg, sql, p, &r);
	if (st != VOX_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(f->pg));
	vox_pg_params_release(p);
	return r;
}

static void test_binary_arrays_round_trip(void **state)
{
	fixture *f = *state;
	vox_pg_params p;
	vox_str vals[] = {
		S(tricky), S(""), {NULL, 0}, S("NULL"), S("\\"), S("\""),
		S("}{,"), S("  spaced  "), S("\xe2\x82\xac\xf0\x9f\x93\x9e"),
	};
	vox_pg_params_init(&p);
	vox_pg_array *a = vox_pg_params_array(&p, VOX_PG_TEXT);
	for (size_t i = 0; i < VOX_NELEM(vals); i++)
		vox_pg_array_view(a, vals[i]);
	PGresult *r = round_trip(f,
		"SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS t(x, i) ORDER BY i", &p);
	assert_int_equal(PQntuples(r), VOX_NELEM(vals));
	for (int i = 0; i < PQntuples(r); i++) {
		if (vals[i].ptr == NULL) {
			assert_true(PQgetisnull(r, i, 0));
			continue;
		}
		assert_false(PQgetisnull(r, i, 0));
		assert_int_equal(PQgetlength(r, i, 0), vals[i].len);
		assert_memory_equal(PQgetvalue(r, i, 0), vals[i].ptr, vals[i].len);
	}
	PQclear(r);

	/* one row of every other type, and a NULL of each */
	vox_uuid u = {"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}, none = {""};
	vox_time t = {1796256000, 123456500, true}, unset = {0};
	vox_pg_params_init(&p);
	vox_pg_array *uu = vox_pg_params_array(&p, VOX_PG_UUID);
	vox_pg_array *i4 = vox_pg_params_array(&p, VOX_PG_INT4);
	vox_pg_array *i8 = vox_pg_params_array(&p, VOX_PG_INT8);
	vox_pg_array *bo = vox_pg_params_array(&p, VOX_PG_BOOL);
	vox_pg_array *ts = vox_pg_params_array(&p, VOX_PG_TIMESTAMPTZ);
	vox_pg_array *js = vox_pg_params_array(&p, VOX_PG_JSONB);
	vox_pg_array_uuid(uu, &u);
	vox_pg_array_int(i4, INT32_MIN);
	vox_pg_array_int(i8, INT64_MAX);
	vox_pg_array_bool(bo, true);
	vox_pg_array_time(ts, &t);
	vox_pg_array_str(js, "{\"seq\":5}", 9);
	vox_pg_array_uuid(uu, &none);
	vox_pg_array_int(i4, INT32_MAX);
	vox_pg_array_int(i8, -1);
	vox_pg_array_bool(bo, false);
	vox_pg_array_time(ts, &unset);
	vox_pg_array_null(js);
	r = round_trip(f,
		"SELECT u::text, i4, i8, b,"
		" to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),"
		" j->>'seq'"
		" FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::bool[],"
		"  $5::timestamptz[], $6::jsonb[]) WITH ORDINALITY"
		"  AS t(u, i4, i8, b, ts, j, o) ORDER BY o", &p);
	assert_int_equal(PQntuples(r), 2);
	assert_string_equal(PQgetvalue(r, 0, 0), u.s);
	assert_string_equal(PQgetvalue(r, 0, 1), "-2147483648");
	assert_string_equal(PQgetvalue(r, 0, 2), "9223372036854775807");
	assert_string_equal(PQgetvalue(r, 0, 3), "t");
	/* .1234565: half a microsecond, to even */
	assert_string_equal(PQgetvalue(r, 0, 4), "2026-12-03T00:00:00.123456");
	assert_string_equal(PQgetvalue(r, 0, 5), "5");
	assert_true(PQgetisnull(r, 1, 0));
	assert_string_equal(PQgetvalue(r, 1, 1), "2147483647");
	assert_string_equal(PQgetvalue(r, 1, 2), "-1");
	assert_string_equal(PQgetvalue(r, 1, 3), "f");
	assert_true(PQgetisnull(r, 1, 4));
	assert_true(PQgetisnull(r, 1, 5));
	PQclear(r);

	/* an empty array is an array of no rows, of its own type */
	vox_pg_params_init(&p);
	vox_pg_params_array(&p, VOX_PG_UUID);
	vox_pg_params_text(&p, "x");
	r = round_trip(f, "SELECT count(*), $2 FROM unnest($1::uuid[])", &p);
	assert_string_equal(PQgetvalue(r, 0, 0), "0");
	assert_string_equal(PQgetvalue(r, 0, 1), "x");
	PQclear(r);

	/* an array of the wrong element type is refused by the server, not
	 * read as another type */
	vox_pg_params_init(&p);
	vox_pg_array_int(vox_pg_params_array(&p, VOX_PG_INT8), 1);
	assert_int_equal(vox_pg_run_sql(f->pg, "SELECT unnest($1::int[])", &p, NULL),
			 VOX_E_INTERNAL);
	vox_pg_params_release(&p);
}

/* Two orgs' events for one new call_id, committed at the same time by two
 * instances: the second one's upsert met the first one's row and its
 * "never another tenant's row" clause skipped it in silence, and the event
 * was acknowledged. It is a 409 now, in vox-calls and in vox-billing (whose
 * call_charges key refuses the second insert), and moves no money. The
 * first org's transaction is held open here, so both actors write while it
 * is in flight, and committed once both are waiting for it. */
static void test_call_id_raced_by_two_orgs_is_refused_for_the_second(void **state)
{
	fixture *f = *state;
	char call[37], log[600];
	call_uuid(call, 31);
	start_actor(f, 0, NULL);
	char *benv[] = {f->env_url, f->env_dsn, (char *)(uintptr_t)"VOX_FETCH_WAIT_MS=100",
			(char *)(uintptr_t)"VOX_RETRY_MAX_MS=1000", NULL};
	snprintf(log, sizeof(log), "%s/calls-billing-%ld-%d.log",
		 th_env("VOX_TEST_TMP"), (long)getpid(), f->run);
	f->actors[1] = th_spawn("vox-billing", benv, log);
	wait_ready(f);
	wait_service(f, "vox-billing");

	/* ORG's call, as both actors would write it, not yet committed */
	f->hold = th_pg_connect(f->dsn);
	th_pg_ok(f->hold, "BEGIN");
	th_pg_okf(f->hold, "INSERT INTO calls (id, org_id, status, duration_seconds,"
		  " ended_at, created_at) VALUES ('%s', '" ORG "', 'completed', 0,"
		  " to_timestamp(%d), to_timestamp(%d))", call, T0, T0);
	th_pg_okf(f->hold, "INSERT INTO call_charges (call_id, org_id, duration_seconds,"
		  " rate_per_minute, charge_pence, deducted_pence, shortfall_pence,"
		  " event_id) VALUES ('%s', '" ORG "', 0, 70, 0, 0, 0, 'held-org-call')",
		  call);

	vox_event theft = ended("evt-race-other", OTHER_ORG, call, VOX_CALL_COMPLETED,
				T0 + 60, 60);
	publish(f, &theft);
	/* both actors wait for the held rows' keys */
	long long waiting = wait_int(f, 2, "SELECT count(*) FROM pg_stat_activity"
				     " WHERE datname = current_database()"
				     " AND wait_event_type = 'Lock'");
	assert_int_equal(waiting, 2);
	th_pg_ok(f->hold, "COMMIT");
	PQfinish(f->hold);
	f->hold = NULL;

	long long n = -1;
	for (int i = 0; i < WAIT_MS / 100 && n < 2; i++) {
		n = th_stream_count(f->js, "DLQ");
		th_sleep_ms(100);
	}
	wait_drained(f);
	assert_int_equal(wait_int(f, 0, "SELECT count(*) FROM pg_stat_activity"
				  " WHERE datname = current_database()"
				  " AND wait_event_type = 'Lock'"), 0);
	long long outstanding = -1;
	for (int i = 0; i < WAIT_MS / 100 && outstanding != 0; i++) {
		outstanding = th_consumer_outstanding(f->js, "EVENTS", "vox-billing-calls");
		if (outstanding != 0)
			th_sleep_ms(100);
	}
	assert_int_equal(outstanding, 0);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 2);
	int actors = 0;
	for (uint64_t seq = 1; seq <= 2; seq++) {
		natsMsg *m = NULL;
		char subject[128];
		assert_int_equal(js_GetMsg(&m, f->js, "DLQ", seq, NULL, NULL), NATS_OK);
		snprintf(subject, sizeof(subject), "dlq.call.ended.%s", OTHER_ORG);
		assert_string_equal(natsMsg_GetSubject(m), subject);
		assert_string_equal(hdr(m, "Vox-Error-Code"), "409");
		assert_string_equal(hdr(m, "Vox-Error-Reason"), "conflict");
		assert_string_equal(hdr(m, "Vox-Error"),
				    "call_id: belongs to another organization");
		if (strcmp(hdr(m, "Vox-Actor"), "vox-calls") == 0)
			actors |= 1;
		else if (strcmp(hdr(m, "Vox-Actor"), "vox-billing") == 0)
			actors |= 2;
		natsMsg_Destroy(m);
	}
	assert_int_equal(actors, 3);
	/* the call stays the first org's, and the second moved no money */
	assert_int_equal(qint(f, "SELECT count(*) FROM calls WHERE id = '%s'"
			      " AND org_id = '" ORG "' AND duration_seconds = 0", call), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM call_charges WHERE call_id = '%s'"
			      " AND org_id = '" ORG "'", call), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM credit_transactions"), 0);
	assert_int_equal(qint(f, "SELECT wallet_balance_pence FROM organizations"
			      " WHERE id = '" OTHER_ORG "'"), 0);
	assert_int_equal(qint(f, "SELECT unbilled_pence FROM organizations"
			      " WHERE id = '" OTHER_ORG "'"), 0);
	assert_int_equal(qint(f, "SELECT count(*) FROM processed_webhook_events"
			      " WHERE event_id LIKE '%%evt-race-other'"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_binary_arrays_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_started_then_ended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ended_before_started, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeats_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_started_after_failed_ended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contacts_inbound_creates_outbound_matches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_instances_create_each_contact_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_event_id_both_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_org_and_foreign_call_dead_lettered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_id_raced_by_two_orgs_is_refused_for_the_second, setup, teardown),
	};
	if (getenv("VOX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VOX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
