/*
 * Integration: the vox-leads actor against real servers. Every test has its
 * own nats-server (fresh streams) and its own migrated database, inserts its
 * organizations itself, spawns vox-leads, publishes lead.scored events and
 * waits for the expected state:
 *   - contacts created by phone, scores and statuses, lead_scored_at;
 *   - one hot_lead_alerts row and one alert.hot_lead message per
 *     (org, contact, call), Nats-Msg-Id = row id, published_at set;
 *   - concurrent duplicates, a crash between commit and publish, ordering
 *     by scored_at, the per-org threshold, dead letters;
 *   - the example alert consumer prints each alert once;
 *   - a contact from before vox (phone not E.164, a long name) still gets
 *     its alert, without the field that does not fit the contract.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "io/migrate.h"
#include "vox/client.h"

#define ACTOR "vox-leads"
#define DURABLE "vox-leads"
#define MAX_ACTORS 2

#define ORG_A "0a000000-0000-4000-8000-00000000000a"
#define ORG_B "0b000000-0000-4000-8000-00000000000b"
#define ORG_X "0f000000-0000-4000-8000-0000000000ff" /* never inserted */
#define CALL_1 "c1000000-0000-4000-8000-000000000001"
#define CALL_2 "c2000000-0000-4000-8000-000000000002"
#define CONTACT_NONE "cf000000-0000-4000-8000-0000000000ff"
#define T0 1795000000

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
	th_pg_migrated_db("leads", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
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

/* Spawn vox-leads in slot i with an optional extra "K=V" setting and wait
 * until it has announced itself (streams and consumers exist then). With
 * a fault injected it may exit at once after its first commit: then only
 * the start is waited for. */
static void start_leads(fixture *f, int i, const char *extra)
{
	char e_fetch[] = "VOX_FETCH_WAIT_MS=200";
	char e_age[] = "VOX_OUTBOX_AGE_MS=0";
	char e_ack[] = "VOX_ACK_WAIT_S=4";
	char x1[256] = "";
	char *env[8];
	int k = 0;
	env[k++] = f->env_url;
	env[k++] = f->env_dsn;
	env[k++] = e_fetch;
	env[k++] = e_age;
	env[k++] = e_ack;
	if (extra) {
		snprintf(x1, sizeof(x1), "%s", extra);
		env[k++] = x1;
	}
	env[k] = NULL;
	snprintf(f->logs[i], sizeof(f->logs[i]), "%s/leads-%ld-%d-%d.log",
		 th_env("VOX_TEST_TMP"), (long)getpid(), f->run, i);
	int before = th_count_in_log(f->logs[i], "msg=\"started\"");
	f->actors[i] = th_spawn(ACTOR, env, f->logs[i]);
	for (int t = 0; t < 200; t++) {
		if (th_count_in_log(f->logs[i], "msg=\"started\"") > before)
			return;
		int ws;
		if (waitpid(f->actors[i], &ws, WNOHANG) == f->actors[i]) {
			f->actors[i] = 0;
			fail_msg("vox-leads exited at start (see %s)", f->logs[i]);
		}
		th_sleep_ms(100);
	}
	fail_msg("vox-leads did not start (see %s)", f->logs[i]);
}

static void stop_leads(fixture *f, int i)
{
	if (f->actors[i] > 0) {
		th_stop(f->actors[i], SIGTERM, 10000);
		f->actors[i] = 0;
	}
}

/* ---- SQL helpers -------------------------------------------------------- */

/* First column of the first row as text (into out); "" for NULL/no row. */
static void sqlf_text(fixture *f, char *out, size_t len, const char *fmt, ...)
	VOX_PRINTF(4, 5);
static void sqlf_text(fixture *f, char *out, size_t len, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	PGresult *r = th_pg_query(f->db, sql);
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	else
		snprintf(out, len, "%s", "");
	PQclear(r);
}

static long long wait_sqlf(fixture *f, long long want, long ms, const char *fmt, ...)
	VOX_PRINTF(4, 5);
static long long wait_sqlf(fixture *f, long long want, long ms, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	long long got = th_wait_int(f->dsn, sql, want, ms);
	if (got != want)
		fprintf(stderr, "waited for %lld, got %lld: %s\n", want, got, sql);
	return got;
}

static void add_org(fixture *f, const char *id)
{
	th_pg_okf(f->db, "INSERT INTO organizations (id, name, email) VALUES ('%s',"
		" 'org %.8s', 'leads+%.8s@example.com')", id, id, id);
}

/* ---- events ------------------------------------------------------------- */

typedef struct evbuf {
	vox_event ev;
	char eid[96];
	char phone[32];
	char name[64];
} evbuf;

/* contact, phone, call, name may be NULL (absent). */
static void mk_lead(evbuf *b, const char *eid, const char *org, const char *contact,
		    const char *phone, const char *call, int64_t score,
		    vox_lead_status status, const char *name, int64_t at)
{
	memset(b, 0, sizeof(*b));
	b->ev.kind = VOX_LEAD_SCORED;
	vox_lead_scored *e = &b->ev.u.lead_scored;
	snprintf(b->eid, sizeof(b->eid), "%s", eid);
	e->event_id = (vox_str){b->eid, strlen(b->eid)};
	snprintf(e->org_id.s, sizeof(e->org_id.s), "%s", org);
	if (contact)
		snprintf(e->contact_id.s, sizeof(e->contact_id.s), "%.36s", contact);
	if (phone) {
		snprintf(b->phone, sizeof(b->phone), "%s", phone);
		e->phone = (vox_str){b->phone, strlen(b->phone)};
	}
	if (call)
		snprintf(e->call_id.s, sizeof(e->call_id.s), "%s", call);
	e->lead_score = score;
	e->lead_status = status;
	if (name) {
		snprintf(b->name, sizeof(b->name), "%s", name);
		e->lead_name = (vox_str){b->name, strlen(b->name)};
	}
	e->scored_at = (vox_time){at, 0, true};
}

/* Publish ev with Nats-Msg-Id msgid (NULL: its event_id); JetStream must
 * store it, not drop it as a duplicate. */
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

/* ---- streams, consumers, alerts ----------------------------------------- */

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

/* The input consumer has nothing undelivered nor unacknowledged, twice in
 * a row. */
static void wait_drained(fixture *f)
{
	int quiet = 0;
	long long c = -1;
	for (int i = 0; i < 300 && quiet < 2; i++) {
		c = th_consumer_outstanding(f->js, "EVENTS", DURABLE);
		quiet = c == 0 ? quiet + 1 : 0;
		th_sleep_ms(100);
	}
	if (quiet < 2)
		fprintf(stderr, "consumer not drained: %lld outstanding\n", c);
	assert_int_equal(c, 0);
}

/* Every outbox row is published. */
static void wait_outbox_published(fixture *f)
{
	assert_int_equal(wait_sqlf(f, 0, 15000,
		"SELECT count(*) FROM vox_outbox WHERE published_at IS NULL"), 0);
}

typedef struct alert_list {
	vox_event ev[32];
	char msgid[32][64];
	natsMsg *msgs[32];
	int n;
} alert_list;

/* Read every message of ALERTS (want of them) and decode it. */
static void collect_alerts(fixture *f, alert_list *out, long long want)
{
	memset(out, 0, sizeof(*out));
	wait_outbox_published(f);
	wait_stream_count(f, "ALERTS", want);
	assert_true(want <= 32);
	for (long long seq = 1; seq <= want; seq++) {
		natsMsg *m = NULL;
		vox_error err;
		assert_int_equal(js_GetMsg(&m, f->js, "ALERTS", (uint64_t)seq, NULL, NULL),
				 NATS_OK);
		int i = out->n++;
		out->msgs[i] = m;
		vox_status st = vox_event_decode_subject(&out->ev[i], natsMsg_GetSubject(m),
			natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &err);
		if (st != VOX_OK)
			fprintf(stderr, "alert does not decode: %s\n", err.message);
		assert_int_equal(st, VOX_OK);
		assert_int_equal(out->ev[i].kind, VOX_ALERT_HOT_LEAD);
		snprintf(out->msgid[i], sizeof(out->msgid[i]), "%s", hdr(m, "Nats-Msg-Id"));
	}
}

static void release_alerts(alert_list *a)
{
	for (int i = 0; i < a->n; i++)
		natsMsg_Destroy(a->msgs[i]);
	a->n = 0;
}

/* The message agrees with its hot_lead_alerts row (found by Nats-Msg-Id):
 * same id, org (and subject), contact, call, score, urgency, phone;
 * published_at set. */
static void assert_alert_matches_row(fixture *f, const alert_list *a, int i)
{
	const vox_alert_hot_lead *h = &a->ev[i].u.hot_lead;
	char subject[128], want[2048];
	assert_string_equal(a->msgid[i], h->alert_id.s);
	snprintf(subject, sizeof(subject), "alert.hot_lead.%s", h->org_id.s);
	assert_string_equal(natsMsg_GetSubject(a->msgs[i]), subject);
	const char *urg = h->urgency_level == VOX_URGENCY_HIGH ? "high"
		: h->urgency_level == VOX_URGENCY_MEDIUM ? "medium" : "?";
	snprintf(want, sizeof(want), "%s|%s|%s|%lld|%s|%.*s|t",
		 h->org_id.s, h->contact_id.s, h->call_id.s, (long long)h->lead_score,
		 urg, (int)h->lead_phone.len, h->lead_phone.ptr ? h->lead_phone.ptr : "");
	char got[2048];
	sqlf_text(f, got, sizeof(got),
		  "SELECT org_id || '|' || contact_id || '|' || COALESCE(call_id::text, '')"
		  " || '|' || lead_score || '|' || urgency_level || '|' || lead_phone"
		  " || '|' || (published_at IS NOT NULL)::text::char(1)"
		  " FROM hot_lead_alerts WHERE id = '%s'", a->msgid[i]);
	if (strcmp(want, got) != 0)
		fprintf(stderr, "alert %s: message %s, row %s\n", a->msgid[i], want, got);
	assert_string_equal(got, want);
}

/* ---- 1. a hot lead by phone ------------------------------------------------ */

static void test_hot_lead_by_phone_creates_contact_and_one_alert(void **state)
{
	fixture *f = *state;
	evbuf hot, cold, warm, told;
	add_org(f, ORG_A);
	start_leads(f, 0, NULL);
	mk_lead(&hot, "s1-hot", ORG_A, NULL, "+447700900001", CALL_1, 85,
		VOX_LEAD_NONE, "Ada", T0);
	publish(f, &hot.ev);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM contacts WHERE"
				   " org_id = '" ORG_A "' AND phone = '+447700900001'"
				   " AND first_name = 'Ada' AND lead_score = 85"
				   " AND lead_status = 'hot'"
				   " AND lead_scored_at = to_timestamp(%d)", T0), 1);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts a JOIN contacts c"
				     " ON c.id = a.contact_id WHERE a.org_id = '" ORG_A "'"
				     " AND a.call_id = '" CALL_1 "' AND a.urgency_level = 'high'"
				     " AND a.lead_phone = '+447700900001' AND a.lead_score = 85"
				     " AND a.lead_name = 'Ada'"), 1);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"
				   " WHERE published_at IS NOT NULL"), 1);
	alert_list al;
	collect_alerts(f, &al, 1);
	assert_alert_matches_row(f, &al, 0);
	assert_string_equal(al.ev[0].u.hot_lead.call_id.s, CALL_1);
	assert_int_equal(al.ev[0].u.hot_lead.lead_score, 85);
	assert_int_equal(al.ev[0].u.hot_lead.urgency_level, VOX_URGENCY_HIGH);
	release_alerts(&al);

	/* below 70: statuses derived, no alert; an explicit status wins */
	mk_lead(&cold, "s1-cold", ORG_A, NULL, "+447700900002", CALL_1, 39,
		VOX_LEAD_NONE, "Bob", T0);
	mk_lead(&warm, "s1-warm", ORG_A, NULL, "+447700900003", CALL_1, 69,
		VOX_LEAD_NONE, "Cy", T0);
	mk_lead(&told, "s1-told", ORG_A, NULL, "+447700900004", CALL_1, 75,
		VOX_LEAD_CONTACTED, "Di", T0);
	publish(f, &cold.ev);
	publish(f, &warm.ev);
	publish(f, &told.ev);
	assert_int_equal(wait_sqlf(f, 3, 15000, "SELECT count(*) FROM contacts WHERE"
		" (phone = '+447700900002' AND lead_status = 'cold' AND lead_score = 39)"
		" OR (phone = '+447700900003' AND lead_status = 'warm' AND lead_score = 69)"
		" OR (phone = '+447700900004' AND lead_status = 'contacted' AND lead_score = 75)"),
		3);
	wait_drained(f);
	/* 75 is hot by score (medium urgency) even though the status is given */
	assert_int_equal(wait_sqlf(f, 2, 15000, "SELECT count(*) FROM hot_lead_alerts"), 2);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts WHERE"
				     " lead_phone = '+447700900004' AND urgency_level = 'medium'"), 1);
	collect_alerts(f, &al, 2);
	assert_alert_matches_row(f, &al, 1);
	assert_int_equal(al.ev[1].u.hot_lead.urgency_level, VOX_URGENCY_MEDIUM);
	release_alerts(&al);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	assert_true(th_alive(f->actors[0]));
}

