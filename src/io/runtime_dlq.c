/*
 * runtime_dlq.c - dead letters: a message that can never succeed is
 * republished byte for byte to dlq.<subject> with the Vox-Error headers,
 * and terminated once JetStream stored the copy.
 */
#include "io/runtime_int.h"

/* Header values may not hold CR/LF; keep them printable. */
static void header_safe(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* The dead letter of an item: its bytes on dlq.<subject> with the reason
 * in headers, and a Nats-Msg-Id of its own so that a repeat is dropped. */
static natsStatus dead_letter_msg(natsMsg **out, vox_runtime *rt,
				  const vox_item *it)
{
	const char *code = it->err.code ? it->err.code : "internal";
	natsMsg *m = NULL;
	char subject[512], seq[32], status[16], msgid[256], reason[200];
	const char *orig_id = NULL;

	snprintf(subject, sizeof(subject), "%s%s", VOX_DLQ_PREFIX,
		 natsMsg_GetSubject(it->msg));
	snprintf(seq, sizeof(seq), "%" PRIu64, it->stream_seq);
	snprintf(status, sizeof(status), "%d", vox_status_code(it->err.status));
	snprintf(msgid, sizeof(msgid), "dlq:%s:%" PRIu64, rt->actor, it->stream_seq);
	snprintf(reason, sizeof(reason), "%s", it->err.message);
	header_safe(reason);

	natsStatus s = natsMsg_Create(&m, subject, NULL, natsMsg_GetData(it->msg),
				      natsMsg_GetDataLength(it->msg));
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_ERROR, reason);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_ERROR_CODE, status);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Vox-Error-Reason", code);
	if (s == NATS_OK && it->err.field[0])
		s = natsMsgHeader_Set(m, "Vox-Error-Field", it->err.field);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_STREAM_SEQ, seq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_ACTOR, rt->actor);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", msgid);
	if (s == NATS_OK && natsMsgHeader_Get(it->msg, "Nats-Msg-Id", &orig_id) == NATS_OK)
		s = natsMsgHeader_Set(m, "Vox-Original-Msg-Id", orig_id);
	/* the payload's version goes with it: a replay must not relabel it */
	const char *schema = NULL;
	if (s == NATS_OK && natsMsgHeader_Get(it->msg, VOX_HDR_SCHEMA, &schema) == NATS_OK)
		s = natsMsgHeader_Set(m, VOX_HDR_SCHEMA, schema);
	if (s != NATS_OK) {
		natsMsg_Destroy(m);
		return s;
	}
	*out = m;
	return NATS_OK;
}

/* Called by libnats for each dead letter's publish ack; the message is
 * ours to destroy (libnats hands it over to an AckHandler). */
void vox_rt_dead_letter_acked(jsCtx *js, natsMsg *m, jsPubAck *pa,
			      jsPubAckErr *pae, void *closure)
{
	input_rt *in = closure;
	const char *seq = NULL;
	VOX_UNUSED(js);
	VOX_UNUSED(pae);
	if (pa != NULL && natsMsgHeader_Get(m, VOX_HDR_STREAM_SEQ, &seq) == NATS_OK) {
		pthread_mutex_lock(&in->dlq_lock);
		if (in->ndlq_stored == in->capdlq_stored) {
			in->capdlq_stored = in->capdlq_stored ? in->capdlq_stored * 2 : 64;
			in->dlq_stored = vox_realloc(in->dlq_stored,
						     in->capdlq_stored * sizeof(uint64_t));
		}
		in->dlq_stored[in->ndlq_stored++] = strtoull(seq, NULL, 10);
		pthread_mutex_unlock(&in->dlq_lock);
	}
	natsMsg_Destroy(m);
}

static bool dead_letter_stored(input_rt *in, uint64_t seq)
{
	bool found = false;
	pthread_mutex_lock(&in->dlq_lock);
	for (size_t i = 0; i < in->ndlq_stored && !found; i++)
		found = in->dlq_stored[i] == seq;
	pthread_mutex_unlock(&in->dlq_lock);
	return found;
}

/*
 * Dead-letter items: publish every dead letter at once, wait (bounded by a
 * third of AckWait, at most 5 s) for JetStream to store them, then
 * terminate each original whose copy was stored. One that was not is
 * naked instead: nothing is lost, and its repeat carries the same
 * Nats-Msg-Id, so the DLQ keeps one copy.
 */
void vox_rt_dead_letter_all(vox_runtime *rt, input_rt *in, vox_item **items,
			    size_t n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&in->dlq_lock);
	in->ndlq_stored = 0;
	pthread_mutex_unlock(&in->dlq_lock);
	for (size_t i = 0; i < n; i++) {
		natsMsg *m = NULL;
		if (dead_letter_msg(&m, rt, items[i]) == NATS_OK)
			(void)js_PublishMsgAsync(in->dlq_js, &m, NULL);
		natsMsg_Destroy(m); /* NULL once libnats took it */
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = rt->cfg.ack_wait_s * 1000 / 3;
	if (po.MaxWait > 5000)
		po.MaxWait = 5000;
	if (js_PublishAsyncComplete(in->dlq_js, &po) != NATS_OK) {
		natsMsgList late = {0};
		if (js_PublishAsyncGetPendingList(&late, in->dlq_js) == NATS_OK)
			natsMsgList_Destroy(&late);
	}
	for (size_t i = 0; i < n; i++) {
		vox_item *it = items[i];
		const char *code = it->err.code ? it->err.code : "internal";
		char reason[200];
		snprintf(reason, sizeof(reason), "%s", it->err.message);
		header_safe(reason);
		if (dead_letter_stored(in, it->stream_seq)) {
			vox_rt_settle_msg(in, it, HOW_TERM, 0);
			atomic_fetch_add(&rt->dead_letters, 1);
			vox_counter_set_add(&rt->dl_reasons, code, 1);
			vox_warn("msg=\"dead letter\" subject=%s seq=%" PRIu64
				 " code=%s status=%d reason=\"%s\"",
				 natsMsg_GetSubject(it->msg), it->stream_seq, code,
				 vox_status_code(it->err.status), reason);
		} else {
			vox_warn("msg=\"dead letter not stored, will retry\" seq=%" PRIu64,
				 it->stream_seq);
			vox_rt_nak_waiting(in, it);
		}
	}
}
