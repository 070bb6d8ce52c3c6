/*
 * Integration: hostile input through every actor. SQL metacharacters
 * (quotes, backslashes, comment and statement markers, dollar quotes,
 * array-literal syntax, the word NULL, printf directives, control
 * characters, multi-byte UTF-8, text at its byte limit) go through every
 * text field of every event kind, every credential field and every query
 * filter. Stored values must equal the input byte for byte, or be refused
 * with a reason where the contract restricts the field; nothing else may
 * change. Then the input limits: each text field one byte over its limit,
 * a map over 256 entries, a message over 1 MiB, oversize requests to
 * vox-vault and vox-query: each refused with its reason, never truncated.
 *
 * All five actors run at once, so scripts/test.sh also reruns this test
 * with every actor under valgrind (VOX_TEST_WRAP).
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>
#include <sodium.h>

#include "core/vault.h"
#include "harness.h"
#include "vox/event.h"

#define ORG "1a000000-0000-4000-8000-0000000000a1"
#define OPENING 100000
#define RATE 70
#define T0 1795000000000LL /* 2026-11-18, in ms */
#define NACTORS 5
#define WAIT_MS 120000

static const char *const actor_names[NACTORS] = {"vox-calls", "vox-billing",
						 "vox-leads", "vox-vault",
						 "vox-query"};

/* The hostile texts; every one is valid UTF-8 without NUL. */
static const char *const META[] = {
	"O'Brien",
	"say \"hi\"",
	"back\\slash \\\\ \\n \\x00 \\'",
	"x'); DROP TABLE calls; --",
	"/* comment */ -- tail",
	"$$ dollar $tag$ $1 $2::text",
	"{braces},\"a,b\",{NULL}",
	"NULL",
	"",
	"%s %n %% %d %*s",
	"tab\there\r\nnew line\x1b[0m\x7f",
	"Zo\xc3\xab \xe2\x80\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xa6\xb7 \xe2\x80\xae",
	"' OR '1'='1",
	"\\'; SELECT pg_sleep(10); --",
	"E'\\x41' || chr(0) || U&'\\0041'",
	"a\\\"b'c\"d{e}f,g",
};
#define NMETA VOX_NELEM(META)

typedef struct fixture {
	th_nats nats;
	char dsn[512];
	char query_dsn[700];
	char env_url[128];
	char env_dsn[600];
	char env_qdsn[800];
	pid_t actors[NACTORS];
	char logs[NACTORS][600];
	natsConnection *nc;
	jsCtx *js;
	PGconn *db;
} fixture;

static fixture *F;

/* ---- payloads ------------------------------------------------------------ */

typedef struct kv {
	const char *k;
	char t; /* 'S' string (s, n), 'I' integer */
	const char *s;
	size_t n;
	int64_t i;
} kv;

#define S(k, v) {k, 'S', v, strlen(v), 0}
#define SN(k, v, len) {k, 'S', v, len, 0}
#define I(k, v) {k, 'I', NULL, 0, v}

static void pack(msgpack_sbuffer *sb, const kv *kvs, size_t n)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_str_with_body(&pk, kvs[i].k, strlen(kvs[i].k));
		if (kvs[i].t == 'S')
			msgpack_pack_str_with_body(&pk, kvs[i].s, kvs[i].n);
		else
			msgpack_pack_int64(&pk, kvs[i].i);
	}
}

static void publish(const char *kind, const kv *kvs, size_t n, const char *msgid)
{
	msgpack_sbuffer sb;
	char subject[128];
	pack(&sb, kvs, n);
	snprintf(subject, sizeof(subject), "%s.%s", kind, ORG);
	th_publish_raw(F->js, subject, sb.data, sb.size, msgid);
	msgpack_sbuffer_destroy(&sb);
}

/* An id field's version of META[i]: printable ASCII, spaces only when
 * allowed, prefixed to be unique. */
static void id_of(char *out, size_t len, const char *prefix, size_t i, bool space)
{
	size_t k = (size_t)snprintf(out, len, "%s%zu-", prefix, i);
	for (const char *p = META[i]; *p && k + 1 < len; p++) {
		unsigned char c = (unsigned char)*p;
		bool ok = c >= 0x21 && c <= 0x7e;
		out[k++] = ok || (space && c == ' ') ? (char)c : '_';
	}
	out[k] = '\0';
}

static void call_id(char out[37], size_t i)
{
	snprintf(out, 37, "ca000000-0000-4000-8000-0000000000%02zu", i);
}

/* ---- SQL ----------------------------------------------------------------- */

