/*
 * publish.c - the publishing half of the public C client (vox/client.h).
 */
#include "vox/client.h"

#include "core/common.h"
#include "io/natsconn.h"

vox_status vox_event_to_msg(natsMsg **out, const vox_event *ev,
			    vox_error *err)
{
	unsigned char *body = NULL;
	size_t len = 0;
	natsMsg *m = NULL;
	char subject[256];
	char msgid[160];
	vox_status st = vox_event_encode(&body, &len, ev, err);
	if (st != VOX_OK)
		return st;
	vox_str id = vox_event_msg_id(ev);
	snprintf(msgid, sizeof(msgid), "%.*s", (int)id.len, id.ptr);
	if (!vox_subject_format(subject, sizeof(subject), ev->kind,
				vox_event_org(ev)->s)) {
		st = VOX_E_INTERNAL;
		goto out;
	}
	natsStatus s = natsMsg_Create(&m, subject, NULL, (const char *)body,
				      (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", msgid);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_SCHEMA, "1");
	if (s != NATS_OK) {
		st = vox_nats_status(s);
		goto out;
	}
	*out = m;
	m = NULL;
out:
	natsMsg_Destroy(m);
	free(body);
	return st;
}

vox_status vox_publish(vox_pub_ack *ack, jsCtx *js, const vox_event *ev,
		       int64_t timeout_ms, vox_error *err)
{
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsPubOptions opts;
	jsErrCode jerr = 0;
	vox_status st = vox_event_to_msg(&m, ev, err);
	if (st != VOX_OK)
		return st;
	jsPubOptions_Init(&opts);
	opts.MaxWait = timeout_ms > 0 ? timeout_ms : 5000;
	natsStatus s = js_PublishMsg(&pa, js, m, &opts, &jerr);
	st = vox_nats_status(s);
	if (s == NATS_OK) {
		snprintf(ack->stream, sizeof(ack->stream), "%s", pa->Stream);
		ack->seq = pa->Sequence;
		ack->duplicate = pa->Duplicate;
	} else if (st == VOX_E_INTERNAL) {
		st = VOX_E_UNAVAILABLE;
	}
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
	return st;
}

vox_status vox_publish_async(jsCtx *js, const vox_event *ev,
			     vox_error *err)
{
	natsMsg *m = NULL;
	vox_status st = vox_event_to_msg(&m, ev, err);
	if (st != VOX_OK)
		return st;
	natsStatus s = js_PublishMsgAsync(js, &m, NULL);
	natsMsg_Destroy(m); /* NULL once the library owns it */
	st = vox_nats_status(s);
	return st == VOX_E_INTERNAL ? VOX_E_UNAVAILABLE : st;
}