/* ---- 2. concurrent duplicates ------------------------------------------ */

static void test_concurrent_duplicates_make_one_alert(void **state)
{
	fixture *f = *state;
	evbuf hot;
	add_org(f, ORG_A);
	start_leads(f, 0, NULL);
	start_leads(f, 1, NULL);
	mk_lead(&hot, "s2-hot", ORG_A, NULL, "+447700900011", CALL_1, 90,
		VOX_LEAD_NONE, "Eve", T0);
	for (int i = 0; i < 10; i++) {
		char id[64];
		snprintf(id, sizeof(id), "s2-hot-copy-%d", i);
		publish_as(f, &hot.ev, id);
	}
	wait_drained(f);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM contacts"), 1);
	alert_list al;
	collect_alerts(f, &al, 1);
	th_sleep_ms(1500); /* a late second copy would show now */
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 1);
	assert_alert_matches_row(f, &al, 0);
	release_alerts(&al);
	assert_int_equal(th_consumer_outstanding(f->js, "EVENTS", DURABLE), 0);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	assert_true(th_alive(f->actors[0]));
	assert_true(th_alive(f->actors[1]));
}

/* ---- 3. killed between commit and publish -------------------------------- */

static void test_crash_after_commit_publishes_alert_once(void **state)
{
	fixture *f = *state;
	evbuf hot;
	add_org(f, ORG_A);
	start_leads(f, 0, "VOX_FAULT=after-commit");
	mk_lead(&hot, "s3-hot", ORG_A, NULL, "+447700900021", CALL_1, 80,
		VOX_LEAD_NONE, "Fay", T0);
	publish(f, &hot.ev);
	/* the actor commits, then exits before acking or publishing */
	int ws = 0;
	bool exited = false;
	for (int i = 0; i < 200 && !exited; i++) {
		if (waitpid(f->actors[0], &ws, WNOHANG) == f->actors[0])
			exited = true;
		else
			th_sleep_ms(100);
	}
	if (!exited)
		fprintf(stderr, "vox-leads did not exit on the fault (see %s)\n", f->logs[0]);
	assert_true(exited);
	f->actors[0] = 0;
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 3);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"
				     " WHERE published_at IS NULL"), 1);
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 0);

	/* a normal instance: the healer publishes the alert, the redelivered
	 * event makes no second one */
	start_leads(f, 1, NULL);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"
				   " WHERE published_at IS NOT NULL"), 1);
	alert_list al;
	collect_alerts(f, &al, 1);
	assert_alert_matches_row(f, &al, 0);
	release_alerts(&al);
	wait_drained(f);
	th_sleep_ms(2500); /* a couple of healer passes (every 1000 ms) */
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM vox_outbox"), 1);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	assert_true(th_alive(f->actors[1]));
}

