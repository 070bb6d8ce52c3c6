/*
 * runtime_write.c - the writer thread: one transaction per batch, the
 * handler, commit before ack, and every disposition (ack, nak, term) as
 * core/dispose.c decides it: faults wait, data errors are isolated.
 */
#include "io/runtime_int.h"

static void item_set(vox_item *it, vox_status st, const char *reason,
		     const char *field, bool defer, const char *fmt, va_list ap)
{
	char text[160];
	vsnprintf(text, sizeof(text), fmt, ap);
	vox_error_set(&it->err, st, reason, field, "%s", text);
	it->defer = defer;
}

void vox_item_reject(vox_item *it, vox_status st, const char *reason,
		     const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	item_set(it, st, reason, field, false, fmt, ap);
	va_end(ap);
}

void vox_item_defer(vox_item *it, vox_status st, const char *reason,
		    const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	item_set(it, st, reason, field, true, fmt, ap);
	va_end(ap);
}

/* ---- carrying out dispositions ------------------------------------------- */

static vox_dispose_cfg dispose_cfg(const vox_runtime *rt)
{
	return (vox_dispose_cfg){rt->cfg.retry_max_ms, rt->cfg.defer_deliveries};
}

/*
 * Every ack, nak and term goes through here, under the input's lock, and
 * marks the item settled: the progress ticker (ticker_main) reports only
 * items still unsettled, and never at the same time as a disposition.
 */

void vox_rt_settle_msg(input_rt *in, vox_item *it, how h, int64_t delay_ms)
{
	vox_runtime *rt = in->rt;
	pthread_mutex_lock(&in->lock);
	switch (h) {
	case HOW_ACK:
		if (vox_pull_settle(rt->nc, it->msg, VOX_ACK, 0) == NATS_OK)
			atomic_fetch_add(&rt->acked, 1);
		/* a lost ack means a redelivery, which idempotency absorbs */
		break;
	case HOW_NAK:
		(void)vox_pull_settle(rt->nc, it->msg, VOX_NAK, delay_ms);
		atomic_fetch_add(&rt->naked, 1);
		break;
	case HOW_TERM:
		(void)vox_pull_settle(rt->nc, it->msg, VOX_TERM, 0);
		break;
	}
	it->settled = true;
	pthread_mutex_unlock(&in->lock);
}

/* Nak an item that was not applied: its batch waits (or the loop stops). */
void vox_rt_nak_waiting(input_rt *in, vox_item *it)
{
	vox_dispose_cfg c = dispose_cfg(in->rt);
	vox_item_outcome o = {.verdict = VOX_VERDICT_NOT_RUN,
			      .delivered = it->delivered,
			      .stopping = atomic_load(&in->rt->stop)};
	vox_rt_settle_msg(in, it, HOW_NAK, vox_dispose(&c, &o).delay_ms);
}

/* Tell JetStream that the unsettled items of a batch are still being worked
 * on, when a third of AckWait has passed since the last report: neither a
 * long transaction, a long isolation round nor a slow dead letter lets
 * AckWait redeliver them meanwhile. Called with in->lock held. */
void vox_rt_report_progress(const vox_runtime *rt, batch *b, int64_t now)
{
	if (b == NULL || !vox_progress_due(now, b->progress_ms,
					   rt->cfg.ack_wait_s * 1000))
		return;
	for (size_t i = 0; i < b->n; i++)
		if (!b->items[i].settled)
			(void)vox_pull_settle(rt->nc, b->items[i].msg,
					      VOX_PROGRESS, 0);
	b->progress_ms = now;
}

/* ---- Postgres ---------------------------------------------------------- */