/* The single text value of sql with one parameter; NULL is "(null)". */
static char *sql_text(const char *sql, const char *param, size_t *len)
{
	const char *p[1] = {param};
	PGresult *r = PQexecParams(F->db, sql, param ? 1 : 0, NULL, param ? p : NULL,
				   NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		fprintf(stderr, "sql_text: %s (%d rows) for %s [%s]\n",
			PQresultErrorMessage(r), PQntuples(r), sql, param ? param : "");
		PQclear(r);
		fail();
	}
	char *v = PQgetisnull(r, 0, 0) ? NULL
		  : vox_strndup(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	*len = v ? (size_t)PQgetlength(r, 0, 0) : 0;
	PQclear(r);
	return v;
}

/* Like sql_text, but NULL when there is no row yet. */
static char *sql_text_opt(const char *sql, const char *param, size_t *len)
{
	const char *p[1] = {param};
	PGresult *r = PQexecParams(F->db, sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "sql_text_opt: %s for %s\n", PQresultErrorMessage(r), sql);
		PQclear(r);
		fail();
	}
	char *v = NULL;
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
		*len = (size_t)PQgetlength(r, 0, 0);
		v = vox_strndup(PQgetvalue(r, 0, 0), *len);
	}
	PQclear(r);
	return v;
}

/* The stored text equals want, byte for byte. */
static void expect_text(const char *sql, const char *param, const char *want,
			size_t wantlen)
{
	size_t n;
	char *got = sql_text(sql, param, &n);
	if (!got || n != wantlen || memcmp(got, want, n) != 0) {
		fprintf(stderr, "stored value differs for %s [%s]:\n want %zu bytes '%.*s'\n"
			" got %zu bytes '%.*s'\n", sql, param, wantlen,
			(int)(wantlen > 200 ? 200 : wantlen), want, n,
			(int)(n > 200 ? 200 : n), got ? got : "(null)");
		free(got);
		fail();
	}
	free(got);
}

static long long wait_count(long long want, const char *fmt, ...) VOX_PRINTF(2, 3);
static long long wait_count(long long want, const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	long long got = th_wait_int(F->dsn, sql, want, WAIT_MS);
	if (got != want)
		fprintf(stderr, "want %lld, got %lld: %s\n", want, got, sql);
	assert_int_equal(got, want);
	return got;
}

/* ---- actors ---------------------------------------------------------------- */

static void start_actors(fixture *f)
{
	char e_fetch[] = "VOX_FETCH_WAIT_MS=200";
	char e_age[] = "VOX_OUTBOX_AGE_MS=0";
	char e_keys[] = "VOX_VAULT_KEYS=1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	char *env[] = {f->env_url, f->env_dsn, e_fetch, e_age, e_keys, NULL};
	char *qenv[] = {f->env_url, f->env_qdsn, NULL};
	for (int i = 0; i < NACTORS; i++) {
		snprintf(f->logs[i], sizeof(f->logs[i]), "%s/inputs-%s-%ld.log",
			 th_env("VOX_TEST_TMP"), actor_names[i], (long)getpid());
		f->actors[i] = th_spawn(actor_names[i],
					strcmp(actor_names[i], "vox-query") ? env : qenv,
					f->logs[i]);
	}
	for (int i = 0; i < NACTORS; i++)
		th_wait_started(&f->actors[i], actor_names[i], f->logs[i], 1200);
}

static int group_setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	F = f;
	*state = f;
	assert_true(sodium_init() >= 0);
	th_nats_start(&f->nats);
	th_pg_migrated_db("inputs", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
	th_pg_okf(f->db, "INSERT INTO organizations (id, name, email, wallet_balance_pence)"
		  " VALUES ('%s', 'Inputs Clinic', 'desk@example.com', %d)", ORG, OPENING);
	const char *name = strstr(f->dsn, "dbname=");
	assert_non_null(name);
	snprintf(f->query_dsn, sizeof(f->query_dsn), "%s %s",
		 th_env("VOX_PG_QUERY_DSN"), name);
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
	snprintf(f->env_qdsn, sizeof(f->env_qdsn), "VOX_PG_DSN=%s", f->query_dsn);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 20000;
	th_js_connect(f->nats.url, &jo, &f->nc, &f->js);
	start_actors(f);
	return 0;
}

/* Stops everything, also after a failed assertion; a clean stop is
 * checked: exit 0 on SIGTERM (under valgrind: no error found either). */
static int group_teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	int bad = 0;
	for (int i = 0; i < NACTORS; i++) {
		if (f->actors[i] <= 0)
			continue;
		int ws = th_stop(f->actors[i], SIGTERM, 20000);
		if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
			fprintf(stderr, "%s did not stop cleanly (status %d, see %s)\n",
				actor_names[i], ws, f->logs[i]);
			bad++;
		}
	}
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	PQfinish(f->db);
	free(f);
	return bad ? -1 : 0;
}

/* ---- events -------------------------------------------------------------- */

