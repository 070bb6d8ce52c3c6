/*
 * runtime.c - the consume loop's lifecycle (see runtime.h): its settings,
 * starting and stopping the threads of every input, housekeeping (the
 * keeper thread) and the progress ticker, statistics.
 */
#include "io/runtime_int.h"

#define RC(f) offsetof(vox_runtime_config, f)

const vox_cfg_var vox_runtime_vars[] = {
	{"VOX_BATCH", VOX_CFG_INT, "1024", 1, 4096, NULL, RC(batch),
	 "most messages committed in one transaction (a batch holds what has"
	 " arrived, up to this)"},
	{"VOX_BATCH_KB", VOX_CFG_INT, "8192", 64, 1048576, NULL, RC(batch_kb),
	 "most message bytes in one transaction, in KiB"},
	{"VOX_FETCH_WAIT_MS", VOX_CFG_INT, "500", 50, 30000, NULL,
	 RC(fetch_wait_ms), "how long an idle fetch waits for the first message"},
	{"VOX_ACK_WAIT_S", VOX_CFG_INT, "30", 1, 3600, NULL, RC(ack_wait_s),
	 "consumer AckWait: redelivery after this without an ack"},
	{"VOX_MAX_ACK_PENDING", VOX_CFG_INT, "4096", 1, 1000000, NULL,
	 RC(max_ack_pending), "consumer MaxAckPending"},
	{"VOX_MAX_DELIVER", VOX_CFG_INT, "-1", -1, 1000000, NULL,
	 RC(max_deliver), "consumer MaxDeliver: only -1 (unlimited) is accepted,"
	 " since JetStream drops a message after its last delivery"},
	{"VOX_STREAM_REPLICAS", VOX_CFG_INT, "1", 1, 5, NULL, RC(replicas),
	 "replicas of the streams (3 on a cluster)"},
	{"VOX_STREAM_MAX_AGE_H", VOX_CFG_INT, "168", 1, 87600, NULL,
	 RC(max_age_h), "EVENTS and ALERTS retention in hours"},
	{"VOX_DLQ_MAX_AGE_H", VOX_CFG_INT, "720", 1, 87600, NULL,
	 RC(dlq_max_age_h), "DLQ retention in hours"},
	{"VOX_STREAM_MAX_MB", VOX_CFG_INT, "-1", -1, 100000000, NULL,
	 RC(max_bytes_mb), "size limit of each stream in MiB (-1: none)"},
	{"VOX_DUPLICATE_WINDOW_S", VOX_CFG_INT, "120", 1, 86400, NULL,
	 RC(dup_window_s), "JetStream duplicate window"},
	{"VOX_DEFER_DELIVERIES", VOX_CFG_INT, "10", 1, 100000, NULL,
	 RC(defer_deliveries),
	 "deferrals of a message that waits for another (a refund before its"
	 " payment) before it is dead-lettered"},
	{"VOX_RETRY_MAX_MS", VOX_CFG_INT, "30000", 100, 3600000, NULL,
	 RC(retry_max_ms), "longest delay between retries"},
	{"VOX_OUTBOX_INTERVAL_MS", VOX_CFG_INT, "1000", 10, 600000, NULL,
	 RC(outbox_interval_ms), "how often unpublished outbox rows are healed"},
	{"VOX_OUTBOX_AGE_MS", VOX_CFG_INT, "2000", 0, 600000, NULL,
	 RC(outbox_age_ms), "outbox rows older than this are healed"},
	{"VOX_OUTBOX_KEEP_H", VOX_CFG_INT, "24", 1, 8760, NULL,
	 RC(outbox_keep_h), "published outbox rows are purged after this"},
	{"VOX_FAULT", VOX_CFG_ENUM, "none", 0, 0,
	 "none|after-commit|after-publish", RC(fault),
	 "fault injection for crash tests: exit at that point"},
};
const size_t vox_runtime_nvars = VOX_NELEM(vox_runtime_vars);