/* ---- 4. one alert per (org, contact, call) -------------------------------- */

static void test_one_alert_per_contact_and_call(void **state)
{
	fixture *f = *state;
	evbuf e;
	add_org(f, ORG_A);
	start_leads(f, 0, NULL);
	mk_lead(&e, "s4-1", ORG_A, NULL, "+447700900031", CALL_1, 75, VOX_LEAD_NONE,
		"Hal", T0);
	publish(f, &e.ev);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"), 1);
	/* re-scored hot in the same call */
	mk_lead(&e, "s4-2", ORG_A, NULL, "+447700900031", CALL_1, 95, VOX_LEAD_NONE,
		"Hal", T0 + 10);
	publish(f, &e.ev);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM contacts"
				   " WHERE lead_score = 95"), 1);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"), 1);
	/* the same contact, hot in a new call */
	mk_lead(&e, "s4-3", ORG_A, NULL, "+447700900031", CALL_2, 82, VOX_LEAD_NONE,
		"Hal", T0 + 20);
	publish(f, &e.ev);
	assert_int_equal(wait_sqlf(f, 2, 15000, "SELECT count(*) FROM hot_lead_alerts"), 2);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(DISTINCT contact_id) FROM hot_lead_alerts"), 1);
	/* no call at all: one alert, and a second score adds none */
	mk_lead(&e, "s4-4", ORG_A, NULL, "+447700900032", NULL, 77, VOX_LEAD_NONE,
		"Ivy", T0);
	publish(f, &e.ev);
	assert_int_equal(wait_sqlf(f, 3, 15000, "SELECT count(*) FROM hot_lead_alerts"), 3);
	mk_lead(&e, "s4-5", ORG_A, NULL, "+447700900032", NULL, 99, VOX_LEAD_NONE,
		"Ivy", T0 + 10);
	publish(f, &e.ev);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM contacts"
				   " WHERE lead_score = 99"), 1);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"
				     " WHERE call_id IS NULL"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"), 3);
	alert_list al;
	collect_alerts(f, &al, 3);
	th_sleep_ms(1000);
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 3);
	for (int i = 0; i < al.n; i++)
		assert_alert_matches_row(f, &al, i);
	assert_string_equal(al.ev[2].u.hot_lead.call_id.s, "");
	release_alerts(&al);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
}