static void test_metacharacters_in_every_event_field(void **state)
{
	(void)state;
	char cid[37], eid[160], vapi[160], pi[160], re[160], from[20], phone[20];
	for (size_t i = 0; i < NMETA; i++) {
		const char *m = META[i];
		call_id(cid, i);
		snprintf(from, sizeof(from), "+4477009001%02zu", i);
		snprintf(phone, sizeof(phone), "+4477009002%02zu", i);
		id_of(vapi, sizeof(vapi), "vapi-", i, false);
		id_of(eid, sizeof(eid), "evt s ", i, true);
		kv started[] = {S("event_id", eid), S("org_id", ORG), S("call_id", cid),
				S("vapi_call_id", vapi), S("direction", "inbound"),
				S("from_number", from), S("to_number", "+442071838750"),
				S("caller_name", m), I("started_at", T0 + (int64_t)i)};
		publish("call.started", started, VOX_NELEM(started), NULL);
		id_of(eid, sizeof(eid), "evt e ", i, true);
		kv ended[] = {S("event_id", eid), S("org_id", ORG), S("call_id", cid),
			      I("ended_at", T0 + 60000 + (int64_t)i),
			      I("duration_seconds", 60), S("status", "completed"),
			      S("transcript", m), S("summary", m), S("recording_url", m),
			      S("sentiment_summary", m)};
		publish("call.ended", ended, VOX_NELEM(ended), NULL);
		id_of(eid, sizeof(eid), "evt p ", i, true);
		id_of(pi, sizeof(pi), "pi_", i, false);
		kv paid[] = {S("event_id", eid), S("org_id", ORG),
			     S("stripe_payment_intent_id", pi), I("amount_pence", 1000),
			     S("description", m), I("occurred_at", T0)};
		publish("payment.succeeded", paid, VOX_NELEM(paid), NULL);
		id_of(eid, sizeof(eid), "evt r ", i, true);
		id_of(re, sizeof(re), "re_", i, false);
		kv refunded[] = {S("event_id", eid), S("org_id", ORG),
				 S("stripe_refund_id", re),
				 S("stripe_payment_intent_id", pi), I("amount_pence", 100),
				 I("occurred_at", T0 + 1000)};
		publish("payment.refunded", refunded, VOX_NELEM(refunded), NULL);
		id_of(eid, sizeof(eid), "evt l ", i, true);
		kv lead[] = {S("event_id", eid), S("org_id", ORG), S("phone", phone),
			     I("lead_score", 90), S("lead_name", m),
			     S("service_interest", m), S("summary", m),
			     I("scored_at", T0 + 2000)};
		publish("lead.scored", lead, VOX_NELEM(lead), NULL);
	}
	long long n = (long long)NMETA;
	wait_count(n, "SELECT count(*) FROM calls WHERE status = 'completed'");
	wait_count(n, "SELECT count(*) FROM hot_lead_alerts");
	wait_count(3 * n, "SELECT count(*) FROM credit_transactions");
	wait_count(OPENING + n * (1000 - 100 - RATE),
		   "SELECT wallet_balance_pence FROM organizations WHERE id = '%s'", ORG);

	for (size_t i = 0; i < NMETA; i++) {
		const char *m = META[i];
		size_t ml = strlen(m);
		call_id(cid, i);
		snprintf(from, sizeof(from), "+4477009001%02zu", i);
		snprintf(phone, sizeof(phone), "+4477009002%02zu", i);
		static const char *const call_cols[] = {"caller_name", "transcript",
							"summary", "recording_url",
							"sentiment_summary"};
		for (size_t c = 0; c < VOX_NELEM(call_cols); c++) {
			char sql[128];
			snprintf(sql, sizeof(sql), "SELECT %s FROM calls WHERE id = $1",
				 call_cols[c]);
			expect_text(sql, cid, m, ml);
		}
		id_of(vapi, sizeof(vapi), "vapi-", i, false);
		expect_text("SELECT vapi_call_id FROM calls WHERE id = $1", cid, vapi,
			    strlen(vapi));
		expect_text("SELECT first_name FROM contacts WHERE phone = $1", from, m, ml);
		expect_text("SELECT first_name FROM contacts WHERE phone = $1", phone, m, ml);
		static const char *const lead_cols[] = {"lead_name", "service_interest",
							"summary"};
		for (size_t c = 0; c < VOX_NELEM(lead_cols); c++) {
			char sql[160];
			snprintf(sql, sizeof(sql), "SELECT a.%s FROM hot_lead_alerts a"
				 " JOIN contacts k ON k.id = a.contact_id WHERE k.phone = $1",
				 lead_cols[c]);
			expect_text(sql, phone, m, ml);
		}
		id_of(pi, sizeof(pi), "pi_", i, false);
		id_of(re, sizeof(re), "re_", i, false);
		expect_text("SELECT description FROM credit_transactions"
			    " WHERE type = 'topup' AND stripe_payment_intent_id = $1", pi, m, ml);
		expect_text("SELECT stripe_refund_id FROM credit_transactions"
			    " WHERE type = 'refund' AND stripe_payment_intent_id = $1", pi,
			    re, strlen(re));
		id_of(eid, sizeof(eid), "evt p ", i, true);
		expect_text("SELECT event_id FROM credit_transactions"
			    " WHERE type = 'topup' AND stripe_payment_intent_id = $1", pi,
			    eid, strlen(eid));
	}
	/* nothing else: one org, unchanged; one call and two contacts per
	 * text; the tables the texts name are all still there */
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM organizations"), 1);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM organizations"
				   " WHERE name = 'Inputs Clinic' AND email = 'desk@example.com'"), 1);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM calls"), n);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM contacts"), 2 * n);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM call_charges"), n);
	assert_int_equal(th_stream_count(F->js, "DLQ"), 0);

	/* and read back through vox-query, byte for byte */
	for (size_t i = 0; i < NMETA; i++) {
		char subject[128];
		th_body b;
		th_reply r;
		call_id(cid, i);
		snprintf(subject, sizeof(subject), "query.call.%s", ORG);
		th_body_init(&b, 1);
		th_body_str(&b, "call_id", cid);
		assert_int_equal(th_request_raw(F->nc, subject, b.sb.data, b.sb.size,
						NULL, NULL, &r), NATS_OK);
		msgpack_sbuffer_destroy(&b.sb);
		assert_string_equal(r.code, "");
		static const char *const keys[] = {"caller_name", "transcript", "summary"};
		for (size_t k = 0; k < VOX_NELEM(keys); k++) {
			const msgpack_object *o = th_get_key(&r.u.data, keys[k]);
			assert_int_equal(o->type, MSGPACK_OBJECT_STR);
			assert_int_equal(o->via.str.size, strlen(META[i]));
			assert_true(o->via.str.size == 0 ||
				    memcmp(o->via.str.ptr, META[i], o->via.str.size) == 0);
		}
		th_reply_free(&r);
	}
}

