/*
 * Integration: the public C client publishing to a real JetStream. An event
 * is stored on its subject with Nats-Msg-Id = event_id, a repeat is
 * reported as a duplicate, an invalid event is refused before anything is
 * sent, and the stored bytes decode to the same event. The example bridge
 * runs against the same server.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <sys/wait.h>

#include <nats/nats.h>

#include "harness.h"
#include "vox/client.h"

#define ORG "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

static natsConnection *nc;
static jsCtx *js;

static int setup(void **state)
{
	(void)state;
	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	const char *subjects[] = {"call.*.*", "payment.*.*", "lead.*.*"};
	if (natsConnection_ConnectTo(&nc, th_env("VOX_NATS_URL")) != NATS_OK)
		return -1;
	if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
		return -1;
	js_DeleteStream(js, VOX_STREAM_EVENTS, NULL, NULL);
	jsStreamConfig_Init(&cfg);
	cfg.Name = VOX_STREAM_EVENTS;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 3;
	cfg.Storage = js_FileStorage;
	if (js_AddStream(&si, js, &cfg, NULL, NULL) != NATS_OK)
		return -1;
	jsStreamInfo_Destroy(si);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	js_DeleteStream(js, VOX_STREAM_EVENTS, NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

static void payment(vox_event *ev, const char *event_id, int64_t amount)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_PAYMENT_SUCCEEDED;
	vox_payment_succeeded *p = &ev->u.payment_succeeded;
	p->event_id = (vox_str){event_id, strlen(event_id)};
	memcpy(p->org_id.s, ORG, 37);
	p->stripe_payment_intent_id = (vox_str){"pi_test_1", 9};
	p->amount_pence = amount;
	p->occurred_at = (vox_time){1795000000, 0, true};
}

static uint64_t stream_msgs(void)
{
	jsStreamInfo *si = NULL;
	assert_int_equal(js_GetStreamInfo(&si, js, VOX_STREAM_EVENTS, NULL, NULL),
			 NATS_OK);
	uint64_t n = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return n;
}

static void test_publish_stores_then_reports_duplicate(void **state)
{
	(void)state;
	vox_event ev;
	vox_pub_ack ack;
	vox_error err;
	uint64_t before = stream_msgs();
	payment(&ev, "evt_pub_1", 2500);
	assert_int_equal(vox_publish(&ack, js, &ev, 5000, &err), VOX_OK);
	assert_string_equal(ack.stream, "EVENTS");
	assert_false(ack.duplicate);
	uint64_t seq = ack.seq;
	assert_int_equal(vox_publish(&ack, js, &ev, 5000, &err), VOX_OK);
	assert_true(ack.duplicate);
	assert_int_equal(ack.seq, seq);
	assert_int_equal(stream_msgs(), before + 1);

	/* What was stored is the event, on its subject, with its msg id. */
	natsMsg *m = NULL;
	char subj[128];
	assert_true(vox_subject_format(subj, sizeof(subj), VOX_PAYMENT_SUCCEEDED, ORG));
	assert_int_equal(js_GetLastMsg(&m, js, VOX_STREAM_EVENTS, subj, NULL, NULL),
			 NATS_OK);
	const char *id = NULL;
	assert_int_equal(natsMsgHeader_Get(m, "Nats-Msg-Id", &id), NATS_OK);
	assert_string_equal(id, "evt_pub_1");
	vox_event back;
	assert_int_equal(vox_event_decode_subject(&back, natsMsg_GetSubject(m),
			 natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &err),
			 VOX_OK);
	assert_int_equal(back.u.payment_succeeded.amount_pence, 2500);
	natsMsg_Destroy(m);
}

static void test_invalid_event_is_never_sent(void **state)
{
	(void)state;
	vox_event ev;
	vox_pub_ack ack = {{0}, 0, false};
	vox_error err;
	uint64_t before = stream_msgs();
	payment(&ev, "evt_pub_bad", 0); /* amount must be >= 1 */
	assert_int_equal(vox_publish(&ack, js, &ev, 5000, &err), VOX_E_INVALID);
	assert_string_equal(err.message, "amount_pence: must be 1..100000000");
	payment(&ev, "evt_pub_bad2", 10);
	memcpy(ev.u.payment_succeeded.org_id.s, "not-a-uuid", 11);
	assert_int_equal(vox_publish(&ack, js, &ev, 5000, &err), VOX_E_INVALID);
	assert_string_equal(err.code, "bad_uuid");
	assert_int_equal(stream_msgs(), before);
}

static void test_async_publish(void **state)
{
	(void)state;
	vox_event ev;
	vox_error err;
	char ids[50][32];
	uint64_t before = stream_msgs();
	for (int i = 0; i < 50; i++) {
		snprintf(ids[i], sizeof(ids[i]), "evt_async_%d", i);
		payment(&ev, ids[i], 100 + i);
		assert_int_equal(vox_publish_async(js, &ev, &err), VOX_OK);
	}
	jsPubOptions o;
	jsPubOptions_Init(&o);
	o.MaxWait = 10000;
	assert_int_equal(js_PublishAsyncComplete(js, &o), NATS_OK);
	assert_int_equal(stream_msgs(), before + 50);
}

/* Run the bridge (cmd); its call id into call_id; every ack line says
 * stream EVENTS and duplicate=<dup>. */
static void bridge_run(const char *cmd, const char *dup, char call_id[64])
{
	char line[256], want[32];
	snprintf(want, sizeof(want), "duplicate=%s", dup);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	int acks = 0;
	call_id[0] = '\0';
	while (fgets(line, sizeof(line), p)) {
		if (strncmp(line, "call_id=", 8) == 0) {
			snprintf(call_id, 64, "%.36s", line + 8);
			continue;
		}
		acks++;
		assert_non_null(strstr(line, "stream=EVENTS"));
		assert_non_null(strstr(line, want));
	}
	assert_int_equal(pclose(p), 0);
	assert_int_equal(acks, 2);
	assert_int_equal(strlen(call_id), 36);
}

/* Each run without a call id is a new call; with the same call id, the
 * repeat is a duplicate. */
static void test_example_bridge(void **state)
{
	(void)state;
	char cmd[1024], line[256], first[64], second[64];
	uint64_t before = stream_msgs();
	snprintf(cmd, sizeof(cmd), "%s %s", th_bin("vox-example-bridge"), ORG);
	bridge_run(cmd, "false", first);
	bridge_run(cmd, "false", second);
	assert_string_not_equal(first, second);
	assert_int_equal(stream_msgs(), before + 4);
	snprintf(cmd, sizeof(cmd), "%s %s %s", th_bin("vox-example-bridge"), ORG, first);
	bridge_run(cmd, "true", second);
	assert_string_equal(second, first);
	assert_int_equal(stream_msgs(), before + 4);
	/* a bad org id is refused locally with the field-level reason */
	snprintf(cmd, sizeof(cmd), "%s not-an-org 2>&1", th_bin("vox-example-bridge"));
	FILE *p = popen(cmd, "r");
	assert_non_null(fgets(line, sizeof(line), p));
	assert_non_null(strstr(line, "org_id: must be a UUID"));
	assert_int_equal(WEXITSTATUS(pclose(p)), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_stores_then_reports_duplicate),
		cmocka_unit_test(test_invalid_event_is_never_sent),
		cmocka_unit_test(test_async_publish),
		cmocka_unit_test(test_example_bridge),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
