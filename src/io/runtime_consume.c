/*
 * runtime_consume.c - the consumer side: the durable consumer of each input,
 * its pull, and the fetcher thread that gathers and decodes what arrived
 * into the batch the writer takes next.
 */
#include "io/runtime_int.h"

void vox_rt_batch_free(batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nlists; i++)
		natsMsgList_Destroy(&b->lists[i]);
	free(b->lists);
	free(b->items);
	free(b);
}

/* ---- streams and consumers -------------------------------------------- */

vox_status vox_rt_ensure_consumer(vox_runtime *rt, input_rt *in, char *err,
				  size_t errlen)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	jsConsumerConfig_Init(&cc);
	cc.Durable = in->def.durable;
	cc.Description = rt->actor;
	cc.FilterSubject = in->def.filter;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = rt->cfg.ack_wait_s * 1000000000LL;
	cc.MaxDeliver = rt->cfg.max_deliver;
	cc.MaxAckPending = rt->cfg.max_ack_pending;
	cc.MaxRequestBatch = rt->cfg.batch;
	cc.Replicas = rt->cfg.replicas;
	natsStatus s = js_AddConsumer(&ci, rt->js, VOX_STREAM_EVENTS, &cc, NULL, &jerr);
	if (s != NATS_OK && jerr != 0) {
		/* exists with other settings: update what may be updated */
		jsConsumerInfo_Destroy(ci);
		ci = NULL;
		jerr = 0;
		s = js_UpdateConsumer(&ci, rt->js, VOX_STREAM_EVENTS, &cc, NULL, &jerr);
	}
	jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK) {
		snprintf(err, errlen, "consumer %s: %s (%d)", in->def.durable,
			 nats_GetLastError(NULL), (int)jerr);
		return vox_nats_status(s) == VOX_E_INTERNAL ? VOX_E_CONFIG
							    : vox_nats_status(s);
	}
	return VOX_OK;
}

vox_status vox_rt_subscribe(vox_runtime *rt, input_rt *in, char *err,
			    size_t errlen)
{
	natsStatus s = vox_pull_open(&in->pull, rt->nc, rt->cfg.inbox_prefix,
				     VOX_STREAM_EVENTS, in->def.durable);
	if (s != NATS_OK) {
		snprintf(err, errlen, "subscribe %s: %s", in->def.durable,
			 natsStatus_GetText(s));
		return vox_nats_status(s);
	}
	return VOX_OK;
}

/* ---- threads ----------------------------------------------------------- */

/* Decode one fetched message into an item; a refusal is recorded on the
 * item (the writer dead-letters it). Returns the consumer's count of
 * messages pending behind m when JetStream delivered it. */
static uint64_t decode_item(vox_runtime *rt, natsMsg *m, vox_item *it)
{
	uint64_t pending = 0;
	vox_js_ack meta;
	memset(it, 0, sizeof(*it));
	it->msg = m;
	if (vox_js_ack_parse(&meta, natsMsg_GetReply(m))) {
		it->stream_seq = meta.stream_seq;
		it->delivered = meta.delivered;
		pending = meta.pending;
		atomic_store(&rt->lag, pending);
	}
	if (it->delivered > 1)
		atomic_fetch_add(&rt->redelivered, 1);
	/* a refusal is kept in it->err (zeroed: VOX_OK otherwise), for the
	 * writer to dead-letter in order */
	const char *schema = NULL;
	if (natsMsgHeader_Get(m, VOX_HDR_SCHEMA, &schema) != NATS_OK)
		schema = NULL; /* absent: version 1 */
	vox_status st = vox_schema_version_check(&it->err, schema);
	if (st == VOX_OK)
		st = vox_event_decode_subject(&it->ev, natsMsg_GetSubject(m),
					      natsMsg_GetData(m),
					      (size_t)natsMsg_GetDataLength(m),
					      &it->err);
	VOX_UNUSED(st);
	return pending;
}

/*
 * After a failed fetch (NATS went away, the consumer did not answer),
 * pull on a fresh inbox; closing the old one gives back what it still
 * had queued. It goes only once the writer holds none of its messages.
 */
static void resubscribe(vox_runtime *rt, input_rt *in)
{
	char err[256];
	pthread_mutex_lock(&in->lock);
	while (in->queued != NULL || in->writer_busy)
		pthread_cond_wait(&in->cond, &in->lock);
	pthread_mutex_unlock(&in->lock);
	vox_pull *old = in->pull;
	in->pull = NULL;
	while (!atomic_load(&rt->stop)) {
		if (vox_rt_subscribe(rt, in, err, sizeof(err)) == VOX_OK)
			break;
		vox_rt_nap(rt, 500);
	}
	vox_pull_close(old);
}

/* Room in the batch being gathered (messages, bytes), waiting while it is
 * full and the writer busy; 0 when stopping. */