/* ---- field limits ---------------------------------------------------------- */

/* A text of n bytes made of metacharacters (ASCII, so any cut is UTF-8). */
static char *meta_text(size_t n)
{
	static const char pat[] = "'\";\\--/*$$*/{},NULL% ";
	char *s = vox_malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		s[i] = pat[i % (sizeof(pat) - 1)];
	s[n] = '\0';
	return s;
}

/* Find in the DLQ a message on dlq.<kind>.ORG whose Vox-Error is want. */
static bool dlq_has(const char *kind, const char *want_code, const char *want_error)
{
	long long n = th_stream_count(F->js, "DLQ");
	char subject[128];
	snprintf(subject, sizeof(subject), "dlq.%s.%s", kind, ORG);
	for (long long s = 1; s <= n; s++) {
		natsMsg *m = NULL;
		if (js_GetMsg(&m, F->js, "DLQ", (uint64_t)s, NULL, NULL) != NATS_OK)
			continue;
		const char *code = "", *err = "";
		VOX_UNUSED(natsMsgHeader_Get(m, "Vox-Error-Reason", &code));
		VOX_UNUSED(natsMsgHeader_Get(m, "Vox-Error", &err));
		bool hit = strcmp(natsMsg_GetSubject(m), subject) == 0 && code &&
			   strcmp(code, want_code) == 0 && err &&
			   strcmp(err, want_error) == 0;
		natsMsg_Destroy(m);
		if (hit)
			return true;
	}
	return false;
}

typedef struct limit_case {
	const char *kind;
	const char *field;
	size_t max;
	const char *table_sql; /* where the value at its limit is stored */
} limit_case;

