/*
 * Integration: the consume loop against real servers, through the test
 * actor (test_actor.c). Every scenario ends by checking the same things:
 * each event applied exactly once (count and total in Postgres), nothing
 * left pending or unacknowledged on the consumer, and the actor still
 * running where it should be.
 *
 *  - 10,000 events, 20% duplicated, two instances sharing the consumer
 *  - Postgres stopped for seconds mid-stream, then started again
 *  - nats-server restarted mid-stream
 *  - kill -9 mid-batch, then a restart
 *  - SIGTERM mid-stream: the batch in hand is committed and acked
 *  - poison messages mixed into batches: dead letters with reasons
 *  - a crash between commit and publish, and between publish and marking
 *    the outbox: exactly one alert reaches the ALERTS stream
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "io/migrate.h"
#include "vox/client.h"

#define ORG "2b6c1f0e-5d4a-4c3b-9a8f-7e6d5c4b3a21"
#define OTHER_ORG "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
#define MAX_ACTORS 4

typedef struct fixture {
	th_nats nats;
	char dsn[512];
	char env_url[128];
	char env_dsn[600];
	pid_t actors[MAX_ACTORS];
	char logs[MAX_ACTORS][600];
	natsConnection *nc;
	jsCtx *js;
	int run; /* distinguishes event ids between tests */
	const char *desc; /* description of the events published, or NULL */
} fixture;

static int run_counter;

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	f->run = run_counter++;
	th_nats_start(&f->nats);
	th_pg_migrated_db("rt", f->dsn, sizeof(f->dsn));
	PGconn *c = th_pg_connect(f->dsn);
	th_pg_ok(c, "CREATE TABLE rt_processed (event_id text PRIMARY KEY);"
		    "CREATE TABLE rt_total (total bigint NOT NULL, count bigint NOT NULL);"
		    "INSERT INTO rt_total VALUES (0, 0);"
		    "CREATE TABLE rt_check (v int CHECK (v >= 0))");
	PQfinish(c);
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 2000;
	th_js_connect(f->nats.url, &jo, &f->nc, &f->js);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	for (int i = 0; i < MAX_ACTORS; i++)
		if (f->actors[i] > 0)
			th_stop(f->actors[i], SIGKILL, 5000);
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	free(f);
	return 0;
}

/* Start actor slot i with extra environment (NULL-terminated). */
static void start_actor(fixture *f, int i, const char *extra1, const char *extra2)
{
	char *env[8];
	int k = 0;
	env[k++] = f->env_url;
	env[k++] = f->env_dsn;
	env[k++] = (char *)(uintptr_t)"VOX_FETCH_WAIT_MS=200";
	env[k++] = (char *)(uintptr_t)"VOX_ACK_WAIT_S=4";
	env[k++] = (char *)(uintptr_t)"VOX_RETRY_MAX_MS=1000";
	if (extra1)
		env[k++] = (char *)(uintptr_t)extra1;
	if (extra2)
		env[k++] = (char *)(uintptr_t)extra2;
	env[k] = NULL;
	snprintf(f->logs[i], sizeof(f->logs[i]), "%s/runtime-%ld-%d-%d.log",
		 th_env("VOX_TEST_TMP"), (long)getpid(), f->run, i);
	f->actors[i] = th_spawn("vox-test-actor", env, f->logs[i]);
}

static void make_event(fixture *f, int i, int64_t amount, const char *desc,
		       vox_event *ev, char *idbuf, size_t idlen)
{
	snprintf(idbuf, idlen, "evt-%d-%d", f->run, i);
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_PAYMENT_SUCCEEDED;
	vox_payment_succeeded *p = &ev->u.payment_succeeded;
	p->event_id = (vox_str){idbuf, strlen(idbuf)};
	memcpy(p->org_id.s, ORG, 37);
	p->stripe_payment_intent_id = p->event_id;
	p->amount_pence = amount;
	if (desc)
		p->description = (vox_str){desc, strlen(desc)};
	p->occurred_at = (vox_time){1795000000 + i, 0, true};
}

static int64_t amount_of(int i)
{
	return 20 + i % 500; /* never 13, never an alert */
}