static size_t wait_room(vox_runtime *rt, input_rt *in, size_t *bytes)
{
	size_t max_bytes = (size_t)rt->cfg.batch_kb * 1024, room = 0;
	pthread_mutex_lock(&in->lock);
	while (!atomic_load(&rt->stop)) {
		size_t n = in->queued ? in->queued->n : 0;
		size_t by = in->queued ? in->queued->bytes : 0;
		if (n < (size_t)rt->cfg.batch && by < max_bytes) {
			room = (size_t)rt->cfg.batch - n;
			*bytes = max_bytes - by;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&in->cond, &in->lock, &ts);
	}
	pthread_mutex_unlock(&in->lock);
	return room;
}

static natsStatus fetch(natsMsgList *list, input_rt *in, size_t count,
			size_t bytes, int64_t wait_ms)
{
	/* a message of the largest size always fits */
	size_t max_bytes = bytes > 2 * VOX_MAX_MESSAGE ? bytes : 2 * VOX_MAX_MESSAGE;
	return vox_pull_fetch(in->pull, list, count, max_bytes, wait_ms);
}

/*
 * Fetch what has arrived, up to room, without waiting for a batch to fill.
 * JetStream tells, with each message, how many are pending behind it: the
 * next pull asks for that many (the server has them, so it answers at
 * once), and only when none were pending does it wait, up to
 * VOX_FETCH_WAIT_MS, for the first new one. When instances share the
 * consumer the others may take some of those; the pull then ends after
 * FETCH_FILL_MS with what it got. NATS_TIMEOUT when nothing came.
 * Whatever a pull's answer still had on the way when it ended is taken
 * by the next one (src/io/pull.c).
 */
#define FETCH_FILL_MS 50

static natsStatus fetch_arrived(vox_runtime *rt, input_rt *in, size_t room,
				size_t bytes, natsMsgList *got)
{
	size_t want = in->pending < room ? (size_t)in->pending : room;
	natsStatus s;
	if (want > 0)
		s = fetch(got, in, want, bytes, FETCH_FILL_MS);
	else
		s = fetch(got, in, 1, bytes, rt->cfg.fetch_wait_ms);
	if (s != NATS_OK)
		in->pending = 0;
	return s;
}

/* Add the decoded messages of list to the batch being gathered. */
static void gather(vox_runtime *rt, input_rt *in, natsMsgList *list)
{
	size_t n = (size_t)list->Count, bytes = 0;
	vox_item *items = vox_calloc(n, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		in->pending = decode_item(rt, list->Msgs[i], &items[i]);
		bytes += (size_t)natsMsg_GetDataLength(list->Msgs[i]);
	}
	if (n)
		atomic_store(&in->lag, in->pending);
	atomic_fetch_add(&rt->received, n);
	pthread_mutex_lock(&in->lock);
	batch *b = in->queued;
	if (b == NULL) {
		b = vox_calloc(1, sizeof(*b));
		b->progress_ms = vox_rt_now_ms();
		in->queued = b;
		atomic_fetch_add(&rt->batches, 1);
	}
	if (b->nlists == b->caplists) {
		b->caplists = b->caplists ? b->caplists * 2 : 4;
		b->lists = vox_realloc(b->lists, b->caplists * sizeof(*b->lists));
	}
	b->lists[b->nlists++] = *list;
	if (b->n + n > b->cap) {
		b->cap = b->n + n > 2 * b->cap ? b->n + n : 2 * b->cap;
		b->items = vox_realloc(b->items, b->cap * sizeof(*b->items));
	}
	memcpy(b->items + b->n, items, n * sizeof(*items));
	b->n += n;
	b->bytes += bytes;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
	memset(list, 0, sizeof(*list)); /* the batch owns it now */
	free(items);
}

void *vox_rt_fetcher_main(void *arg)
{
	input_rt *in = arg;
	vox_runtime *rt = in->rt;
	int64_t backoff = 100;
	bool down_logged = false;

	while (!atomic_load(&rt->stop)) {
		size_t bytes = 0;
		size_t room = wait_room(rt, in, &bytes);
		if (room == 0)
			break;
		natsMsgList got;
		memset(&got, 0, sizeof(got));
		natsStatus s = fetch_arrived(rt, in, room, bytes, &got);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			if (!down_logged) {
				vox_warn("msg=\"fetch failed, retrying\" input=%s error=\"%s\"",
					 in->def.durable, natsStatus_GetText(s));
				down_logged = true;
			}
			vox_rt_nap(rt, backoff);
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
			resubscribe(rt, in);
			continue;
		}
		if (down_logged)
			vox_info("msg=\"fetching again\" input=%s", in->def.durable);
		down_logged = false;
		backoff = 100;
		gather(rt, in, &got);
	}
	pthread_mutex_lock(&in->lock);
	in->fetcher_done = true;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
	return NULL;
}
