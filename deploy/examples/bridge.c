/*
 * bridge.c - an example telephony bridge in C: publishes one realistic
 * call (call.started, then call.ended three minutes later) for an org, the
 * way a Vapi or Twilio webhook handler would, using only include/vox/.
 *
 *   VOX_NATS_URL=nats://127.0.0.1:4222 vox-example-bridge <org_id> [call_id]
 *
 * The connection takes every VOX_NATS_* variable the actors take (URL,
 * user and password or creds, TLS, inbox prefix). Without a call_id each
 * run is a new call, with a random id.
 *
 * Against deploy/nats/accounts.conf it runs as the telephony user
 * (VOX_NATS_USER=telephony VOX_NATS_PASSWORD=...), which may publish
 * call events and read its own publish acks, nothing else; vox_connect_env
 * sets the inbox prefix that user may read.
 *
 * It prints each publish acknowledgement. Run it twice with the same
 * call_id and JetStream reports the repeats as duplicates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <nats/nats.h>

#include "vox/client.h"

#define STR(s) ((vox_str){s, sizeof(s) - 1})

static int publish(jsCtx *js, const vox_event *ev)
{
	vox_pub_ack ack;
	vox_error err;
	vox_status st = vox_publish(&ack, js, ev, 5000, &err);
	if (st == VOX_E_INVALID) {
		fprintf(stderr, "bridge: refused: %s\n", err.message);
		return 2;
	}
	if (st != VOX_OK) {
		fprintf(stderr, "bridge: publish failed: %s\n", vox_status_str(st));
		return 3;
	}
	printf("%s stream=%s seq=%llu duplicate=%s\n",
	       vox_event_kind_name(ev->kind), ack.stream,
	       (unsigned long long)ack.seq, ack.duplicate ? "true" : "false");
	return 0;
}

/* A random (version 4) UUID. */
static int random_uuid(char out[37])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: vox-example-bridge <org_id> [call_id]\n");
		return 2;
	}
	char fresh[37];
	if (argc < 3 && random_uuid(fresh) != 0) {
		fprintf(stderr, "bridge: no randomness for a call id\n");
		return 3;
	}
	const char *call_id = argc == 3 ? argv[2] : fresh;
	printf("call_id=%s\n", call_id);
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	char err[256];
	int rc = 3;

	vox_status st = vox_connect_env(&nc, "vox-example-bridge", err, sizeof(err));
	if (st != VOX_OK) {
		fprintf(stderr, "bridge: cannot reach NATS: %s\n", err);
		rc = st == VOX_E_CONFIG ? 2 : 3;
		goto out;
	}
	if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
		fprintf(stderr, "bridge: JetStream: %s\n", nats_GetLastError(NULL));
		goto out;
	}

	time_t now = time(NULL);
	char started_id[80], ended_id[80];
	snprintf(started_id, sizeof(started_id), "bridge-%s-started", call_id);
	snprintf(ended_id, sizeof(ended_id), "bridge-%s-ended", call_id);

	vox_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = VOX_CALL_STARTED;
	vox_call_started *s = &ev.u.call_started;
	s->event_id = (vox_str){started_id, strlen(started_id)};
	snprintf(s->org_id.s, sizeof(s->org_id.s), "%s", argv[1]);
	snprintf(s->call_id.s, sizeof(s->call_id.s), "%s", call_id);
	s->vapi_call_id = STR("vapi_call_7f3a9c1e2b4d");
	s->direction = VOX_DIR_INBOUND;
	s->from_number = STR("+447700900123");
	s->to_number = STR("+442071838750");
	s->caller_name = STR("Priya Shah");
	s->started_at = (vox_time){(int64_t)now - 187, 0, true};
	if ((rc = publish(js, &ev)) != 0)
		goto out;

	memset(&ev, 0, sizeof(ev));
	ev.kind = VOX_CALL_ENDED;
	vox_call_ended *e = &ev.u.call_ended;
	e->event_id = (vox_str){ended_id, strlen(ended_id)};
	snprintf(e->org_id.s, sizeof(e->org_id.s), "%s", argv[1]);
	snprintf(e->call_id.s, sizeof(e->call_id.s), "%s", call_id);
	e->ended_at = (vox_time){(int64_t)now, 0, true};
	e->duration_seconds = 187;
	e->status = VOX_CALL_COMPLETED;
	e->summary = STR("New patient booked a check-up for Tuesday 2:30pm.");
	e->sentiment_label = VOX_SENTIMENT_POSITIVE;
	e->has_sentiment_score = true;
	e->sentiment_score = 0.82;
	e->sentiment_urgency = VOX_URGENCY_LOW;
	rc = publish(js, &ev);
out:
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rc;
}