/* A connection with its statements prepared, or false with fail filled. */
static bool pg_ready(vox_runtime *rt, input_rt *in, vox_pg_error *fail)
{
	char err[sizeof(fail->message) - 16];
	memset(fail, 0, sizeof(*fail));
	if (in->pg && PQstatus(in->pg) == CONNECTION_OK && in->replan &&
	    rt->handler.prepare) {
		/* new plans for tables that have grown (vox_replan_due); a
		 * failure drops the connection, and the next one prepares */
		in->replan = false;
		PGresult *r = PQexec(in->pg, "DEALLOCATE ALL");
		vox_status st = vox_pg_status(in->pg, r);
		PQclear(r);
		if (st != VOX_OK ||
		    rt->handler.prepare(rt->handler.ctx, in->pg) != VOX_OK) {
			PQfinish(in->pg);
			in->pg = NULL;
		}
	}
	if (in->pg && PQstatus(in->pg) == CONNECTION_OK)
		return true;
	if (in->pg) {
		PQfinish(in->pg);
		in->pg = NULL;
	}
	PGconn *c = NULL;
	if (vox_pg_connect(&c, rt->pg_dsn, err, sizeof(err)) != VOX_OK) {
		fail->status = VOX_E_UNAVAILABLE;
		snprintf(fail->message, sizeof(fail->message), "%s", err);
		return false;
	}
	if (vox_pg_track_errors(c) != VOX_OK ||
	    (rt->handler.prepare && rt->handler.prepare(rt->handler.ctx, c) != VOX_OK)) {
		/* a missing column or table, a permission: the world's fault */
		vox_pg_first_error(fail, c);
		if (fail->status == VOX_OK)
			fail->status = VOX_E_UNAVAILABLE;
		memcpy(err, fail->message, sizeof(err) - 1);
		err[sizeof(err) - 1] = '\0';
		snprintf(fail->message, sizeof(fail->message), "prepare: %s", err);
		PQfinish(c);
		return false;
	}
	in->pg = c;
	return true;
}

/* Count the deferrals of the items the handler deferred, in the batch's
 * own transaction: a message put back while the database was at fault
 * was never deferred, so its window of VOX_DEFER_DELIVERIES is whole
 * afterwards. Rows of items resolved now are removed. */
static vox_status count_deferrals(vox_runtime *rt, input_rt *in, vox_item *arr,
				  size_t n)
{
	vox_pg_params put, drop;
	vox_status st = VOX_OK;
	PGresult *r = NULL;
	vox_pg_params_init(&put);
	vox_pg_params_init(&drop);
	vox_pg_params_text(&put, in->def.durable);
	vox_pg_array *seqs = vox_pg_params_array(&put, VOX_PG_INT8);
	vox_pg_array *ids = vox_pg_params_array(&put, VOX_PG_TEXT);
	vox_pg_params_text(&drop, in->def.durable);
	vox_pg_array *done = vox_pg_params_array(&drop, VOX_PG_INT8);
	for (size_t i = 0; i < n; i++) {
		if (vox_item_refused(&arr[i]) && arr[i].defer) {
			vox_pg_array_int(seqs, (int64_t)arr[i].stream_seq);
			vox_str id = vox_event_msg_id(&arr[i].ev);
			vox_pg_array_str(ids, id.ptr ? id.ptr : "", id.len);
		} else if (arr[i].delivered > 1) {
			vox_pg_array_int(done, (int64_t)arr[i].stream_seq);
		}
	}
	if (seqs->n) {
		st = vox_pg_run_sql(in->pg,
			"INSERT INTO vox_deferrals AS d (consumer, stream_seq, msg_id)"
			" SELECT $1, s, m FROM unnest($2::bigint[], $3::text[]) AS t(s, m)"
			" ON CONFLICT (consumer, stream_seq) DO UPDATE SET"
			"  deferrals = CASE WHEN d.msg_id = EXCLUDED.msg_id"
			"   THEN d.deferrals + 1 ELSE 1 END,"
			"  msg_id = EXCLUDED.msg_id, updated_at = now()"
			" RETURNING stream_seq, deferrals", &put, &r);
		for (int row = 0; st == VOX_OK && row < PQntuples(r); row++) {
			uint64_t seq = strtoull(PQgetvalue(r, row, 0), NULL, 10);
			int64_t count = strtoll(PQgetvalue(r, row, 1), NULL, 10);
			for (size_t i = 0; i < n; i++) {
				if (arr[i].stream_seq != seq || !arr[i].defer)
					continue;
				arr[i].deferrals = count;
				if (count >= rt->cfg.defer_deliveries)
					vox_pg_array_int(done, (int64_t)seq);
			}
		}
		PQclear(r);
	}
	if (st == VOX_OK && done->n)
		st = vox_pg_run_sql(in->pg,
				    "DELETE FROM vox_deferrals WHERE consumer = $1"
				    " AND stream_seq = ANY($2::bigint[])",
				    &drop, NULL);
	vox_pg_params_release(&put);
	vox_pg_params_release(&drop);
	return st;
}

/*
 * Run apply over items in one transaction. VOX_OK: it committed and the
 * items carry the handler's verdicts. Otherwise it was rolled back and
 * fail holds the first error: its status, the SQLSTATE the server sent
 * and the message.
 */