/* A warm then a hot score of the same contact and call in one batch: the
 * alert row comes from the hot event, and so must its message. */
static void test_alert_message_comes_from_the_hot_event_of_a_batch(void **state)
{
	fixture *f = *state;
	evbuf warm, hot;
	add_org(f, ORG_A);
	start_leads(f, 0, NULL); /* creates the streams and the consumer */
	stop_leads(f, 0);
	mk_lead(&warm, "s4b-warm", ORG_A, NULL, "+447700900041", CALL_1, 50,
		VOX_LEAD_NONE, "Jo", T0);
	mk_lead(&hot, "s4b-hot", ORG_A, NULL, "+447700900041", CALL_1, 85,
		VOX_LEAD_NONE, "Jo", T0 + 10);
	publish(f, &warm.ev);
	publish(f, &hot.ev);
	start_leads(f, 0, NULL); /* one fetch takes both */
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"), 1);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"
				     " WHERE lead_score = 85 AND urgency_level = 'high'"), 1);
	alert_list al;
	collect_alerts(f, &al, 1);
	if (al.ev[0].u.hot_lead.lead_score != 85)
		fprintf(stderr, "BUG: alert message carries score %lld of the warm event,"
			" its row 85\n", (long long)al.ev[0].u.hot_lead.lead_score);
	assert_alert_matches_row(f, &al, 0);
	release_alerts(&al);
}