int64_t vox_rt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vox_rt_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Sleep up to ms, waking early when the runtime is stopping. */
void vox_rt_nap(vox_runtime *rt, int64_t ms)
{
	while (ms > 0 && !atomic_load(&rt->stop)) {
		int64_t step = ms > 50 ? 50 : ms;
		sleep_ms(step);
		ms -= step;
	}
}

/* The keeper's own connection (no statements to prepare). */
static bool keeper_ready(vox_runtime *rt)
{
	char err[256];
	if (rt->keeper_pg && PQstatus(rt->keeper_pg) == CONNECTION_OK)
		return true;
	PQfinish(rt->keeper_pg);
	rt->keeper_pg = NULL;
	return vox_pg_connect(&rt->keeper_pg, rt->pg_dsn, err, sizeof(err)) == VOX_OK;
}

/*
 * Housekeeping, every VOX_OUTBOX_INTERVAL_MS on a thread and connection of
 * its own, so that no writer waits for it: the marks that failed, the
 * outbox rows left unpublished (by a crash, a NATS outage or another
 * instance), the handler's tick (retention), the purge of old rows. Once
 * the writers are done, one last pass publishes every row left.
 */
static void *keeper_main(void *arg)
{
	vox_runtime *rt = arg;
	int64_t next_purge = 0;
	for (;;) {
		bool last = atomic_load(&rt->writers_done);
		if (keeper_ready(rt)) {
			vox_rt_heal_outbox(rt, rt->keeper_pg, last ? 0 : rt->cfg.outbox_age_ms);
			if (!last && rt->handler.tick)
				rt->handler.tick(rt->handler.ctx, rt->keeper_pg);
			if (!last && vox_rt_now_ms() >= next_purge) {
				vox_rt_purge_outbox(rt, rt->keeper_pg);
				next_purge = vox_rt_now_ms() + 60000;
			}
			if (!last)
				vox_rt_outbox_age(rt, rt->keeper_pg);
		}
		if (last)
			break;
		for (int64_t t = 0; t < rt->cfg.outbox_interval_ms &&
				    !atomic_load(&rt->writers_done); t += 20)
			sleep_ms(20);
	}
	return NULL;
}

/* Reports progress of the batches fetched and not yet settled (the one the
 * writer holds and the one queued behind it), every 200 ms. */
static void *ticker_main(void *arg)
{
	vox_runtime *rt = arg;
	while (!atomic_load(&rt->stop)) {
		sleep_ms(200);
		int64_t now = vox_rt_now_ms();
		for (size_t i = 0; i < rt->ninputs; i++) {
			input_rt *in = &rt->inputs[i];
			pthread_mutex_lock(&in->lock);
			vox_rt_report_progress(rt, in->inhand, now);
			vox_rt_report_progress(rt, in->queued, now);
			pthread_mutex_unlock(&in->lock);
		}
		/* every input's lock was free within the round */
		atomic_store(&rt->heartbeat_ms, now);
	}
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* Messages per committed transaction (VOX_BATCH is at most 4096). */
static const uint64_t batch_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 4096};

