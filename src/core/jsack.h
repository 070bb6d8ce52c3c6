/*
 * jsack.h - what JetStream says of a delivered message in its reply
 * subject, the "ack subject", as a pure function:
 *
 *   $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>
 *   $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>
 *          .<cseq>.<ns>.<pending>[.<token>...]
 *
 * The first is what nats-server 2.9 sends; the second (with a domain
 * and an account hash) is what newer servers send. The runtime pulls with
 * its own requests (src/io/pull.c), so the messages it gets are not
 * libnats JetStream messages and natsMsg_GetMetaData refuses them.
 */
#ifndef VOX_JSACK_H
#define VOX_JSACK_H

#include "core/common.h"

typedef struct vox_js_ack {
	uint64_t delivered;    /* times delivered, this one included */
	uint64_t stream_seq;
	uint64_t consumer_seq;
	int64_t timestamp_ns;  /* when the stream stored it */
	uint64_t pending;      /* messages the consumer holds behind it */
} vox_js_ack;

/* True when reply is an ack subject with every field a number; *out is
 * then filled (else zeroed). */
bool vox_js_ack_parse(vox_js_ack *out, const char *reply) VOX_MUST_CHECK;

#endif