/* ---- 5. ordering by scored_at ------------------------------------------- */

static void test_older_score_never_overwrites_newer(void **state)
{
	fixture *f = *state;
	evbuf newer, older, oldest, newest;
	add_org(f, ORG_A);
	start_leads(f, 0, NULL);
	stop_leads(f, 0);
	/* same batch: the newer score is published first */
	mk_lead(&newer, "s5-newer", ORG_A, NULL, "+447700900051", CALL_1, 60,
		VOX_LEAD_NONE, "Kit", T0 + 100);
	mk_lead(&older, "s5-older", ORG_A, NULL, "+447700900051", CALL_1, 20,
		VOX_LEAD_NONE, "Kit", T0 + 50);
	publish(f, &newer.ev);
	publish(f, &older.ev);
	start_leads(f, 0, NULL);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM contacts WHERE lead_score = 60"
				     " AND lead_status = 'warm'"
				     " AND lead_scored_at = to_timestamp(%d)", T0 + 100), 1);
	/* across batches */
	mk_lead(&oldest, "s5-oldest", ORG_A, NULL, "+447700900051", CALL_1, 10,
		VOX_LEAD_NONE, "Kit", T0 + 10);
	publish(f, &oldest.ev);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM contacts WHERE lead_score = 60"
				     " AND lead_status = 'warm'"
				     " AND lead_scored_at = to_timestamp(%d)", T0 + 100), 1);
	/* a newer one still applies */
	mk_lead(&newest, "s5-newest", ORG_A, NULL, "+447700900051", CALL_1, 30,
		VOX_LEAD_NONE, "Kit", T0 + 200);
	publish(f, &newest.ev);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM contacts"
				   " WHERE lead_score = 30 AND lead_status = 'cold'"
				   " AND lead_scored_at = to_timestamp(%d)", T0 + 200), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM contacts"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"), 0);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
}

/* ---- 6. per-org threshold ------------------------------------------------ */