static void test_each_text_field_at_and_over_its_limit(void **state)
{
	(void)state;
	static const limit_case cases[] = {
		{"call.started", "caller_name", 200, "SELECT caller_name FROM calls WHERE id = $1"},
		{"call.ended", "transcript", 524288, "SELECT transcript FROM calls WHERE id = $1"},
		{"call.ended", "summary", 16384, "SELECT summary FROM calls WHERE id = $1"},
		{"call.ended", "recording_url", 2048, "SELECT recording_url FROM calls WHERE id = $1"},
		{"call.ended", "sentiment_summary", 16384, "SELECT sentiment_summary FROM calls WHERE id = $1"},
		{"payment.succeeded", "description", 1000, "SELECT description FROM credit_transactions WHERE stripe_payment_intent_id = $1"},
		{"lead.scored", "lead_name", 200, "SELECT a.lead_name FROM hot_lead_alerts a JOIN contacts k ON k.id = a.contact_id WHERE k.phone = $1"},
		{"lead.scored", "service_interest", 1000, "SELECT a.service_interest FROM hot_lead_alerts a JOIN contacts k ON k.id = a.contact_id WHERE k.phone = $1"},
		{"lead.scored", "summary", 16384, "SELECT a.summary FROM hot_lead_alerts a JOIN contacts k ON k.id = a.contact_id WHERE k.phone = $1"},
	};
	long long calls0 = th_pg_int(F->db, "SELECT count(*) FROM calls");
	long long tx0 = th_pg_int(F->db, "SELECT count(*) FROM credit_transactions");
	long long alerts0 = th_pg_int(F->db, "SELECT count(*) FROM hot_lead_alerts");
	long long ok_calls = 0, ok_tx = 0, ok_alerts = 0;
	for (size_t c = 0; c < VOX_NELEM(cases); c++) {
		const limit_case *lc = &cases[c];
		for (int over = 0; over <= 1; over++) {
			size_t len = lc->max + (size_t)over;
			char *text = meta_text(len);
			char eid[64], cid[37], key[64];
			size_t slot = 50 + c * 2 + (size_t)over;
			snprintf(eid, sizeof(eid), "evt-limit-%zu", slot);
			snprintf(cid, sizeof(cid), "cb000000-0000-4000-8000-0000000000%02zu", slot);
			if (strcmp(lc->kind, "call.started") == 0) {
				kv ev[] = {S("event_id", eid), S("org_id", ORG), S("call_id", cid),
					   S("direction", "outbound"),
					   S("from_number", "+442071838750"),
					   S("to_number", "+447700900999"),
					   SN(lc->field, text, len), I("started_at", T0)};
				publish(lc->kind, ev, VOX_NELEM(ev), NULL);
				snprintf(key, sizeof(key), "%s", cid);
				ok_calls += !over;
			} else if (strcmp(lc->kind, "call.ended") == 0) {
				kv ev[] = {S("event_id", eid), S("org_id", ORG), S("call_id", cid),
					   I("ended_at", T0), I("duration_seconds", 0),
					   S("status", "failed"), SN(lc->field, text, len)};
				publish(lc->kind, ev, VOX_NELEM(ev), NULL);
				snprintf(key, sizeof(key), "%s", cid);
				ok_calls += !over;
			} else if (strcmp(lc->kind, "payment.succeeded") == 0) {
				snprintf(key, sizeof(key), "pi_limit_%zu", slot);
				kv ev[] = {S("event_id", eid), S("org_id", ORG),
					   S("stripe_payment_intent_id", key), I("amount_pence", 1),
					   SN(lc->field, text, len), I("occurred_at", T0)};
				publish(lc->kind, ev, VOX_NELEM(ev), NULL);
				ok_tx += !over;
			} else {
				snprintf(key, sizeof(key), "+4477009003%02zu", slot % 100);
				kv ev[] = {S("event_id", eid), S("org_id", ORG), S("phone", key),
					   I("lead_score", 80), SN(lc->field, text, len),
					   I("scored_at", T0)};
				publish(lc->kind, ev, VOX_NELEM(ev), NULL);
				ok_alerts += !over;
			}
			if (over) {
				char want[128];
				snprintf(want, sizeof(want), "%s: longer than %zu bytes",
					 lc->field, lc->max);
				bool seen = false;
				for (int t = 0; t < 600 && !seen; t++) {
					seen = dlq_has(lc->kind, "too_long", want);
					if (!seen)
						th_sleep_ms(200);
				}
				if (!seen)
					fail_msg("%s %s: no dead letter '%s'", lc->kind, lc->field, want);
			}
			free(text);
		}
	}
	assert_int_equal(ok_tx, 1);
	/* stored at their limit, whole */
	for (size_t c = 0; c < VOX_NELEM(cases); c++) {
		const limit_case *lc = &cases[c];
		size_t slot = 50 + c * 2;
		char key[64];
		char *text = meta_text(lc->max);
		if (strncmp(lc->kind, "call.", 5) == 0)
			snprintf(key, sizeof(key), "cb000000-0000-4000-8000-0000000000%02zu", slot);
		else if (strcmp(lc->kind, "payment.succeeded") == 0)
			snprintf(key, sizeof(key), "pi_limit_%zu", slot);
		else
			snprintf(key, sizeof(key), "+4477009003%02zu", slot % 100);
		size_t n;
		char *got = NULL;
		for (int t = 0; t < 600; t++) {
			free(got);
			got = sql_text_opt(lc->table_sql, key, &n);
			if (got)
				break;
			th_sleep_ms(200);
		}
		if (!got || n != lc->max || memcmp(got, text, n) != 0)
			fail_msg("%s %s: not stored whole at its limit (%zu bytes)",
				 lc->kind, lc->field, got ? n : 0);
		free(got);
		free(text);
	}
	/* the refused ones left nothing behind */
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM calls"), calls0 + ok_calls);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM hot_lead_alerts"),
			 alerts0 + ok_alerts);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM credit_transactions"),
			 tx0 + 1);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM credit_transactions"
				   " WHERE stripe_payment_intent_id LIKE 'pi_limit_%'"), 1);
}

/* ---- message size and map entries ------------------------------------------ */