vox_status vox_runtime_new(vox_runtime **out, natsConnection *nc,
			   const char *actor, const char *pg_dsn,
			   const vox_runtime_config *cfg,
			   const vox_input *inputs, size_t ninputs,
			   const vox_handler *handler, char *err, size_t errlen)
{
	vox_runtime *rt = vox_calloc(1, sizeof(*rt));
	jsOptions jo;
	vox_status st = VOX_OK;

	rt->nc = nc;
	rt->actor = vox_strndup(actor, strlen(actor));
	rt->pg_dsn = vox_strndup(pg_dsn, strlen(pg_dsn));
	rt->cfg = *cfg;
	rt->handler = *handler;
	atomic_init(&rt->stop, false);
	vox_counter_set_init(&rt->dl_reasons);
	vox_counter_set_init(&rt->fault_classes);
	vox_hist_init(&rt->batch_size, batch_bounds, VOX_NELEM(batch_bounds), 1);
	vox_hist_init(&rt->apply_us, vox_hist_latency_us, vox_hist_latency_n, 1e-6);
	atomic_init(&rt->outbox_age_ms, -1);
	atomic_init(&rt->heartbeat_ms, vox_rt_now_ms());
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	jo.PublishAsync.MaxPending = 4096;
	if (natsConnection_JetStream(&rt->js, nc, &jo) != NATS_OK) {
		snprintf(err, errlen, "jetstream context: %s", nats_GetLastError(NULL));
		st = VOX_E_UNAVAILABLE;
		goto out;
	}
	pthread_mutex_init(&rt->outbox_lock, NULL);
	rt->inputs = vox_calloc(ninputs, sizeof(*rt->inputs));
	rt->ninputs = ninputs;
	for (size_t i = 0; i < ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		in->rt = rt;
		in->def = inputs[i];
		pthread_mutex_init(&in->lock, NULL);
		pthread_cond_init(&in->cond, NULL);
		pthread_mutex_init(&in->dlq_lock, NULL);
		jsOptions djo;
		jsOptions_Init(&djo);
		djo.Wait = 10000;
		djo.PublishAsync.MaxPending = 4096;
		djo.PublishAsync.AckHandler = vox_rt_dead_letter_acked;
		djo.PublishAsync.AckHandlerClosure = in;
		if (natsConnection_JetStream(&in->dlq_js, nc, &djo) != NATS_OK) {
			snprintf(err, errlen, "jetstream context: %s",
				 nats_GetLastError(NULL));
			st = VOX_E_UNAVAILABLE;
			goto out;
		}
		st = vox_rt_ensure_consumer(rt, in, err, errlen);
		if (st == VOX_OK)
			st = vox_rt_subscribe(rt, in, err, errlen);
		if (st != VOX_OK)
			goto out;
	}
out:
	if (st != VOX_OK) {
		vox_runtime_free(rt);
		return st;
	}
	*out = rt;
	return VOX_OK;
}

vox_status vox_runtime_start(vox_runtime *rt)
{
	for (size_t i = 0; i < rt->ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		if (pthread_create(&in->fetcher, NULL, vox_rt_fetcher_main, in) != 0)
			return VOX_E_INTERNAL;
		if (pthread_create(&in->writer, NULL, vox_rt_writer_main, in) != 0)
			return VOX_E_INTERNAL;
		in->threads = true;
	}
	if (pthread_create(&rt->ticker, NULL, ticker_main, rt) != 0)
		return VOX_E_INTERNAL;
	rt->ticking = true;
	if (pthread_create(&rt->keeper, NULL, keeper_main, rt) != 0)
		return VOX_E_INTERNAL;
	rt->keeping = true;
	rt->started = true;
	return VOX_OK;
}

void vox_runtime_stop(vox_runtime *rt)
{
	atomic_store(&rt->stop, true);
	for (size_t i = 0; i < rt->ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		if (!in->threads)
			continue;
		pthread_join(in->fetcher, NULL);
		pthread_join(in->writer, NULL);
		in->threads = false;
	}
	atomic_store(&rt->writers_done, true);
	if (rt->keeping) {
		pthread_join(rt->keeper, NULL);
		rt->keeping = false;
	}
	if (rt->ticking) {
		pthread_join(rt->ticker, NULL);
		rt->ticking = false;
	}
	/* the acks are buffered by libnats: send them before anything closes */
	natsConnection_FlushTimeout(rt->nc, 5000);
}

void vox_runtime_free(vox_runtime *rt)
{
	if (!rt)
		return;
	vox_runtime_stop(rt);
	for (size_t i = 0; i < rt->ninputs; i++) {
		input_rt *in = &rt->inputs[i];
		vox_pull_close(in->pull);
		vox_rt_batch_free(in->queued);
		if (in->pg)
			PQfinish(in->pg);
		jsCtx_Destroy(in->dlq_js);
		free(in->dlq_stored);
		pthread_mutex_destroy(&in->dlq_lock);
		pthread_mutex_destroy(&in->lock);
		pthread_cond_destroy(&in->cond);
	}
	free(rt->inputs);
	vox_counter_set_destroy(&rt->dl_reasons);
	vox_counter_set_destroy(&rt->fault_classes);
	PQfinish(rt->keeper_pg);
	free(rt->unmarked);
	pthread_mutex_destroy(&rt->outbox_lock);
	jsCtx_Destroy(rt->js);
	free(rt->actor);
	free(rt->pg_dsn);
	free(rt);
}