static vox_status run_tx(vox_runtime *rt, input_rt *in, vox_item **items,
			 size_t n, vox_tx *tx, vox_pg_error *fail)
{
	char why[256];
	tx->pg = in->pg;
	tx->actor = rt->actor;
	tx->rt = rt;
	memset(fail, 0, sizeof(*fail));
	vox_pg_reset_error(in->pg);
	/* apply sees a contiguous array: copy the pointers' targets in */
	vox_item *arr = vox_malloc(n * sizeof(*arr));
	for (size_t i = 0; i < n; i++)
		arr[i] = *items[i];
	vox_status st = vox_pg_exec(in->pg, "BEGIN", why, sizeof(why));
	if (st == VOX_OK)
		st = rt->handler.apply(rt->handler.ctx, tx, arr, n);
	if (st == VOX_OK)
		st = count_deferrals(rt, in, arr, n);
	if (st == VOX_OK)
		st = vox_pg_exec(in->pg, "COMMIT", why, sizeof(why));
	if (st == VOX_OK) {
		for (size_t i = 0; i < n; i++) {
			items[i]->err = arr[i].err;
			items[i]->defer = arr[i].defer;
			items[i]->deferrals = arr[i].deferrals;
		}
	} else {
		vox_pg_first_error(fail, in->pg);
		if (fail->status == VOX_OK) {
			/* the handler's own status, no database error */
			fail->status = st;
			snprintf(fail->message, sizeof(fail->message), "handler: %s",
				 vox_status_str(st));
		}
		if (PQstatus(in->pg) == CONNECTION_OK &&
		    PQtransactionStatus(in->pg) != PQTRANS_IDLE) {
			char ignored[64];
			vox_status rb = vox_pg_exec(in->pg, "ROLLBACK", ignored,
						    sizeof(ignored));
			VOX_UNUSED(rb);
		}
		vox_rt_tx_release(tx);
		if (PQstatus(in->pg) != CONNECTION_OK)
			fail->status = VOX_E_UNAVAILABLE;
	}
	free(arr);
	return st;
}

/* ---- the steps of a batch --------------------------------------------------- */

static uint64_t pack_sqlstate(const char *s)
{
	uint64_t v = 0;
	for (size_t i = 0; i < 5 && s[i]; i++)
		v |= (uint64_t)(unsigned char)s[i] << (8 * i);
	return v;
}

/* Whether a committed transaction applied anything: only that is evidence
 * that the database takes messages (one that only deferred or refused
 * items is not). */
static size_t applied_count(vox_item **items, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += !vox_item_refused(items[i]);
	return k;
}

/* A transaction committed on this input. */
static void committed(vox_runtime *rt, input_rt *in, size_t applied)
{
	atomic_fetch_add(&rt->committed, 1);
	if (applied == 0)
		return;
	in->commits++;
	if (vox_replan_due(in->applied, in->applied + applied))
		in->replan = true;
	in->applied += applied;
	vox_breaker_commit(&in->breaker);
	in->backoff_ms = 0;
	if (vox_fault_log_commit(&in->flog))
		vox_info("msg=\"database fault over\" input=%s waited_ms=%" PRId64,
			 in->def.durable, vox_rt_now_ms() - in->fault_since_ms);
}

/* A fault of the world: count it, log it once per outage, and pause the
 * writer (growing, capped) so that it does not spin. */
static void wait_fault(vox_runtime *rt, input_rt *in, const vox_pg_error *fail,
		       const char *what)
{
	char cls[3] = "";
	atomic_fetch_add(&rt->faults, 1);
	atomic_store(&rt->last_sqlstate, pack_sqlstate(fail->sqlstate));
	memcpy(cls, fail->sqlstate, 2); /* the class: its first two */
	cls[fail->sqlstate[0] && fail->sqlstate[1] ? 2 : 0] = 0;
	vox_counter_set_add(&rt->fault_classes, cls[0] ? cls : "none", 1);
	if (vox_fault_log_failure(&in->flog, fail->sqlstate)) {
		in->fault_since_ms = vox_rt_now_ms();
		vox_warn("msg=\"database fault, messages wait\" input=%s what=\"%s\""
			 " sqlstate=%s status=%s error=\"%s\"", in->def.durable, what,
			 fail->sqlstate[0] ? fail->sqlstate : "none",
			 vox_status_str(fail->status), fail->message);
	}
	in->backoff_ms = vox_backoff_next(in->backoff_ms, rt->cfg.retry_max_ms);
	vox_rt_nap(rt, in->backoff_ms);
}

/* After a commit: ack what was applied, nak what the handler deferred (while
 * its deferrals last), dead-letter what it refused, publish the outbox. */