static void test_oversize_messages_refused_with_a_reason(void **state)
{
	(void)state;
	char subject[128];
	long long calls0 = th_pg_int(F->db, "SELECT count(*) FROM calls");
	/* over 1 MiB: the server itself refuses it, the publisher is told */
	size_t big = VOX_MAX_MESSAGE + 1;
	char *text = meta_text(big);
	kv ev[] = {S("event_id", "evt-huge"), S("org_id", ORG),
		   S("call_id", "cc000000-0000-4000-8000-000000000001"),
		   I("ended_at", T0), I("duration_seconds", 0), S("status", "failed"),
		   SN("transcript", text, big)};
	msgpack_sbuffer sb;
	pack(&sb, ev, VOX_NELEM(ev));
	snprintf(subject, sizeof(subject), "call.ended.%s", ORG);
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_Publish(&pa, F->js, subject, sb.data, (int)sb.size, NULL, &jerr);
	assert_int_not_equal(s, NATS_OK);
	fprintf(stderr, "over 1 MiB: %s\n", natsStatus_GetText(s));
	jsPubAck_Destroy(pa);
	msgpack_sbuffer_destroy(&sb);
	free(text);

	/* a map of 257 entries (unknown keys count): dead-lettered */
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 257);
	kv base[] = {S("event_id", "evt-wide"), S("org_id", ORG),
		     S("call_id", "cc000000-0000-4000-8000-000000000002"),
		     I("ended_at", T0), I("duration_seconds", 0), S("status", "failed")};
	for (size_t i = 0; i < VOX_NELEM(base); i++) {
		msgpack_pack_str_with_body(&pk, base[i].k, strlen(base[i].k));
		if (base[i].t == 'S')
			msgpack_pack_str_with_body(&pk, base[i].s, base[i].n);
		else
			msgpack_pack_int64(&pk, base[i].i);
	}
	for (int i = (int)VOX_NELEM(base); i < 257; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "x%d'", i);
		msgpack_pack_str_with_body(&pk, k, (size_t)kl);
		msgpack_pack_nil(&pk);
	}
	th_publish_raw(F->js, subject, sb.data, sb.size, NULL);
	msgpack_sbuffer_destroy(&sb);
	bool seen = false;
	for (int t = 0; t < 600 && !seen; t++) {
		seen = dlq_has("call.ended", "too_large",
			       "map of 257 entries is over the 256 entry limit");
		if (!seen)
			th_sleep_ms(200);
	}
	assert_true(seen);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM calls"), calls0);
}

/* ---- credentials ------------------------------------------------------------- */

static const char *const PROVIDERS[] = {"vapi", "twilio", "google_calendar",
					"resend", "elevenlabs", "openai",
					"deepgram", "cartesia", "outlook_calendar",
					"hubspot", "salesforce", "stripe"};
static const char *const TYPES[] = {"default", "inbound", "outbound"};

static void cred_subject(char *out, size_t n, const char *op, const char *org)
{
	snprintf(out, n, "credentials.%s.%s", op, org);
}

/* Request a body; the reply (caller frees). */
static void request(const char *subject, th_body *b, th_reply *r)
{
	assert_int_equal(th_request_raw(F->nc, subject, b->sb.data, b->sb.size, NULL,
					NULL, r), NATS_OK);
	msgpack_sbuffer_destroy(&b->sb);
}

/* An error reply with this code whose text starts with the field. */
static void expect_refused(th_reply *r, const char *code, const char *field)
{
	if (strncmp(r->text, field, strlen(field)) != 0)
		fprintf(stderr, "want '%s...', got '%s'\n", field, r->text);
	assert_true(strncmp(r->text, field, strlen(field)) == 0);
	th_expect_error(r, code);
}

static void test_metacharacters_in_credentials(void **state)
{
	(void)state;
	char put[160], get[160];
	cred_subject(put, sizeof(put), "put", ORG);
	cred_subject(get, sizeof(get), "get", ORG);
	for (size_t i = 0; i < NMETA; i++) {
		const char *m = META[i];
		const char *prov = PROVIDERS[i % VOX_NELEM(PROVIDERS)];
		const char *type = TYPES[i / VOX_NELEM(PROVIDERS)];
		th_body b;
		th_reply r;
		th_body_init(&b, 4);
		th_body_str(&b, "provider", prov);
		th_body_str(&b, "type", type);
		th_body_str(&b, "config", m);
		th_body_key(&b, "metadata");
		msgpack_pack_map(&b.pk, 2);
		msgpack_pack_str_with_body(&b.pk, m, strlen(m));
		msgpack_pack_str_with_body(&b.pk, m, strlen(m));
		msgpack_pack_str_with_body(&b.pk, "note", 4);
		msgpack_pack_str_with_body(&b.pk, m, strlen(m));
		request(put, &b, &r);
		if (r.code[0])
			fprintf(stderr, "put %zu: %s %s\n", i, r.code, r.text);
		assert_string_equal(r.code, "");
		th_reply_free(&r);

		vox_buf got;
		vox_buf_init(&got);
		assert_int_equal(th_cred_get(F->nc, get, prov, type, &r, &got), NATS_OK);
		assert_string_equal(r.code, "");
		assert_int_equal(got.len, strlen(m));
		assert_true(got.len == 0 || memcmp(got.data, m, got.len) == 0);
		vox_buf_release(&got);
		th_reply_free(&r);

		/* the metadata, stored as JSON, holds the same bytes */
		const char *params[3] = {m, prov, type};
		PGresult *res = PQexecParams(F->db,
			"SELECT metadata->>$1, metadata->>'note' FROM org_credentials"
			" WHERE provider = $2 AND type = $3", 3, NULL, params, NULL, NULL, 0);
		assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
		assert_int_equal(PQntuples(res), 1);
		for (int c = 0; c < 2; c++) {
			assert_int_equal(PQgetlength(res, 0, c), (int)strlen(m));
			assert_memory_equal(PQgetvalue(res, 0, c), m, strlen(m) + 1);
		}
		PQclear(res);

		/* restricted fields refuse them, naming the field */
		th_body_init(&b, 2);
		th_body_str(&b, "provider", m);
		th_body_str(&b, "config", "secret");
		request(put, &b, &r);
		expect_refused(&r, "400", "provider");
		th_body_init(&b, 3);
		th_body_str(&b, "provider", "twilio");
		th_body_str(&b, "type", m);
		th_body_str(&b, "config", "secret");
		request(put, &b, &r);
		expect_refused(&r, "400", "type");
	}
	/* an org token that is not a UUID */
	char sub[160];
	cred_subject(sub, sizeof(sub), "put", "x';DROP--");
	th_body b;
	th_reply r;
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "twilio");
	th_body_str(&b, "config", "secret");
	request(sub, &b, &r);
	expect_refused(&r, "400", "org_id");
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM org_credentials"),
			 (long long)NMETA);
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM organizations"), 1);
}