vox_status vox_runtime_config_check(const vox_runtime_config *cfg,
				    vox_buf *errors)
{
	vox_status st = VOX_OK;
	if (cfg->max_deliver != -1) {
		vox_buf_printf(errors, "VOX_MAX_DELIVER: must be -1 (unlimited):"
			       " with %" PRId64 " JetStream would drop a message"
			       " after its last delivery without a dead letter\n",
			       cfg->max_deliver);
		st = VOX_E_CONFIG;
	}
	/* the batch in the transaction and the one gathered meanwhile */
	if (cfg->max_ack_pending < 2 * cfg->batch) {
		vox_buf_printf(errors, "VOX_MAX_ACK_PENDING: %" PRId64 " is below"
			       " 2 x VOX_BATCH (%" PRId64 "): JetStream would stop"
			       " delivering while a batch is written\n",
			       cfg->max_ack_pending, 2 * cfg->batch);
		st = VOX_E_CONFIG;
	}
	return st;
}

void vox_runtime_stats(vox_runtime *rt, vox_buf *m)
{
	char state[6] = {0};
	uint64_t packed = atomic_load(&rt->last_sqlstate);
	for (int i = 0; i < 5; i++)
		state[i] = (char)((packed >> (8 * i)) & 0xff);
	vox_buf_printf(m,
		       "\"consume.received\":\"%" PRIuFAST64 "\","
		       "\"consume.batches\":\"%" PRIuFAST64 "\","
		       "\"consume.committed\":\"%" PRIuFAST64 "\","
		       "\"consume.acked\":\"%" PRIuFAST64 "\","
		       "\"consume.dead_letters\":\"%" PRIuFAST64 "\","
		       "\"consume.naked\":\"%" PRIuFAST64 "\","
		       "\"consume.redelivered\":\"%" PRIuFAST64 "\","
		       "\"consume.isolated\":\"%" PRIuFAST64 "\","
		       "\"consume.deferred\":\"%" PRIuFAST64 "\","
		       "\"consume.lag\":\"%" PRIuFAST64 "\","
		       "\"consume.faults\":\"%" PRIuFAST64 "\","
		       "\"consume.last_sqlstate\":\"%s\","
		       "\"outbox.published\":\"%" PRIuFAST64 "\","
		       "\"outbox.refused\":\"%" PRIuFAST64 "\"",
		       atomic_load(&rt->received), atomic_load(&rt->batches),
		       atomic_load(&rt->committed), atomic_load(&rt->acked),
		       atomic_load(&rt->dead_letters), atomic_load(&rt->naked),
		       atomic_load(&rt->redelivered), atomic_load(&rt->isolated),
		       atomic_load(&rt->deferred),
		       atomic_load(&rt->lag), atomic_load(&rt->faults), state,
		       atomic_load(&rt->outbox_published),
		       atomic_load(&rt->outbox_refused));
}

bool vox_runtime_alive(vox_runtime *rt, int64_t within_ms)
{
	return vox_rt_now_ms() - atomic_load(&rt->heartbeat_ms) <= within_ms;
}