static void settle(vox_runtime *rt, input_rt *in, vox_item **items, size_t n,
		   vox_tx *tx)
{
	vox_dispose_cfg c = dispose_cfg(rt);
	vox_item **dl = vox_malloc(n * sizeof(*dl));
	size_t ndl = 0;
	if (tx->nrows)
		vox_rt_fault(rt, "after-commit");
	for (size_t i = 0; i < n; i++) {
		vox_item *it = items[i];
		vox_item_outcome o = {
			.verdict = !vox_item_refused(it) ? VOX_VERDICT_APPLIED
				   : it->defer ? VOX_VERDICT_DEFERRED
					       : VOX_VERDICT_REFUSED,
			.delivered = it->delivered,
			.deferrals = it->deferrals,
			.stopping = atomic_load(&rt->stop),
		};
		vox_disposition d = vox_dispose(&c, &o);
		vox_suspects_forget(&in->suspects, it->stream_seq);
		switch (d.action) {
		case VOX_ACT_ACK:
			vox_rt_settle_msg(in, it, HOW_ACK, 0);
			break;
		case VOX_ACT_NAK:
			vox_info("msg=\"deferred\" input=%s stream_seq=%" PRIu64
				 " deferrals=%" PRId64 " reason=\"%s\"",
				 in->def.durable, it->stream_seq, it->deferrals,
				 it->err.message);
			atomic_fetch_add(&rt->deferred, 1);
			vox_rt_settle_msg(in, it, HOW_NAK, d.delay_ms);
			break;
		case VOX_ACT_DEAD_LETTER:
			dl[ndl++] = it;
			break;
		}
	}
	vox_rt_dead_letter_all(rt, in, dl, ndl);
	free(dl);
	vox_rt_flush_outbox(rt, in, tx);
	vox_rt_tx_release(tx);
}

/* The dead letter's status and code for a data error the database raised. */
static void blame(vox_item *it, const vox_pg_error *fail)
{
	if (fail->sqlstate[0] == '\0') {
		vox_item_reject(it, fail->status, vox_status_str(fail->status),
				NULL, "%s", fail->message);
		return;
	}
	bool integrity = strncmp(fail->sqlstate, "23", 2) == 0;
	vox_item_reject(it, VOX_E_INVALID,
			integrity ? "integrity_violation" : "data_exception",
			NULL, "database refused it: %s: %s", fail->sqlstate,
			fail->message);
}

/* One item in a transaction of its own, re-run on RETRY. */
static vox_step run_one(vox_runtime *rt, input_rt *in, vox_item *it,
			vox_tx *tx, vox_pg_error *fail)
{
	for (int reruns = 0;; reruns++) {
		vox_fault f = VOX_FAULT_WORLD;
		if (pg_ready(rt, in, fail))
			f = run_tx(rt, in, &it, 1, tx, fail) == VOX_OK
				? VOX_FAULT_NONE
				: vox_fault_of(fail->status, fail->sqlstate);
		vox_batch_outcome o = {f, reruns, true};
		vox_step step = vox_dispose_batch(&o);
		if (step != VOX_STEP_RERUN)
			return step;
	}
}

/*
 * One message (or more) poisons the batch: apply each in a transaction of
 * its own. A data error is held until the round ends; it is the message's
 * own only with evidence (vox_suspects): then it is dead-lettered, else it
 * waits. A fault of the world ends the round: the rest waits.
 */