static void test_per_org_threshold(void **state)
{
	fixture *f = *state;
	evbuf a, b, a2;
	add_org(f, ORG_A);
	add_org(f, ORG_B);
	th_pg_ok(f->db, "INSERT INTO org_feature_flags (org_id, flag_name, enabled, value)"
		 " VALUES ('" ORG_A "', 'hot_lead_threshold', true, '90'::jsonb)");
	start_leads(f, 0, NULL);
	mk_lead(&a, "s6-a", ORG_A, NULL, "+447700900061", CALL_1, 85, VOX_LEAD_NONE,
		"Lu", T0);
	mk_lead(&b, "s6-b", ORG_B, NULL, "+447700900061", CALL_1, 85, VOX_LEAD_NONE,
		"Lu", T0);
	publish(f, &a.ev);
	publish(f, &b.ev);
	assert_int_equal(wait_sqlf(f, 2, 15000, "SELECT count(*) FROM contacts"
				   " WHERE lead_score = 85"), 2);
	wait_drained(f);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"
				     " WHERE org_id = '" ORG_B "'"), 1);
	alert_list al;
	collect_alerts(f, &al, 1);
	assert_string_equal(natsMsg_GetSubject(al.msgs[0]), "alert.hot_lead." ORG_B);
	assert_alert_matches_row(f, &al, 0);
	release_alerts(&al);
	/* at A's threshold, A's lead is hot */
	mk_lead(&a2, "s6-a2", ORG_A, NULL, "+447700900061", CALL_2, 90, VOX_LEAD_NONE,
		"Lu", T0 + 10);
	publish(f, &a2.ev);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"
				   " WHERE org_id = '" ORG_A "'"), 1);
	collect_alerts(f, &al, 2);
	assert_string_equal(natsMsg_GetSubject(al.msgs[1]), "alert.hot_lead." ORG_A);
	release_alerts(&al);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
}

/* ---- 7. dead letters and contact_id ---------------------------------------- */

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

static void assert_dead_letter(fixture *f, const char *msgid, const char *org,
			       const char *code, const char *reason)
{
	natsMsg *m = dlq_find(f, msgid);
	if (!m)
		fprintf(stderr, "no dead letter for %s\n", msgid);
	assert_non_null(m);
	char want_subject[256];
	snprintf(want_subject, sizeof(want_subject), "dlq.lead.scored.%s", org);
	assert_string_equal(natsMsg_GetSubject(m), want_subject);
	assert_string_equal(hdr(m, "Vox-Error-Code"), code);
	assert_string_equal(hdr(m, "Vox-Error-Reason"), reason);
	assert_string_equal(hdr(m, "Vox-Actor"), ACTOR);
	natsMsg_Destroy(m);
}

static void test_unknown_org_and_contact_dead_lettered_known_contact_used(void **state)
{
	fixture *f = *state;
	evbuf x, nc, known, known2;
	add_org(f, ORG_A);
	add_org(f, ORG_B);
	char cid[64];
	sqlf_text(f, cid, sizeof(cid), "INSERT INTO contacts (org_id, phone, first_name)"
		  " VALUES ('" ORG_A "', '+447700900071', 'Gil') RETURNING id");
	/* the same contact id in another org is unknown there */
	start_leads(f, 0, NULL);
	mk_lead(&x, "s7-unknown-org", ORG_X, NULL, "+447700900072", CALL_1, 90,
		VOX_LEAD_NONE, "Max", T0);
	publish(f, &x.ev);
	wait_stream_count(f, "DLQ", 1);
	assert_dead_letter(f, "s7-unknown-org", ORG_X, "404", "unknown_org");

	mk_lead(&nc, "s7-no-contact", ORG_A, CONTACT_NONE, NULL, CALL_1, 90,
		VOX_LEAD_NONE, NULL, T0);
	publish(f, &nc.ev);
	wait_stream_count(f, "DLQ", 2);
	assert_dead_letter(f, "s7-no-contact", ORG_A, "404", "not_found");

	evbuf other;
	mk_lead(&other, "s7-other-org", ORG_B, cid, NULL, CALL_1, 90, VOX_LEAD_NONE,
		NULL, T0);
	publish(f, &other.ev);
	wait_stream_count(f, "DLQ", 3);
	assert_dead_letter(f, "s7-other-org", ORG_B, "404", "not_found");

	/* a valid contact_id is used: no new contact */
	mk_lead(&known, "s7-known", ORG_A, cid, NULL, CALL_1, 88, VOX_LEAD_NONE,
		NULL, T0);
	publish(f, &known.ev);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM contacts WHERE"
				   " id = '%s' AND lead_score = 88 AND lead_status = 'hot'", cid), 1);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM hot_lead_alerts"
				   " WHERE contact_id = '%s' AND lead_phone = '+447700900071'"
				   " AND lead_name = 'Gil'", cid), 1);
	/* with a phone of its own too, the contact_id still wins */
	mk_lead(&known2, "s7-known2", ORG_A, cid, "+447700900073", CALL_1, 45,
		VOX_LEAD_NONE, NULL, T0 + 10);
	publish(f, &known2.ev);
	assert_int_equal(wait_sqlf(f, 1, 15000, "SELECT count(*) FROM contacts WHERE"
				   " id = '%s' AND lead_score = 45 AND lead_status = 'warm'", cid), 1);
	wait_drained(f);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM contacts"), 1);
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts"), 1);
	alert_list al;
	collect_alerts(f, &al, 1);
	assert_alert_matches_row(f, &al, 0);
	assert_string_equal(al.ev[0].u.hot_lead.contact_id.s, cid);
	release_alerts(&al);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 3);
	/* leads are idempotent by their keys: no per-event record */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM processed_webhook_events"), 0);
	assert_true(th_alive(f->actors[0]));
}