static void test_credential_limits(void **state)
{
	(void)state;
	char put[160], get[160];
	cred_subject(put, sizeof(put), "put", ORG);
	cred_subject(get, sizeof(get), "get", ORG);
	long long rows0 = th_pg_int(F->db, "SELECT count(*) FROM org_credentials");
	th_body b;
	th_reply r;

	/* the config at its limit is kept whole; one byte more is 413 */
	char *cfg = meta_text(VOX_VAULT_MAX_CONFIG + 1);
	th_body_init(&b, 3);
	th_body_str(&b, "provider", "stripe");
	th_body_str(&b, "type", "outbound");
	th_body_bin(&b, "config", cfg, VOX_VAULT_MAX_CONFIG);
	request(put, &b, &r);
	assert_string_equal(r.code, "");
	th_reply_free(&r);
	vox_buf got;
	vox_buf_init(&got);
	assert_int_equal(th_cred_get(F->nc, get, "stripe", "outbound", &r, &got), NATS_OK);
	assert_string_equal(r.code, "");
	assert_int_equal(got.len, VOX_VAULT_MAX_CONFIG);
	assert_memory_equal(got.data, cfg, VOX_VAULT_MAX_CONFIG);
	vox_buf_release(&got);
	th_reply_free(&r);
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "hubspot");
	th_body_bin(&b, "config", cfg, VOX_VAULT_MAX_CONFIG + 1);
	request(put, &b, &r);
	expect_refused(&r, "413", "config");

	/* a request over 96 KiB, whatever its keys */
	th_body_init(&b, 4);
	th_body_str(&b, "provider", "hubspot");
	th_body_str(&b, "config", "secret");
	th_body_bin(&b, "padding", cfg, VOX_VAULT_MAX_CONFIG);
	th_body_bin(&b, "padding2", cfg, 32 * 1024);
	request(put, &b, &r);
	expect_refused(&r, "413", "request");
	free(cfg);

	/* metadata JSON cannot hold as is: refused, never altered */
	static const struct {
		const char *v;
		size_t n;
		const char *code;
	} bad[] = {
		{"nul\0inside", 10, "400"},
		{"bad utf-8 \xc3\x28", 12, "400"},
		{"surrogate \xed\xa0\x80", 13, "400"},
	};
	for (size_t i = 0; i < VOX_NELEM(bad); i++) {
		th_body_init(&b, 3);
		th_body_str(&b, "provider", "hubspot");
		th_body_str(&b, "config", "secret");
		th_body_key(&b, "metadata");
		msgpack_pack_map(&b.pk, 1);
		msgpack_pack_str_with_body(&b.pk, "k", 1);
		msgpack_pack_str_with_body(&b.pk, bad[i].v, bad[i].n);
		request(put, &b, &r);
		expect_refused(&r, bad[i].code, "metadata");
	}
	/* metadata over 4 KiB of JSON */
	char *long_value = meta_text(4096);
	th_body_init(&b, 3);
	th_body_str(&b, "provider", "hubspot");
	th_body_str(&b, "config", "secret");
	th_body_key(&b, "metadata");
	msgpack_pack_map(&b.pk, 1);
	msgpack_pack_str_with_body(&b.pk, "k", 1);
	msgpack_pack_str_with_body(&b.pk, long_value, 4096);
	request(put, &b, &r);
	expect_refused(&r, "413", "metadata");
	free(long_value);
	/* only the one at the limit was stored */
	assert_int_equal(th_pg_int(F->db, "SELECT count(*) FROM org_credentials"), rows0 + 1);
	/* the refused puts did not replace hubspot's (the earlier test put
	 * META[9] there) */
	expect_text("SELECT metadata->>'note' FROM org_credentials"
		    " WHERE provider = 'hubspot' AND type = $1", "default", META[9],
		    strlen(META[9]));
}

