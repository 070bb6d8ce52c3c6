/*
 * vox/client.h - what a bridge written in C links against to publish vox
 * events to JetStream: the event is validated with the same rules the
 * actors apply, encoded as msgpack, and published on its subject
 * ("<kind>.<org_id>") with Nats-Msg-Id set from its event_id, so that
 * JetStream's duplicate window drops a retried publish early.
 *
 * Link: the vox_client library (CMake target vox_client), libnats,
 * msgpack-c and libsodium.
 *
 * Thread safety: the functions are reentrant; a jsCtx may be shared by
 * threads as libnats allows.
 */
#ifndef VOX_CLIENT_H
#define VOX_CLIENT_H

#include <nats/nats.h>

#include "vox/event.h"
#include "vox/subjects.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vox_pub_ack {
	char stream[64];   /* the stream that stored it, e.g. "EVENTS" */
	uint64_t seq;      /* its stream sequence */
	bool duplicate;    /* JetStream had it already (same Nats-Msg-Id) */
} vox_pub_ack;

/*
 * Build the NATS message for ev: subject, msgpack body, headers
 * Nats-Msg-Id and Vox-Schema. On VOX_OK the caller owns *out
 * (natsMsg_Destroy). VOX_E_INVALID (with *err filled) when ev breaks the
 * contract; nothing is built then.
 */
vox_status vox_event_to_msg(natsMsg **out, const vox_event *ev,
			    vox_decode_error *err);

/*
 * Publish ev and wait for JetStream's acknowledgement (up to timeout_ms).
 * On VOX_OK *ack says where it was stored and whether it was a duplicate.
 * VOX_E_INVALID: refused locally, nothing sent. VOX_E_TIMEOUT /
 * VOX_E_UNAVAILABLE: not acknowledged; publishing the same event again is
 * safe (the Nats-Msg-Id makes a repeat a duplicate).
 */
vox_status vox_publish(jsCtx *js, const vox_event *ev, int64_t timeout_ms,
		       vox_pub_ack *ack, vox_decode_error *err);

/*
 * Publish without waiting; acknowledgements and failures arrive through
 * the jsCtx's PublishAsync handlers, and js_PublishAsyncComplete waits for
 * them. Set jsOptions.PublishAsync.MaxPending: libnats' default of 0 means
 * unlimited.
 */
vox_status vox_publish_async(jsCtx *js, const vox_event *ev,
			     vox_decode_error *err);

#ifdef __cplusplus
}
#endif

#endif