/* ---- 8. the example alert consumer ------------------------------------ */

/* Run vox-example-alerts with args; its stdout lines into lines (up to
 * max); returns how many. The exit status must be 0. */
static int run_alert_consumer(fixture *f, const char *args, char lines[][1024], int max)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "VOX_NATS_URL='%s' '%s' %s 2>>'%s/leads-%ld-%d-alerts.log'",
		 f->nats.url, th_bin("vox-example-alerts"), args, th_env("VOX_TEST_TMP"),
		 (long)getpid(), f->run);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[1024];
	int n = 0;
	while (fgets(line, sizeof(line), p)) {
		if (n < max)
			snprintf(lines[n], sizeof(lines[n]), "%s", line);
		n++;
	}
	int rc = pclose(p);
	assert_true(WIFEXITED(rc));
	assert_int_equal(WEXITSTATUS(rc), 0);
	return n;
}

static void test_example_alert_consumer_prints_each_alert_once(void **state)
{
	fixture *f = *state;
	add_org(f, ORG_A);
	start_leads(f, 0, NULL);
	for (int i = 0; i < 3; i++) {
		evbuf e;
		char eid[32], phone[32];
		snprintf(eid, sizeof(eid), "s8-%d", i);
		snprintf(phone, sizeof(phone), "+44770090008%d", i);
		mk_lead(&e, eid, ORG_A, NULL, phone, CALL_1, 80 + i, VOX_LEAD_NONE, "Ned", T0);
		publish(f, &e.ev);
	}
	assert_int_equal(wait_sqlf(f, 3, 15000, "SELECT count(*) FROM hot_lead_alerts"
				   " WHERE published_at IS NOT NULL"), 3);
	wait_stream_count(f, "ALERTS", 3);
	PGresult *r = th_pg_query(f->db, "SELECT id FROM hot_lead_alerts ORDER BY lead_score");
	assert_int_equal(PQntuples(r), 3);
	char ids[4][40];
	for (int i = 0; i < 3; i++)
		snprintf(ids[i], sizeof(ids[i]), "%s", PQgetvalue(r, i, 0));
	PQclear(r);

	static char lines[8][1024];
	int n = run_alert_consumer(f, "--durable t1 --count 3 --idle-ms 5000", lines, 8);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		int found = 0;
		char key[64];
		snprintf(key, sizeof(key), "\"%.36s\"", ids[i]);
		for (int j = 0; j < n; j++)
			if (strstr(lines[j], key) && strstr(lines[j], "alert_id"))
				found++;
		if (found != 1)
			fprintf(stderr, "alert %s printed %d times\n", ids[i], found);
		assert_int_equal(found, 1);
	}
	/* again with the same durable: nothing new */
	n = run_alert_consumer(f, "--durable t1 --idle-ms 1500", lines, 8);
	if (n != 0)
		fprintf(stderr, "second run printed %d lines, first: %s", n, lines[0]);
	assert_int_equal(n, 0);
	/* one more alert: printed alone */
	evbuf e;
	mk_lead(&e, "s8-4", ORG_A, NULL, "+447700900089", CALL_1, 99, VOX_LEAD_NONE,
		"Ned", T0);
	publish(f, &e.ev);
	assert_int_equal(wait_sqlf(f, 4, 15000, "SELECT count(*) FROM hot_lead_alerts"
				   " WHERE published_at IS NOT NULL"), 4);
	wait_stream_count(f, "ALERTS", 4);
	char last[40], key[64];
	sqlf_text(f, last, sizeof(last), "SELECT id FROM hot_lead_alerts WHERE lead_score = 99");
	snprintf(key, sizeof(key), "\"%.36s\"", last);
	n = run_alert_consumer(f, "--durable t1 --idle-ms 1500", lines, 8);
	assert_int_equal(n, 1);
	assert_non_null(strstr(lines[0], key));
}

/* ---- 9. contacts from before vox ------------------------------------------- */