/*
 * Publish events [from, to) asynchronously; every fifth is published a
 * second time under another Nats-Msg-Id, so JetStream stores both copies
 * and only the database can tell they are the same event.
 */
static int64_t publish_range(fixture *f, int from, int to)
{
	int64_t total = 0;
	char id[64];
	vox_event ev;
	vox_error err;
	for (int i = from; i < to; i++) {
		make_event(f, i, amount_of(i), f->desc, &ev, id, sizeof(id));
		total += amount_of(i);
		for (int attempt = 0;; attempt++) {
			if (vox_publish_async(f->js, &ev, &err) == VOX_OK)
				break;
			assert_true(attempt < 100); /* NATS away for > 10 s */
			th_sleep_ms(100);
		}
		if (i % 5 == 0) {
			natsMsg *m = NULL;
			assert_int_equal(vox_event_to_msg(&m, &ev, &err), VOX_OK);
			char dup[80];
			snprintf(dup, sizeof(dup), "dup-%s", id);
			natsMsgHeader_Set(m, "Nats-Msg-Id", dup);
			while (js_PublishMsgAsync(f->js, &m, NULL) != NATS_OK)
				th_sleep_ms(100);
			natsMsg_Destroy(m);
		}
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 30000;
	assert_int_equal(js_PublishAsyncComplete(f->js, &po), NATS_OK);
	return total;
}

static int64_t expected_total(int n)
{
	int64_t t = 0;
	for (int i = 0; i < n; i++)
		t += amount_of(i);
	return t;
}

/* Wait for n events applied and a drained consumer, then check totals. */
static void assert_exactly_once(fixture *f, int n, long ms)
{
	long long count = th_wait_int(f->dsn, "SELECT count FROM rt_total", n, ms);
	assert_int_equal(count, n);
	assert_int_equal(th_wait_int(f->dsn, "SELECT total FROM rt_total",
				     expected_total(n), 1000), expected_total(n));
	assert_int_equal(th_wait_int(f->dsn, "SELECT count(*) FROM rt_processed",
				     n, 1000), n);
	long long outstanding = -1;
	for (int i = 0; i < 100; i++) {
		outstanding = th_consumer_outstanding(f->js, "EVENTS", "vox-test-actor");
		if (outstanding == 0)
			break;
		th_sleep_ms(100);
	}
	assert_int_equal(outstanding, 0);
}

static void wait_actor_ready(fixture *f)
{
	natsMsg *m = NULL;
	for (int i = 0; i < 150; i++) {
		if (natsConnection_RequestString(&m, f->nc, "$SRV.PING.vox-test-actor",
						 "", 200) == NATS_OK) {
			natsMsg_Destroy(m);
			return;
		}
		th_sleep_ms(100); /* no responders comes back at once */
	}
	fail_msg("actor did not announce itself");
}

static void test_ten_thousand_events_exactly_once(void **state)
{
	fixture *f = *state;
	start_actor(f, 0, NULL, NULL);
	start_actor(f, 1, NULL, NULL);
	wait_actor_ready(f);
	publish_range(f, 0, 10000);
	assert_exactly_once(f, 10000, 120000);
	assert_true(th_alive(f->actors[0]));
	assert_true(th_alive(f->actors[1]));
	/* both instances took part in the work */
	assert_true(th_count_in_log(f->logs[0], "started") == 1);
	assert_true(th_count_in_log(f->logs[1], "started") == 1);
}

/*
 * A backlog taken at full speed by one instance, then a second backlog
 * while it runs: large pulls that end while the server is still answering
 * (a bench found the heap corrupted: libnats 3.4.1 counted the rest of an
 * interrupted pull into the next one) must leave the actor alive and
 * every event applied once.
 */
static void test_backlogs_taken_whole(void **state)
{
	fixture *f = *state;
	static char desc[901];
	memset(desc, 'd', sizeof(desc) - 1); /* a call.ended's size */
	f->desc = desc;
	publish_range(f, 0, 15000);
	start_actor(f, 0, "VOX_FETCH_WAIT_MS=50", NULL);
	wait_actor_ready(f);
	publish_range(f, 15000, 30000);
	assert_exactly_once(f, 30000, 120000);
	assert_true(th_alive(f->actors[0]));
	assert_true(th_stop(f->actors[0], SIGTERM, 10000) == 0);
	f->actors[0] = 0;
}

/* Published outbox rows past VOX_OUTBOX_KEEP_H go, in chunks, more than
 * one chunk of them; recent and unpublished ones stay. */
static void test_old_outbox_rows_purged_in_chunks(void **state)
{
	fixture *f = *state;
	PGconn *c = th_pg_connect(f->dsn);
	th_pg_ok(c, "INSERT INTO vox_outbox (msg_id, subject, payload, actor,"
		    " created_at, published_at) SELECT 'old-' || i, 'alert.x', '\\x00',"
		    " 'vox-test-actor', now() - interval '3 hours',"
		    " now() - interval '2 hours' FROM generate_series(1, 12000) i");
	th_pg_ok(c, "INSERT INTO vox_outbox (msg_id, subject, payload, actor,"
		    " published_at) SELECT 'new-' || i, 'alert.x', '\\x00',"
		    " 'vox-test-actor', now() FROM generate_series(1, 10) i");
	PQfinish(c);
	start_actor(f, 0, "VOX_OUTBOX_KEEP_H=1", NULL);
	wait_actor_ready(f);
	assert_int_equal(th_wait_int(f->dsn, "SELECT count(*) FROM vox_outbox"
				     " WHERE msg_id LIKE 'old-%'", 0, 30000), 0);
	assert_int_equal(th_wait_int(f->dsn, "SELECT count(*) FROM vox_outbox"
				     " WHERE msg_id LIKE 'new-%'", 10, 1000), 10);
}

static void test_postgres_outage(void **state)
{
	fixture *f = *state;
	start_actor(f, 0, NULL, NULL);
	wait_actor_ready(f);
	publish_range(f, 0, 1000);
	assert_true(th_wait_int(f->dsn, "SELECT count FROM rt_total", 1000, 30000) > 0);
	th_pg_stop();
	publish_range(f, 1000, 2000);
	th_sleep_ms(4000);
	assert_true(th_alive(f->actors[0]));
	th_pg_start();
	publish_range(f, 2000, 3000);
	assert_exactly_once(f, 3000, 60000);
	assert_true(th_alive(f->actors[0]));
	/* the outage is logged once per cause it shows (the connection
	 * dropped, refused, the server starting), and the recovery once */
	long long waits = th_count_in_log(f->logs[0], "database fault, messages wait");
	assert_true(waits >= 1 && waits <= 3);
	assert_int_equal(th_count_in_log(f->logs[0], "database fault over"), 1);
}

static void test_nats_restart(void **state)
{
	fixture *f = *state;
	start_actor(f, 0, NULL, NULL);
	wait_actor_ready(f);
	publish_range(f, 0, 2000);
	assert_true(th_wait_int(f->dsn, "SELECT count FROM rt_total", 2000, 30000) > 0);
	th_nats_restart(&f->nats);
	publish_range(f, 2000, 4000);
	assert_exactly_once(f, 4000, 60000);
	assert_true(th_alive(f->actors[0]));
}

static void test_kill9_then_restart(void **state)
{
	fixture *f = *state;
	start_actor(f, 0, "VOX_BATCH=64", NULL);
	wait_actor_ready(f);
	publish_range(f, 0, 5000);
	/* kill while batches are being applied */
	long long seen = th_wait_int(f->dsn, "SELECT count FROM rt_total", 1500, 30000);
	assert_true(seen > 0);
	kill(f->actors[0], SIGKILL);
	waitpid(f->actors[0], NULL, 0);
	f->actors[0] = 0;
	start_actor(f, 1, "VOX_BATCH=64", NULL);
	assert_exactly_once(f, 5000, 60000);
}

static void test_sigterm_commits_the_batch_in_hand(void **state)
{
	fixture *f = *state;
	start_actor(f, 0, NULL, NULL);
	wait_actor_ready(f);
	publish_range(f, 0, 3000);
	assert_true(th_wait_int(f->dsn, "SELECT count FROM rt_total", 500, 30000) > 0);
	int ws = th_stop(f->actors[0], SIGTERM, 15000);
	f->actors[0] = 0;
	assert_int_not_equal(ws, -1);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	/* what was committed was acked: a new instance finds only the rest */
	long long done = th_wait_int(f->dsn, "SELECT count FROM rt_total", -1, 0);
	start_actor(f, 1, NULL, NULL);
	assert_exactly_once(f, 3000, 60000);
	assert_true(done > 0);
	assert_int_equal(th_count_in_log(f->logs[0], "msg=\"stopped\""), 1);
}

/* Fetch the dead letter with sequence seq from the DLQ stream. */
static natsMsg *dlq_msg(fixture *f, uint64_t seq)
{
	natsMsg *m = NULL;
	assert_int_equal(js_GetMsg(&m, f->js, "DLQ", seq, NULL, NULL), NATS_OK);
	return m;
}

static const char *hdr(natsMsg *m, const char *key)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) != NATS_OK)
		return "";
	return v;
}