/* ---- query filters ------------------------------------------------------------- */

static void query_expect(const char *endpoint, const char *org, const char *key,
			 const char *value, const char *code, const char *field)
{
	char subject[160];
	th_body b;
	th_reply r;
	snprintf(subject, sizeof(subject), "query.%s.%s", endpoint, org);
	th_body_init(&b, 1);
	th_body_str(&b, key, value);
	request(subject, &b, &r);
	expect_refused(&r, code, field);
}

static void test_metacharacters_in_query_filters(void **state)
{
	(void)state;
	for (size_t i = 0; i < NMETA; i++) {
		const char *m = META[i];
		query_expect("calls", ORG, "status", m, "400", "status");
		query_expect("calls", ORG, "direction", m, "400", "direction");
		query_expect("calls", ORG, "before", m, "400", "before");
		query_expect("transactions", ORG, "type", m, "400", "type");
		query_expect("transactions", ORG, "before", m, "400", "before");
		query_expect("call", ORG, "call_id", m, "400", "call_id");
		query_expect("contact", ORG, "phone", m, "400", "phone");
		query_expect("contact", ORG, "contact_id", m, "400", "contact_id");
	}
	/* an org token that is not a UUID */
	char subject[160];
	th_body b;
	th_reply r;
	snprintf(subject, sizeof(subject), "query.wallet.%s", "x';DROP--");
	th_body_init(&b, 0);
	request(subject, &b, &r);
	th_expect_error(&r, "400");
	/* page size and request size */
	snprintf(subject, sizeof(subject), "query.calls.%s", ORG);
	th_body_init(&b, 1);
	th_body_int(&b, "limit", 101);
	request(subject, &b, &r);
	expect_refused(&r, "400", "limit");
	char *pad = meta_text(4096);
	th_body_init(&b, 1);
	th_body_str(&b, "x", pad);
	request(subject, &b, &r);
	expect_refused(&r, "413", "request");
	free(pad);
	/* the stored text reads back whole through a filter that allows it */
	for (size_t i = 0; i < NMETA; i++) {
		char phone[20];
		snprintf(phone, sizeof(phone), "+4477009001%02zu", i);
		snprintf(subject, sizeof(subject), "query.contact.%s", ORG);
		th_body_init(&b, 1);
		th_body_str(&b, "phone", phone);
		request(subject, &b, &r);
		assert_string_equal(r.code, "");
		const msgpack_object *o = th_get_key(&r.u.data, "first_name");
		assert_int_equal(o->type, MSGPACK_OBJECT_STR);
		assert_int_equal(o->via.str.size, strlen(META[i]));
		assert_true(o->via.str.size == 0 ||
			    memcmp(o->via.str.ptr, META[i], o->via.str.size) == 0);
		th_reply_free(&r);
	}
}

/* ---- billing.authorize ------------------------------------------------------ */

static void test_metacharacters_and_size_in_billing_authorize(void **state)
{
	(void)state;
	char subject[160];
	th_body b;
	th_reply r;
	snprintf(subject, sizeof(subject), "billing.authorize.%s", ORG);
	for (size_t i = 0; i < NMETA; i++) {
		th_body_init(&b, 1);
		th_body_str(&b, "call_id", META[i]);
		request(subject, &b, &r);
		expect_refused(&r, "400", "call_id");
	}
	/* a UUID is answered */
	th_body_init(&b, 1);
	th_body_str(&b, "call_id", "ca000000-0000-4000-8000-000000000001");
	request(subject, &b, &r);
	assert_string_equal(r.code, "");
	assert_true(th_has_key(&r.u.data, "allowed"));
	th_reply_free(&r);
	/* over 4 KiB */
	char *pad = meta_text(4096);
	th_body_init(&b, 1);
	th_body_str(&b, "x", pad);
	request(subject, &b, &r);
	expect_refused(&r, "413", "request");
	free(pad);
	snprintf(subject, sizeof(subject), "billing.authorize.%s", "x';DROP--");
	th_body_init(&b, 0);
	request(subject, &b, &r);
	expect_refused(&r, "400", "org_id");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metacharacters_in_every_event_field),
		cmocka_unit_test(test_each_text_field_at_and_over_its_limit),
		cmocka_unit_test(test_oversize_messages_refused_with_a_reason),
		cmocka_unit_test(test_metacharacters_in_credentials),
		cmocka_unit_test(test_credential_limits),
		cmocka_unit_test(test_metacharacters_in_query_filters),
		cmocka_unit_test(test_metacharacters_and_size_in_billing_authorize),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
