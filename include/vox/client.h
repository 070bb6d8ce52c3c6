/*
 * vox/client.h - what a bridge written in C links against to publish vox
 * events to JetStream: the event is validated with the same rules the
 * actors apply, encoded as msgpack, and published on its subject
 * ("<kind>.<org_id>") with Nats-Msg-Id set from its event_id, so that
 * JetStream's duplicate window drops a retried publish early.
 *
 * Link: the vox_client library (CMake target vox_client), libnats,
 * msgpack-c (libvox_client.a carries the codec; nothing of the actors).
 *
 * Each bridge has its own NATS user that may publish only its kind of
 * events (deploy/nats/accounts.conf: telephony call.*.*, payments
 * payment.*.*, scorer lead.*.*); vox_connect_env connects as one.
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

/*
 * Connect to NATS as the VOX_NATS_* environment says, the way the actors
 * do: VOX_NATS_URL (default nats://127.0.0.1:4222; a comma-separated list
 * of a cluster's nodes), VOX_NATS_USER and VOX_NATS_PASSWORD or
 * VOX_NATS_CREDS, VOX_NATS_TLS_CA / VOX_NATS_TLS_CERT / VOX_NATS_TLS_KEY,
 * and the inbox prefix the server lets this user read ("_INBOX_<user>",
 * or VOX_NATS_INBOX_PREFIX): with deploy/nats/accounts.conf a client with
 * libnats's default "_INBOX" gets no reply and no publish ack. name is the
 * client name the server shows. Reconnects forever after a loss.
 * On VOX_OK the caller owns *out (natsConnection_Destroy).
 * VOX_E_UNAVAILABLE: no server answered; VOX_E_FORBIDDEN: credentials
 * refused; VOX_E_CONFIG: bad settings. err (errlen bytes) says why.
 */
vox_status vox_connect_env(natsConnection **out, const char *name, char *err,
			   size_t errlen) VOX_MUST_CHECK;

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
			    vox_error *err) VOX_MUST_CHECK;

/*
 * Publish ev and wait for JetStream's acknowledgement (up to timeout_ms).
 * On VOX_OK *ack says where it was stored and whether it was a duplicate.
 * VOX_E_INVALID: refused locally, nothing sent. VOX_E_TIMEOUT /
 * VOX_E_UNAVAILABLE: not acknowledged; publishing the same event again is
 * safe (the Nats-Msg-Id makes a repeat a duplicate).
 */
vox_status vox_publish(vox_pub_ack *ack, jsCtx *js, const vox_event *ev,
		       int64_t timeout_ms, vox_error *err) VOX_MUST_CHECK;

/*
 * Publish without waiting; acknowledgements and failures arrive through
 * the jsCtx's PublishAsync handlers, and js_PublishAsyncComplete waits for
 * them. Set jsOptions.PublishAsync.MaxPending: libnats' default of 0 means
 * unlimited.
 */
vox_status vox_publish_async(jsCtx *js, const vox_event *ev,
			     vox_error *err) VOX_MUST_CHECK;

#ifdef __cplusplus
}
#endif

#endif