static void test_poison_messages_are_dead_lettered(void **state)
{
	fixture *f = *state;
	char subject[128], id[64];
	vox_event ev;
	vox_error err;
	vox_pub_ack ack;
	start_actor(f, 0, NULL, NULL);
	wait_actor_ready(f);
	snprintf(subject, sizeof(subject), "payment.succeeded.%s", ORG);

	/* good events around the bad ones, so they share batches */
	publish_range(f, 0, 100);
	static const unsigned char garbage[] = {0x93, 0x01, 0x02};
	th_publish_raw(f->js, subject, garbage, sizeof(garbage), "bad-garbage");
	unsigned char *bytes = NULL;
	size_t len = 0;
	make_event(f, 100000, 500, NULL, &ev, id, sizeof(id));
	assert_int_equal(vox_event_encode(&bytes, &len, &ev, &err), VOX_OK);
	char other[128];
	snprintf(other, sizeof(other), "payment.succeeded.%s", OTHER_ORG);
	th_publish_raw(f->js, other, bytes, len, "bad-mismatch");
	free(bytes);
	make_event(f, 100001, 13, NULL, &ev, id, sizeof(id));
	assert_int_equal(vox_publish(&ack, f->js, &ev, 5000, &err), VOX_OK);
	make_event(f, 100002, 700, "poison-sql", &ev, id, sizeof(id));
	assert_int_equal(vox_publish(&ack, f->js, &ev, 5000, &err), VOX_OK);
	/* amount 0 is refused by the codec: out_of_range */
	static const unsigned char zero_amount[] =
		"\x85\xa8" "event_id" "\xa3" "e-0"
		"\xa6" "org_id" "\xd9\x24" ORG
		"\xb8" "stripe_payment_intent_id" "\xa4" "pi_0"
		"\xac" "amount_pence" "\x00"
		"\xab" "occurred_at" "\xd6\xff\x6a\xfe\x3a\x00";
	th_publish_raw(f->js, subject, zero_amount, sizeof(zero_amount) - 1, "bad-zero");
	/* a valid version 1 payload labelled version 2: another contract,
	 * never read as version 1 (dead-lettered with its own reason, its
	 * label kept for the replay) */
	make_event(f, 100003, 900, NULL, &ev, id, sizeof(id));
	assert_int_equal(vox_event_encode(&bytes, &len, &ev, &err), VOX_OK);
	natsMsg *v2 = NULL;
	assert_int_equal(natsMsg_Create(&v2, subject, NULL, (const char *)bytes,
					(int)len), NATS_OK);
	free(bytes);
	assert_int_equal(natsMsgHeader_Set(v2, "Nats-Msg-Id", "bad-schema"), NATS_OK);
	assert_int_equal(natsMsgHeader_Set(v2, "Vox-Schema", "2"), NATS_OK);
	jsPubAck *v2ack = NULL;
	assert_int_equal(js_PublishMsg(&v2ack, f->js, v2, NULL, NULL), NATS_OK);
	jsPubAck_Destroy(v2ack);
	natsMsg_Destroy(v2);
	publish_range(f, 100, 200);

	assert_exactly_once(f, 200, 60000);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 6);

	/* each dead letter: original bytes, subject, reason headers */
	struct {
		const char *reason;
		const char *code;
		const char *field; /* Vox-Error-Field, "" when absent */
	} want[] = {{"not_a_map", "400", ""}, {"org_mismatch", "400", "org_id"},
		    {"conflict", "409", "amount_pence"},
		    {"integrity_violation", "400", ""},
		    {"out_of_range", "400", "amount_pence"},
		    {"unknown_schema", "400", "Vox-Schema"}};
	bool found[6] = {false};
	for (uint64_t seq = 1; seq <= 6; seq++) {
		natsMsg *m = dlq_msg(f, seq);
		const char *r = hdr(m, "Vox-Error-Reason");
		if (strcmp(r, "unknown_schema") == 0)
			assert_string_equal(hdr(m, "Vox-Schema"), "2");
		for (int k = 0; k < 6; k++) {
			if (strcmp(r, want[k].reason) != 0)
				continue;
			found[k] = true;
			assert_string_equal(hdr(m, "Vox-Error-Code"), want[k].code);
			assert_string_equal(hdr(m, "Vox-Error-Field"), want[k].field);
		}
		assert_string_equal(hdr(m, "Vox-Actor"), "vox-test-actor");
		assert_true(strlen(hdr(m, "Vox-Error")) > 0);
		assert_int_equal(strncmp(natsMsg_GetSubject(m), "dlq.payment.succeeded.", 22), 0);
		/* the original, byte for byte, at the sequence the header names */
		uint64_t orig = strtoull(hdr(m, "Vox-Stream-Seq"), NULL, 10);
		natsMsg *o = NULL;
		assert_int_equal(js_GetMsg(&o, f->js, "EVENTS", orig, NULL, NULL), NATS_OK);
		assert_string_equal(natsMsg_GetSubject(o), natsMsg_GetSubject(m) + 4);
		assert_int_equal(natsMsg_GetDataLength(o), natsMsg_GetDataLength(m));
		assert_memory_equal(natsMsg_GetData(o), natsMsg_GetData(m),
				    (size_t)natsMsg_GetDataLength(m));
		if (strcmp(r, "out_of_range") == 0)
			assert_string_equal(hdr(m, "Vox-Error"),
					    "amount_pence: must be 1..100000000");
		natsMsg_Destroy(o);
		natsMsg_Destroy(m);
	}
	for (int k = 0; k < 6; k++) {
		if (!found[k])
			fprintf(stderr, "missing dead letter %s\n", want[k].reason);
		assert_true(found[k]);
	}
	/* the poison-sql batch was isolated, and the good events survived */
	assert_true(th_count_in_log(f->logs[0], "batch failed, isolating") >= 1);
	assert_true(th_alive(f->actors[0]));
}