static void isolate(vox_runtime *rt, input_rt *in, vox_item **items, size_t n,
		    const vox_pg_error *first)
{
	vox_dispose_cfg c = dispose_cfg(rt);
	vox_item **dl = vox_malloc(n * sizeof(*dl));
	vox_pg_error *held = vox_calloc(n, sizeof(*held));
	bool *failed = vox_calloc(n, sizeof(*failed));
	size_t ndl = 0, round_commits = 0, i;
	vox_pg_error fail;
	vox_tx tx = {0};

	atomic_fetch_add(&rt->isolated, 1);
	vox_warn("msg=\"batch failed, isolating\" input=%s size=%zu sqlstate=%s"
		 " error=\"%s\"", in->def.durable, n,
		 first->sqlstate[0] ? first->sqlstate : "none", first->message);
	for (i = 0; i < n; i++) {
		vox_step step = run_one(rt, in, items[i], &tx, &fail);
		if (step == VOX_STEP_SETTLE) {
			bool applied = !vox_item_refused(items[i]);
			committed(rt, in, applied ? 1 : 0);
			round_commits += applied;
			settle(rt, in, &items[i], 1, &tx);
		} else if (step == VOX_STEP_ISOLATE) {
			failed[i] = true;
			held[i] = fail;
		} else {
			break; /* a fault of the world: the rest waits */
		}
	}
	if (i < n) {
		for (size_t k = 0; k < n; k++)
			if (k >= i || failed[k])
				vox_rt_nak_waiting(in, items[k]);
		wait_fault(rt, in, &fail, "isolating");
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		if (!failed[k])
			continue;
		vox_item *it = items[k];
		vox_item_outcome o = {
			.verdict = VOX_VERDICT_FAILED,
			.fault = VOX_FAULT_DATA,
			.delivered = it->delivered,
			.evidence = vox_suspects_evidence(&in->suspects, it->stream_seq,
							  round_commits, in->commits),
			.stopping = atomic_load(&rt->stop),
		};
		vox_disposition d = vox_dispose(&c, &o);
		if (d.action == VOX_ACT_DEAD_LETTER) {
			vox_suspects_forget(&in->suspects, it->stream_seq);
			blame(it, &held[k]);
			dl[ndl++] = it;
		} else {
			vox_suspects_note(&in->suspects, it->stream_seq, in->commits);
			vox_rt_settle_msg(in, it, HOW_NAK, d.delay_ms);
		}
	}
	vox_rt_dead_letter_all(rt, in, dl, ndl);
	vox_breaker_round(&in->breaker, round_commits > 0, vox_rt_now_ms(),
			  rt->cfg.retry_max_ms);
	if (round_commits == 0) {
		/* every message failed the same way: not the messages' fault */
		for (size_t k = 0; k < n; k++)
			if (failed[k]) {
				wait_fault(rt, in, &held[k], "every message of the batch failed");
				break;
			}
	}
out:
	free(dl);
	free(held);
	free(failed);
}

static void process(vox_runtime *rt, input_rt *in, batch *b)
{
	vox_item **valid = vox_malloc((b->n ? b->n : 1) * sizeof(*valid));
	vox_item **dl = vox_malloc((b->n ? b->n : 1) * sizeof(*dl));
	size_t nvalid = 0, ndl = 0;
	vox_pg_error fail;
	vox_tx tx = {0};

	for (size_t i = 0; i < b->n; i++) {
		vox_item *it = &b->items[i];
		if (vox_item_refused(it))
			dl[ndl++] = it; /* undecodable: never reaches the database */
		else
			valid[nvalid++] = it;
	}
	vox_rt_dead_letter_all(rt, in, dl, ndl);
	if (nvalid == 0)
		goto out;

	for (int reruns = 0;; reruns++) {
		vox_fault f = VOX_FAULT_WORLD;
		int64_t t0 = vox_rt_now_us();
		if (pg_ready(rt, in, &fail))
			f = run_tx(rt, in, valid, nvalid, &tx, &fail) == VOX_OK
				? VOX_FAULT_NONE
				: vox_fault_of(fail.status, fail.sqlstate);
		vox_batch_outcome o = {f, reruns,
				       vox_breaker_may_isolate(&in->breaker, vox_rt_now_ms())};
		switch (vox_dispose_batch(&o)) {
		case VOX_STEP_SETTLE:
			vox_hist_observe(&rt->apply_us, (uint64_t)(vox_rt_now_us() - t0));
			vox_hist_observe(&rt->batch_size, nvalid);
			committed(rt, in, applied_count(valid, nvalid));
			settle(rt, in, valid, nvalid, &tx);
			goto out;
		case VOX_STEP_RERUN:
			continue;
		case VOX_STEP_WAIT:
			for (size_t i = 0; i < nvalid; i++)
				vox_rt_nak_waiting(in, valid[i]);
			wait_fault(rt, in, &fail, "batch not applied");
			goto out;
		case VOX_STEP_ISOLATE:
			isolate(rt, in, valid, nvalid, &fail);
			goto out;
		}
	}
out:
	free(valid);
	free(dl);
}

void *vox_rt_writer_main(void *arg)
{
	input_rt *in = arg;
	vox_runtime *rt = in->rt;
	for (;;) {
		pthread_mutex_lock(&in->lock);
		if (in->queued == NULL && !in->fetcher_done) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&in->cond, &in->lock, &ts);
		}
		/* all that has been gathered goes into one transaction */
		batch *b = in->queued;
		in->queued = NULL;
		in->inhand = b;
		in->writer_busy = b != NULL;
		bool done = b == NULL && in->fetcher_done;
		pthread_cond_broadcast(&in->cond);
		pthread_mutex_unlock(&in->lock);
		if (b) {
			process(rt, in, b);
			pthread_mutex_lock(&in->lock);
			in->inhand = NULL;
			in->writer_busy = false;
			pthread_cond_broadcast(&in->cond);
			pthread_mutex_unlock(&in->lock);
			vox_rt_batch_free(b);
		}
		if (done)
			break;
	}
	return NULL;
}