/* A contact of the replaced system may hold a phone that is not E.164
 * ("07700 900123") or a first name longer than an alert's lead_name: the
 * lead is applied and its alert emitted without the field that does not
 * fit, instead of the alert's encoding failing the whole batch (it used
 * to be dead-lettered "handler: invalid" and the score lost). */
static void test_legacy_contact_still_gets_its_hot_lead_alert(void **state)
{
	fixture *f = *state;
	evbuf phone_lead, name_lead;
	char legacy_phone[64], legacy_name[64], long_name[301];
	memset(long_name, 'n', 300);
	long_name[300] = '\0';
	add_org(f, ORG_A);
	sqlf_text(f, legacy_phone, sizeof(legacy_phone),
		  "INSERT INTO contacts (org_id, phone, first_name) VALUES ('" ORG_A "',"
		  " '07700 900123', 'Hal') RETURNING id");
	sqlf_text(f, legacy_name, sizeof(legacy_name),
		  "INSERT INTO contacts (org_id, phone, first_name) VALUES ('" ORG_A "',"
		  " '+447700900091', '%s') RETURNING id", long_name);
	start_leads(f, 0, NULL);
	mk_lead(&phone_lead, "s9-legacy-phone", ORG_A, legacy_phone, NULL, CALL_1, 91,
		VOX_LEAD_NONE, NULL, T0);
	mk_lead(&name_lead, "s9-legacy-name", ORG_A, legacy_name, NULL, CALL_1, 72,
		VOX_LEAD_NONE, NULL, T0);
	publish(f, &phone_lead.ev);
	publish(f, &name_lead.ev);
	assert_int_equal(wait_sqlf(f, 2, 15000, "SELECT count(*) FROM contacts WHERE"
				   " lead_status = 'hot' AND lead_scored_at = to_timestamp(%d)"
				   " AND ((id = '%s' AND lead_score = 91)"
				   "  OR (id = '%s' AND lead_score = 72))",
				   T0, legacy_phone, legacy_name), 2);
	wait_drained(f);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	/* the contacts keep what they had */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM contacts WHERE"
				     " (id = '%s' AND phone = '07700 900123' AND first_name = 'Hal')"
				     " OR (id = '%s' AND length(first_name) = 300)",
				     legacy_phone, legacy_name), 2);
	/* the rows say what the alerts say: no field that does not fit */
	assert_int_equal(th_pg_intf(f->db, "SELECT count(*) FROM hot_lead_alerts WHERE"
				     " published_at IS NOT NULL AND ((contact_id = '%s'"
				     " AND lead_phone IS NULL AND lead_name = 'Hal')"
				     " OR (contact_id = '%s' AND lead_phone = '+447700900091'"
				     " AND lead_name IS NULL))", legacy_phone, legacy_name), 2);
	alert_list al;
	collect_alerts(f, &al, 2);
	int seen = 0;
	for (int i = 0; i < al.n; i++) {
		const vox_alert_hot_lead *h = &al.ev[i].u.hot_lead;
		assert_string_equal(al.msgid[i], h->alert_id.s);
		assert_string_equal(h->call_id.s, CALL_1);
		if (strcmp(h->contact_id.s, legacy_phone) == 0) {
			assert_null(h->lead_phone.ptr);
			assert_int_equal(h->lead_name.len, 3);
			assert_memory_equal(h->lead_name.ptr, "Hal", 3);
			assert_int_equal(h->lead_score, 91);
			assert_int_equal(h->urgency_level, VOX_URGENCY_HIGH);
			seen |= 1;
		} else {
			assert_string_equal(h->contact_id.s, legacy_name);
			assert_null(h->lead_name.ptr);
			assert_int_equal(h->lead_phone.len, 13);
			assert_memory_equal(h->lead_phone.ptr, "+447700900091", 13);
			assert_int_equal(h->lead_score, 72);
			assert_int_equal(h->urgency_level, VOX_URGENCY_MEDIUM);
			seen |= 2;
		}
	}
	assert_int_equal(seen, 3);
	release_alerts(&al);
	assert_true(th_alive(f->actors[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hot_lead_by_phone_creates_contact_and_one_alert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_duplicates_make_one_alert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_commit_publishes_alert_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_alert_per_contact_and_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alert_message_comes_from_the_hot_event_of_a_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_score_never_overwrites_newer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_org_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_org_and_contact_dead_lettered_known_contact_used, setup, teardown),
		cmocka_unit_test_setup_teardown(test_example_alert_consumer_prints_each_alert_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_contact_still_gets_its_hot_lead_alert, setup, teardown),
	};
	if (getenv("VOX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VOX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