vox_status vox_runtime_check_consumers(vox_runtime *rt, char *err,
				       size_t errlen)
{
	jsCtx *js = NULL;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 2000;
	if (natsConnection_JetStream(&js, rt->nc, &jo) != NATS_OK) {
		snprintf(err, errlen, "jetstream context: %s", nats_GetLastError(NULL));
		return VOX_E_UNAVAILABLE;
	}
	vox_status st = VOX_OK;
	for (size_t i = 0; i < rt->ninputs && st == VOX_OK; i++) {
		input_rt *in = &rt->inputs[i];
		jsConsumerInfo *ci = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetConsumerInfo(&ci, js, VOX_STREAM_EVENTS,
						  in->def.durable, NULL, &jerr);
		if (s == NATS_OK) {
			atomic_store(&in->lag, ci->NumPending);
			jsConsumerInfo_Destroy(ci);
			continue;
		}
		snprintf(err, errlen, "consumer %s: %s", in->def.durable,
			 jerr == JSConsumerNotFoundErr ? "not found"
						       : natsStatus_GetText(s));
		st = jerr == JSConsumerNotFoundErr ? VOX_E_NOT_FOUND
						   : vox_nats_status(s);
	}
	jsCtx_Destroy(js);
	return st;
}

/* One counter of the runtime: its name, help and value. */
static void counter(vox_buf *out, const char *name, const char *help,
		    uint64_t v)
{
	vox_prom_family(out, name, "counter", help);
	vox_prom_sample(out, name, "", v);
}

void vox_runtime_metrics(vox_runtime *rt, vox_buf *out)
{
	counter(out, "vox_consume_received_total",
		"messages fetched from JetStream", atomic_load(&rt->received));
	counter(out, "vox_consume_batches_total", "batches gathered",
		atomic_load(&rt->batches));
	counter(out, "vox_consume_transactions_total",
		"transactions committed", atomic_load(&rt->committed));
	counter(out, "vox_consume_acked_total",
		"messages acknowledged after their commit",
		atomic_load(&rt->acked));
	counter(out, "vox_consume_naked_total",
		"messages given back to wait (a fault, a deferral)",
		atomic_load(&rt->naked));
	counter(out, "vox_consume_redelivered_total",
		"deliveries after the first", atomic_load(&rt->redelivered));
	counter(out, "vox_consume_isolated_total",
		"messages applied one by one to find a bad one",
		atomic_load(&rt->isolated));
	counter(out, "vox_consume_deferred_total",
		"messages deferred until another arrives",
		atomic_load(&rt->deferred));
	vox_prom_family(out, "vox_dead_letters_total", "counter",
			"messages dead-lettered, by reason");
	vox_prom_counter_set(out, "vox_dead_letters_total", "", "reason",
			     &rt->dl_reasons);
	vox_prom_family(out, "vox_db_faults_total", "counter",
			"database faults that made messages wait, by SQLSTATE"
			" class (none: no SQLSTATE, e.g. a lost connection)");
	vox_prom_counter_set(out, "vox_db_faults_total", "", "class",
			     &rt->fault_classes);
	vox_prom_family(out, "vox_batch_size", "histogram",
			"messages per committed transaction");
	vox_prom_hist(out, "vox_batch_size", "", &rt->batch_size);
	vox_prom_family(out, "vox_batch_apply_seconds", "histogram",
			"time to apply and commit a batch");
	vox_prom_hist(out, "vox_batch_apply_seconds", "", &rt->apply_us);
	vox_prom_family(out, "vox_consumer_lag", "gauge",
			"messages of the input's consumer not yet delivered");
	for (size_t i = 0; i < rt->ninputs; i++) {
		vox_buf l;
		vox_buf_init(&l);
		vox_prom_label(&l, "input", rt->inputs[i].def.durable);
		vox_prom_sample(out, "vox_consumer_lag", l.data,
				atomic_load(&rt->inputs[i].lag));
		vox_buf_release(&l);
	}
	counter(out, "vox_outbox_published_total",
		"emitted messages JetStream stored",
		atomic_load(&rt->outbox_published));
	counter(out, "vox_outbox_refused_total",
		"emitted messages JetStream refused",
		atomic_load(&rt->outbox_refused));
	int64_t age = atomic_load(&rt->outbox_age_ms);
	if (age >= 0) {
		vox_prom_family(out, "vox_outbox_oldest_unpublished_seconds",
				"gauge",
				"age of the oldest outbox row not yet published"
				" (0: none)");
		vox_prom_sample_f(out, "vox_outbox_oldest_unpublished_seconds",
				  "", (double)age / 1000.0);
	}
}