/* An alert that breaks the contract (a defect of the actor, not of the
 * event) never blocks the effect it announces: the event is applied and
 * acked, nothing is dead-lettered, and the refusal is logged and counted. */
static void test_an_alert_never_blocks_its_effect(void **state)
{
	fixture *f = *state;
	char id[64];
	vox_event ev;
	vox_error err;
	vox_pub_ack ack;
	start_actor(f, 0, NULL, NULL);
	wait_actor_ready(f);
	make_event(f, 0, 14, NULL, &ev, id, sizeof(id));
	assert_int_equal(vox_publish(&ack, f->js, &ev, 5000, &err), VOX_OK);
	assert_int_equal(th_wait_int(f->dsn, "SELECT total FROM rt_total", 14, 20000), 14);
	for (int i = 0; i < 50 && th_consumer_outstanding(f->js, "EVENTS", "vox-test-actor") != 0; i++)
		th_sleep_ms(100);
	assert_int_equal(th_consumer_outstanding(f->js, "EVENTS", "vox-test-actor"), 0);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 0);
	assert_int_equal(th_count_in_log(f->logs[0], "alert not emitted"), 1);
	natsMsg *m = NULL;
	assert_int_equal(natsConnection_RequestString(&m, f->nc, "$SRV.STATS.vox-test-actor",
						       "", 3000), NATS_OK);
	assert_non_null(strstr(natsMsg_GetData(m), "\"outbox.refused\":\"1\""));
	natsMsg_Destroy(m);
}

