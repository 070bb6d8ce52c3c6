/*
 * Integration: pulling with vox's own requests (src/io/pull.c) from a
 * real JetStream. The case that overran libnats 3.4.1's fetch array:
 * deliveries of an earlier pull queued on the inbox when the next fetch
 * starts. Every one must come out exactly once, never more per fetch than
 * asked; dispositions go to the ack subject and mean what they say; a
 * closed pull gives back what it had queued at once, not after AckWait.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include <nats/nats.h>

#include "core/jsack.h"
#include "harness.h"
#include "io/pull.h"

#define STREAM "PULLTEST"
#define DURABLE "pull-test"
#define NEXT "$JS.API.CONSUMER.MSG.NEXT." STREAM "." DURABLE
#define TOTAL 300

static natsConnection *nc;
static jsCtx *js;

static int setup(void **state)
{
	(void)state;
	th_js_connect(th_env("VOX_NATS_URL"), NULL, &nc, &js);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	js_DeleteStream(js, STREAM, NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

/* A fresh stream of n messages and a durable consumer on it. */
static int fresh(void **state, int n)
{
	(void)state;
	const char *subjects[] = {"pulltest.>"};
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	js_DeleteStream(js, STREAM, NULL, NULL);
	jsStreamConfig_Init(&sc);
	sc.Name = STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_MemoryStorage;
	if (js_AddStream(&si, js, &sc, NULL, NULL) != NATS_OK)
		return -1;
	jsStreamInfo_Destroy(si);
	jsConsumerConfig_Init(&cc);
	cc.Durable = DURABLE;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = 30LL * 1000000000;
	cc.MaxAckPending = 10000;
	if (js_AddConsumer(&ci, js, STREAM, &cc, NULL, NULL) != NATS_OK)
		return -1;
	jsConsumerInfo_Destroy(ci);
	for (int i = 0; i < n; i++) {
		char body[32];
		int len = snprintf(body, sizeof(body), "m%d", i);
		th_publish_raw(js, "pulltest.x", body, (size_t)len, NULL);
	}
	return 0;
}

static int fresh_stream(void **state)
{
	return fresh(state, TOTAL);
}

/* Ask the server, outside any fetch, to deliver n to the pull's inbox. */
static void stray_request(vox_pull *p, int n)
{
	char reply[256], body[96];
	snprintf(reply, sizeof(reply), "%s.999999", vox_pull_inbox(p));
	int len = snprintf(body, sizeof(body),
			   "{\"batch\":%d,\"expires\":2000000000}", n);
	assert_int_equal(natsConnection_PublishRequest(nc, NEXT, reply, body, len),
			 NATS_OK);
	assert_int_equal(natsConnection_Flush(nc), NATS_OK);
	th_sleep_ms(300); /* let them arrive and queue */
}

static long long outstanding_after_acks(long long want)
{
	long long v = -1;
	natsConnection_Flush(nc);
	for (int i = 0; i < 50; i++) {
		v = th_consumer_outstanding(js, STREAM, DURABLE);
		if (v == want)
			break;
		th_sleep_ms(50);
	}
	return v;
}

/* Fetch in batches of max until nothing comes, acking each; checks that
 * no fetch returns more than max and no stream sequence twice. */
static int take_all(vox_pull *p, size_t max, bool *seen, uint64_t *delivered)
{
	int got = 0;
	for (int round = 0; round < 4 * TOTAL; round++) {
		natsMsgList list;
		natsStatus s = vox_pull_fetch(p, &list, max, 0, 200);
		if (s == NATS_TIMEOUT)
			break;
		assert_int_equal(s, NATS_OK);
		assert_true(list.Count > 0 && (size_t)list.Count <= max);
		for (int i = 0; i < list.Count; i++) {
			vox_js_ack a;
			assert_true(vox_js_ack_parse(&a, natsMsg_GetReply(list.Msgs[i])));
			assert_true(a.stream_seq >= 1 && a.stream_seq <= TOTAL);
			assert_false(seen[a.stream_seq]);
			seen[a.stream_seq] = true;
			if (delivered)
				delivered[a.stream_seq] = a.delivered;
			assert_int_equal(vox_pull_settle(nc, list.Msgs[i], VOX_ACK, 0),
					 NATS_OK);
			got++;
		}
		natsMsgList_Destroy(&list);
	}
	return got;
}

/* 250 deliveries of a stray request queued, then fetches of 30: the
 * queued ones first, never more than 30 at a time, then the rest. */
static void test_queued_deliveries_taken_in_bounds(void **state)
{
	(void)state;
	vox_pull *p = NULL;
	bool seen[TOTAL + 1] = {false};
	assert_int_equal(vox_pull_open(&p, nc, NULL, STREAM, DURABLE), NATS_OK);
	stray_request(p, 250);
	assert_int_equal(take_all(p, 30, seen, NULL), TOTAL);
	for (int i = 1; i <= TOTAL; i++)
		assert_true(seen[i]);
	assert_int_equal(outstanding_after_acks(0), 0);
	vox_pull_close(p);
}

