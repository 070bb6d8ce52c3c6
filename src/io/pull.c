/*
 * pull.c - pulling from a JetStream consumer with our own requests (see
 * pull.h for why).
 *
 * A pull request is a publish to $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>
 * with reply "<inbox>.<n>" and a JSON body {batch, max_bytes, expires}.
 * The server sends up to batch messages to that reply subject, each with
 * its ack subject as reply; when the request ends early it sends a
 * status message instead (no body, no reply): 404 nothing pending (a
 * no_wait request), 408 expired, 409 a limit (max_bytes, the consumer's
 * MaxRequestBatch, the consumer deleted). 100 is a heartbeat.
 */
#include "core/common.h"

#include "io/pull.h"
#include "io/natsconn.h"

#include <time.h>

/* how long past the server's expiry a fetch waits for its status */
#define STATUS_GRACE_MS 250

struct vox_pull {
	natsConnection *nc;
	natsSubscription *sub;
	char inbox[160];   /* deliveries arrive on "<inbox>.<n>" */
	char next[320];    /* the consumer's request subject */
	uint64_t n;        /* the last pull sent */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

natsStatus vox_pull_open(vox_pull **out, natsConnection *nc,
			 const char *prefix, const char *stream,
			 const char *durable)
{
	*out = NULL;
	vox_pull *p = vox_calloc(1, sizeof(*p));
	p->nc = nc;
	char wild[176];
	natsStatus s = vox_nats_new_inbox(p->inbox, sizeof(p->inbox),
					  prefix && *prefix ? prefix : "_INBOX");
	int n = snprintf(p->next, sizeof(p->next), "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
			 stream, durable);
	if (s == NATS_OK && (n < 0 || (size_t)n >= sizeof(p->next)))
		s = NATS_INVALID_ARG;
	if (s == NATS_OK)
		snprintf(wild, sizeof(wild), "%s.*", p->inbox);
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&p->sub, nc, wild);
	/* the default limit (65,536 messages) is below what a few pulls
	 * may deliver; the batch bounds what is queued, not libnats */
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(p->sub, -1, -1);
	if (s != NATS_OK) {
		vox_pull_close(p);
		return s;
	}
	*out = p;
	return NATS_OK;
}

const char *vox_pull_inbox(const vox_pull *p)
{
	return p->inbox;
}

/* A JetStream delivery: it has an ack subject. */
static bool delivery(natsMsg *m)
{
	const char *reply = natsMsg_GetReply(m);
	return reply && strncmp(reply, "$JS.ACK.", 8) == 0;
}

/* The code of a status message (100, 404, 408, 409...); 0 for anything
 * else. */
static int status_of(natsMsg *m)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, "Status", &v) != NATS_OK || v == NULL)
		return 0;
	return (int)strtol(v, NULL, 10);
}

/* The pull a message was sent for: the number after the inbox. */
static uint64_t pull_of(const vox_pull *p, natsMsg *m)
{
	const char *subj = natsMsg_GetSubject(m);
	size_t l = strlen(p->inbox);
	if (strncmp(subj, p->inbox, l) != 0 || subj[l] != '.')
		return 0;
	return strtoull(subj + l + 1, NULL, 10);
}

typedef struct taking {
	natsMsg **msgs;
	size_t n, max, bytes, max_bytes;
} taking;

static bool full(const taking *t)
{
	return t->n == t->max || t->bytes >= t->max_bytes;
}

/* Keep a delivery, drop anything else. Returns the code of a status
 * message, 0 for a delivery or a stray message. */
static int take(taking *t, natsMsg *m)
{
	if (delivery(m)) {
		t->msgs[t->n++] = m;
		t->bytes += (size_t)natsMsg_GetDataLength(m);
		return 0;
	}
	int code = status_of(m);
	natsMsg_Destroy(m);
	return code;
}

/* The messages taken become the list (t->n > 0). */
static void give(taking *t, natsMsgList *list)
{
	list->Msgs = t->msgs;
	list->Count = (int)t->n;
}

natsStatus vox_pull_fetch(vox_pull *p, natsMsgList *list, size_t max,
			  size_t max_bytes, int64_t wait_ms)
{
	memset(list, 0, sizeof(*list));
	if (max == 0 || max > INT32_MAX)
		return NATS_INVALID_ARG;
	if (wait_ms < 1)
		wait_ms = 1;
	taking t = {.msgs = vox_calloc(max, sizeof(natsMsg *)), .max = max,
		    .max_bytes = max_bytes ? max_bytes : SIZE_MAX};
	natsStatus s;
	natsMsg *m = NULL;

	/* 1. what earlier pulls left queued: ours already, no request */
	while (!full(&t) &&
	       natsSubscription_NextMsg(&m, p->sub, 0) == NATS_OK)
		(void)take(&t, m);
	if (t.n > 0) {
		give(&t, list);
		return NATS_OK;
	}

	/* 2. one request, read until its status or its last message */
	uint64_t id = ++p->n;
	char reply[200], body[160];
	snprintf(reply, sizeof(reply), "%s.%" PRIu64, p->inbox, id);
	int len = snprintf(body, sizeof(body),
			   "{\"batch\":%zu,\"max_bytes\":%zu,\"expires\":%" PRId64 "}",
			   max, max_bytes, wait_ms * 1000000);
	s = natsConnection_PublishRequest(p->nc, p->next, reply, body, len);
	int64_t deadline = mono_ms() + wait_ms + STATUS_GRACE_MS;
	while (s == NATS_OK && !full(&t)) {
		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			s = NATS_TIMEOUT;
			break;
		}
		s = natsSubscription_NextMsg(&m, p->sub, left);
		if (s != NATS_OK)
			break;
		uint64_t of = pull_of(p, m);
		int code = take(&t, m);
		/* a status ends the request it answers; a heartbeat nothing */
		if (code != 0 && code != 100 && of == id)
			break;
	}
	if (t.n > 0) {
		give(&t, list);
		return NATS_OK;
	}
	free(t.msgs);
	return s == NATS_OK ? NATS_TIMEOUT : s;
}

void vox_pull_close(vox_pull *p)
{
	if (p == NULL)
		return;
	if (p->sub) {
		/* stop deliveries, then give back what is queued; drain before
		 * destroy (a 3.4.1 race otherwise) */
		natsMsg *m = NULL;
		if (natsSubscription_Drain(p->sub) == NATS_OK) {
			while (natsSubscription_NextMsg(&m, p->sub, 50) == NATS_OK) {
				if (delivery(m))
					(void)vox_pull_settle(p->nc, m, VOX_NAK, 0);
				natsMsg_Destroy(m);
			}
			natsSubscription_WaitForDrainCompletion(p->sub, 2000);
		}
		natsSubscription_Destroy(p->sub);
	}
	free(p);
}

natsStatus vox_pull_settle(natsConnection *nc, natsMsg *m, vox_ack_kind k,
			   int64_t delay_ms)
{
	char body[64];
	const char *b;
	if (!delivery(m))
		return NATS_ERR;
	switch (k) {
	case VOX_ACK:
		b = "+ACK";
		break;
	case VOX_NAK:
		if (delay_ms > 0) {
			snprintf(body, sizeof(body), "-NAK {\"delay\":%" PRId64 "}",
				 delay_ms * 1000000);
			b = body;
		} else {
			b = "-NAK";
		}
		break;
	case VOX_TERM:
		b = "+TERM";
		break;
	default:
		b = "+WPI";
		break;
	}
	return natsConnection_PublishString(nc, natsMsg_GetReply(m), b);
}