/* One event that emits an alert, with a crash injected at `point`. */
static void crash_between(fixture *f, const char *fault)
{
	char id[64];
	vox_event ev;
	vox_error err;
	vox_pub_ack ack;
	start_actor(f, 0, fault, "VOX_OUTBOX_AGE_MS=0");
	wait_actor_ready(f);
	make_event(f, 0, 5000, NULL, &ev, id, sizeof(id));
	assert_int_equal(vox_publish(&ack, f->js, &ev, 5000, &err), VOX_OK);
	/* the fault makes the actor exit with 3 */
	int ws = 0;
	for (int i = 0; i < 200 && waitpid(f->actors[0], &ws, WNOHANG) == 0; i++)
		th_sleep_ms(50);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 3);
	f->actors[0] = 0;
	/* the effect committed; the outbox row is not marked published */
	assert_int_equal(th_wait_int(f->dsn, "SELECT count FROM rt_total", 1, 1000), 1);
	assert_int_equal(th_wait_int(f->dsn,
		"SELECT count(*) FROM vox_outbox WHERE published_at IS NULL", 1, 1000), 1);
}

static void assert_one_alert(fixture *f)
{
	long long alerts = -1;
	for (int i = 0; i < 100; i++) {
		alerts = th_stream_count(f->js, "ALERTS");
		if (alerts >= 1)
			break;
		th_sleep_ms(100);
	}
	assert_int_equal(th_wait_int(f->dsn,
		"SELECT count(*) FROM vox_outbox WHERE published_at IS NOT NULL", 1, 10000), 1);
	th_sleep_ms(1500); /* a second healer pass must not add a copy */
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 1);
	/* and what arrived is the alert, decodable, with its id as msg id */
	natsMsg *m = NULL;
	assert_int_equal(js_GetMsg(&m, f->js, "ALERTS", 1, NULL, NULL), NATS_OK);
	vox_event alert;
	vox_error err;
	assert_int_equal(vox_event_decode_subject(&alert, natsMsg_GetSubject(m),
			 natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &err),
			 VOX_OK);
	assert_int_equal(alert.kind, VOX_ALERT_LOW_BALANCE);
	assert_string_equal(hdr(m, "Nats-Msg-Id"), alert.u.wallet.alert_id.s);
	natsMsg_Destroy(m);
}