/* One fetch larger than what is queued: it returns the queued ones alone
 * (no request), the next asks the server for the rest. */
static void test_queued_first_then_server(void **state)
{
	(void)state;
	vox_pull *p = NULL;
	bool seen[TOTAL + 1] = {false};
	assert_int_equal(vox_pull_open(&p, nc, "_INBOX_pulltest", STREAM, DURABLE),
			 NATS_OK);
	assert_true(strncmp(vox_pull_inbox(p), "_INBOX_pulltest.", 16) == 0);
	stray_request(p, 40);
	natsMsgList list;
	assert_int_equal(vox_pull_fetch(p, &list, 1000, 0, 200), NATS_OK);
	assert_int_equal(list.Count, 40);
	for (int i = 0; i < list.Count; i++) {
		assert_int_equal(vox_pull_settle(nc, list.Msgs[i], VOX_ACK, 0), NATS_OK);
		vox_js_ack a;
		assert_true(vox_js_ack_parse(&a, natsMsg_GetReply(list.Msgs[i])));
		seen[a.stream_seq] = true;
	}
	natsMsgList_Destroy(&list);
	assert_int_equal(take_all(p, 1000, seen, NULL), TOTAL - 40);
	assert_int_equal(outstanding_after_acks(0), 0);
	vox_pull_close(p);
}

/* nak redelivers (delivered 2), term never, progress keeps it ours. */
static void test_dispositions(void **state)
{
	(void)state;
	vox_pull *p = NULL;
	assert_int_equal(vox_pull_open(&p, nc, NULL, STREAM, DURABLE), NATS_OK);
	natsMsgList list;
	assert_int_equal(vox_pull_fetch(p, &list, 3, 0, 500), NATS_OK);
	assert_int_equal(list.Count, 3);
	vox_js_ack a[3];
	for (int i = 0; i < 3; i++)
		assert_true(vox_js_ack_parse(&a[i], natsMsg_GetReply(list.Msgs[i])));
	assert_int_equal(vox_pull_settle(nc, list.Msgs[0], VOX_NAK, 0), NATS_OK);
	assert_int_equal(vox_pull_settle(nc, list.Msgs[1], VOX_TERM, 0), NATS_OK);
	assert_int_equal(vox_pull_settle(nc, list.Msgs[2], VOX_PROGRESS, 0), NATS_OK);
	assert_int_equal(vox_pull_settle(nc, list.Msgs[2], VOX_ACK, 0), NATS_OK);
	natsMsgList_Destroy(&list);
	/* the naked one comes back first, delivered twice; the termed and
	 * the acked ones never */
	bool seen[TOTAL + 1] = {false};
	uint64_t delivered[TOTAL + 1] = {0};
	seen[a[1].stream_seq] = seen[a[2].stream_seq] = true;
	assert_int_equal(take_all(p, 50, seen, delivered), TOTAL - 2);
	assert_int_equal(delivered[a[0].stream_seq], 2);
	assert_int_equal(delivered[a[0].stream_seq + 3], 1);
	assert_int_equal(outstanding_after_acks(0), 0);
	vox_pull_close(p);
}

/* A pull closed with deliveries queued gives them back: the next pull
 * gets them at once (delivered twice), not after the 30 s AckWait. */
static void test_close_gives_back(void **state)
{
	(void)state;
	vox_pull *p = NULL, *q = NULL;
	assert_int_equal(vox_pull_open(&p, nc, NULL, STREAM, DURABLE), NATS_OK);
	stray_request(p, 20);
	vox_pull_close(p);
	assert_int_equal(vox_pull_open(&q, nc, NULL, STREAM, DURABLE), NATS_OK);
	bool seen[TOTAL + 1] = {false};
	uint64_t delivered[TOTAL + 1] = {0};
	assert_int_equal(take_all(q, 100, seen, delivered), TOTAL);
	int twice = 0;
	for (int i = 1; i <= TOTAL; i++)
		twice += delivered[i] == 2;
	assert_int_equal(twice, 20);
	vox_pull_close(q);
}

/* Settling something that is not a JetStream delivery is refused. */
static void test_settle_needs_an_ack_subject(void **state)
{
	(void)state;
	natsMsg *m = NULL;
	assert_int_equal(natsMsg_Create(&m, "x", "_INBOX.r", "b", 1), NATS_OK);
	assert_int_equal(vox_pull_settle(nc, m, VOX_ACK, 0), NATS_ERR);
	natsMsg_Destroy(m);
	assert_int_equal(natsMsg_Create(&m, "x", NULL, "b", 1), NATS_OK);
	assert_int_equal(vox_pull_settle(nc, m, VOX_NAK, 10), NATS_ERR);
	natsMsg_Destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_queued_deliveries_taken_in_bounds, fresh_stream),
		cmocka_unit_test_setup(test_queued_first_then_server, fresh_stream),
		cmocka_unit_test_setup(test_dispositions, fresh_stream),
		cmocka_unit_test_setup(test_close_gives_back, fresh_stream),
		cmocka_unit_test(test_settle_needs_an_ack_subject),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