static void test_crash_after_commit_publishes_once(void **state)
{
	fixture *f = *state;
	crash_between(f, "VOX_FAULT=after-commit");
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 0);
	start_actor(f, 1, "VOX_OUTBOX_AGE_MS=0", NULL);
	assert_one_alert(f);
	/* the redelivered event was recognised: applied once, then acked */
	assert_int_equal(th_wait_int(f->dsn, "SELECT total FROM rt_total", 5000, 1000), 5000);
	assert_int_equal(th_wait_int(f->dsn, "SELECT count FROM rt_total", 1, 1000), 1);
	long long outstanding = -1;
	for (int i = 0; i < 100 && outstanding != 0; i++) {
		outstanding = th_consumer_outstanding(f->js, "EVENTS", "vox-test-actor");
		th_sleep_ms(100);
	}
	assert_int_equal(outstanding, 0);
}

static void test_crash_after_publish_publishes_once(void **state)
{
	fixture *f = *state;
	crash_between(f, "VOX_FAULT=after-publish");
	assert_int_equal(th_stream_count(f->js, "ALERTS"), 1);
	start_actor(f, 1, "VOX_OUTBOX_AGE_MS=0", NULL);
	assert_one_alert(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ten_thousand_events_exactly_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlogs_taken_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_outbox_rows_purged_in_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poison_messages_are_dead_lettered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_alert_never_blocks_its_effect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_commit_publishes_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_publish_publishes_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_commits_the_batch_in_hand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill9_then_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nats_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_postgres_outage, setup, teardown),
	};
	if (getenv("VOX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VOX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
