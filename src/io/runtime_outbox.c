/*
 * runtime_outbox.c - messages a batch emits: rows of vox_outbox in the
 * batch's transaction, published after the commit with their id as
 * Nats-Msg-Id, and healed or purged by the keeper.
 */
#include "io/runtime_int.h"

/* ---- the outbox -------------------------------------------------------- */

PGconn *vox_tx_pg(vox_tx *tx)
{
	return tx->pg;
}

void vox_rt_tx_release(vox_tx *tx)
{
	for (size_t i = 0; i < tx->nrows; i++) {
		free(tx->rows[i].msg_id);
		free(tx->rows[i].subject);
		free(tx->rows[i].payload);
	}
	free(tx->rows);
	tx->rows = NULL;
	tx->nrows = tx->caprows = 0;
}

vox_status vox_tx_emit(vox_tx *tx, const vox_event *ev)
{
	unsigned char *payload = NULL;
	size_t len = 0;
	vox_error err;
	char subject[256], msgid[160];
	vox_status st = vox_event_encode(&payload, &len, ev, &err);
	if (st != VOX_OK ||
	    !vox_subject_format(subject, sizeof(subject), ev->kind,
				vox_event_org(ev)->s)) {
		/* An alert never blocks its effect: the money or the lead it
		 * announces is applied, and this (a defect of vox, not of the
		 * event) is logged and counted. */
		vox_error("msg=\"alert not emitted: it breaks the contract\""
			  " kind=%s reason=\"%s\"", vox_event_kind_name(ev->kind),
			  st != VOX_OK ? err.message : "bad subject");
		atomic_fetch_add(&tx->rt->outbox_refused, 1);
		free(payload);
		return VOX_OK;
	}
	vox_str id = vox_event_msg_id(ev);
	snprintf(msgid, sizeof(msgid), "%.*s", (int)id.len, id.ptr);
	const char *params[4] = {msgid, subject, (const char *)payload, tx->actor};
	int lengths[4] = {0, 0, (int)len, 0};
	int formats[4] = {0, 0, 1, 0};
	PGresult *r = PQexecParams(tx->pg,
				   "INSERT INTO vox_outbox (msg_id, subject, payload, actor)"
				   " VALUES ($1, $2, $3, $4)"
				   " ON CONFLICT (msg_id) DO NOTHING RETURNING id",
				   4, NULL, params, lengths, formats, 0);
	st = vox_pg_status(tx->pg, r);
	if (st == VOX_OK && PQntuples(r) == 1) {
		if (tx->nrows == tx->caprows) {
			tx->caprows = tx->caprows ? tx->caprows * 2 : 8;
			tx->rows = vox_realloc(tx->rows, tx->caprows * sizeof(*tx->rows));
		}
		emitted *e = &tx->rows[tx->nrows++];
		e->msg_id = vox_strndup(msgid, strlen(msgid));
		e->subject = vox_strndup(subject, strlen(subject));
		e->payload = payload;
		e->len = len;
		e->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		payload = NULL;
	}
	PQclear(r);
	free(payload);
	return st;
}

/* Publish rows with their msg ids, each waiting for JetStream, until one
 * fails; the ids of those stored (or recognised as duplicates) go to
 * acked, which has room for n. Returns how many were stored. */
static size_t publish_rows(vox_runtime *rt, const emitted *rows, size_t n,
			   int64_t *acked)
{
	size_t ok = 0;
	for (size_t i = 0; i < n; i++) {
		natsMsg *m = NULL;
		jsPubAck *pa = NULL;
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = 5000;
		po.MsgId = rows[i].msg_id;
		natsStatus s = natsMsg_Create(&m, rows[i].subject, NULL,
					      (const char *)rows[i].payload,
					      (int)rows[i].len);
		/* the payload version of what vox emits (subjects/compatibility.md) */
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, VOX_HDR_SCHEMA, VOX_SCHEMA_VERSION);
		if (s == NATS_OK)
			s = js_PublishMsg(&pa, rt->js, m, &po, NULL);
		if (s == NATS_OK)
			acked[ok++] = rows[i].id;
		jsPubAck_Destroy(pa);
		natsMsg_Destroy(m);
		if (s != NATS_OK) {
			vox_warn("msg=\"outbox publish failed, will heal\""
				 " msg_id=%s error=\"%s\"", rows[i].msg_id,
				 natsStatus_GetText(s));
			break;
		}
	}
	atomic_fetch_add(&rt->outbox_published, ok);
	return ok;
}

void vox_rt_fault(vox_runtime *rt, const char *point)
{
	if (strcmp(rt->cfg.fault, point) == 0) {
		vox_warn("msg=\"fault injected, exiting\" point=%s", point);
		fflush(stderr);
		_exit(3);
	}
}

static void ids_array(vox_pg_array *a, const int64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vox_pg_array_int(a, ids[i]);
}

static vox_status mark_published(PGconn *pg, const int64_t *ids, size_t n)
{
	vox_pg_params p;
	vox_pg_params_init(&p);
	ids_array(vox_pg_params_array(&p, VOX_PG_INT8), ids, n);
	vox_status st = vox_pg_run_sql(pg,
				       "UPDATE vox_outbox SET published_at = now()"
				       " WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
				       &p, NULL);
	vox_pg_params_release(&p);
	return st;
}

/* Remember stored rows whose mark failed (the database went away between
 * the publish and the mark): the healer skips them, and the next
 * housekeeping marks them, so they are never published twice. */
static void keep_unmarked(vox_runtime *rt, const int64_t *ids, size_t n)
{
	pthread_mutex_lock(&rt->outbox_lock);
	for (size_t i = 0; i < n; i++) {
		if (rt->nunmarked == rt->capunmarked) {
			rt->capunmarked = rt->capunmarked ? rt->capunmarked * 2 : 64;
			rt->unmarked = vox_realloc(rt->unmarked,
						   rt->capunmarked * sizeof(int64_t));
		}
		rt->unmarked[rt->nunmarked++] = ids[i];
	}
	pthread_mutex_unlock(&rt->outbox_lock);
}

/* Mark rows JetStream stored; a failed mark is kept for a retry. */
static void mark_or_keep(vox_runtime *rt, PGconn *pg, const int64_t *ids,
			 size_t n)
{
	if (n == 0)
		return;
	if (!pg || mark_published(pg, ids, n) != VOX_OK) {
		vox_warn("msg=\"outbox mark failed, will mark again\" rows=%zu", n);
		keep_unmarked(rt, ids, n);
	}
}

/* Retry the marks that failed earlier. */
static void mark_again(vox_runtime *rt, PGconn *pg)
{
	pthread_mutex_lock(&rt->outbox_lock);
	size_t n = rt->nunmarked;
	int64_t *ids = n ? vox_malloc(n * sizeof(*ids)) : NULL;
	if (n)
		memcpy(ids, rt->unmarked, n * sizeof(*ids));
	rt->nunmarked = 0;
	pthread_mutex_unlock(&rt->outbox_lock);
	if (n) {
		mark_or_keep(rt, pg, ids, n);
		free(ids);
	}
}

/* Publish what this transaction emitted, after its commit. A failure
 * leaves the rows not stored to the healer. */
void vox_rt_flush_outbox(vox_runtime *rt, input_rt *in, vox_tx *tx)
{
	if (tx->nrows == 0)
		return;
	int64_t *acked = vox_malloc(tx->nrows * sizeof(*acked));
	size_t ok = publish_rows(rt, tx->rows, tx->nrows, acked);
	if (ok == tx->nrows)
		vox_rt_fault(rt, "after-publish");
	mark_or_keep(rt, in->pg, acked, ok);
	free(acked);
}

/* Publish unpublished rows older than age_ms (left by a crash or a NATS
 * outage), several instances at once thanks to SKIP LOCKED. Rows whose
 * publish was stored but whose mark is pending are left alone. */
void vox_rt_heal_outbox(vox_runtime *rt, PGconn *pg, int64_t age_ms)
{
	char msg[256], age[32];
	PGresult *r = NULL;
	emitted *rows = NULL;
	int64_t *acked = NULL;
	size_t n = 0;
	vox_pg_params q;
	vox_pg_params_init(&q);
	q.result_format = 1;
	vox_pg_params_text(&q, age);
	vox_pg_array *skip = vox_pg_params_array(&q, VOX_PG_INT8);
	mark_again(rt, pg);
	if (!pg || vox_pg_exec(pg, "BEGIN", msg, sizeof(msg)) != VOX_OK)
		goto done;
	pthread_mutex_lock(&rt->outbox_lock);
	ids_array(skip, rt->unmarked, rt->nunmarked);
	pthread_mutex_unlock(&rt->outbox_lock);
	snprintf(age, sizeof(age), "%" PRId64 " milliseconds", age_ms);
	if (vox_pg_run_sql(pg,
			   "SELECT id, msg_id, subject, payload FROM vox_outbox"
			   " WHERE published_at IS NULL"
			   " AND created_at < now() - $1::interval"
			   " AND id <> ALL($2::bigint[])"
			   " ORDER BY id LIMIT 256 FOR UPDATE SKIP LOCKED",
			   &q, &r) != VOX_OK)
		goto out;
	n = (size_t)PQntuples(r);
	if (n == 0)
		goto out;
	rows = vox_calloc(n, sizeof(*rows));
	acked = vox_malloc(n * sizeof(*acked));
	for (size_t i = 0; i < n; i++) {
		rows[i].id = (int64_t)vox_be_get(PQgetvalue(r, (int)i, 0), 8);
		rows[i].msg_id = vox_strndup(PQgetvalue(r, (int)i, 1),
					     (size_t)PQgetlength(r, (int)i, 1));
		rows[i].subject = vox_strndup(PQgetvalue(r, (int)i, 2),
					      (size_t)PQgetlength(r, (int)i, 2));
		rows[i].len = (size_t)PQgetlength(r, (int)i, 3);
		rows[i].payload = vox_malloc(rows[i].len);
		memcpy(rows[i].payload, PQgetvalue(r, (int)i, 3), rows[i].len);
	}
	size_t ok = publish_rows(rt, rows, n, acked);
	if (ok > 0 && mark_published(pg, acked, ok) == VOX_OK)
		vox_info("msg=\"outbox healed\" published=%zu", ok);
	else if (ok > 0)
		keep_unmarked(rt, acked, ok);
out:
	PQclear(r);
	for (size_t i = 0; i < n && rows; i++) {
		free(rows[i].msg_id);
		free(rows[i].subject);
		free(rows[i].payload);
	}
	free(rows);
	free(acked);
	if (vox_pg_exec(pg, "COMMIT", msg, sizeof(msg)) != VOX_OK)
		vox_debug("msg=\"outbox heal not committed\" error=\"%s\"", msg);
done:
	vox_pg_params_release(&q);
}

void vox_rt_purge_outbox(vox_runtime *rt, PGconn *pg)
{
	char keep[32];
	snprintf(keep, sizeof(keep), "%" PRId64 " hours", rt->cfg.outbox_keep_h);
	const char *params[1] = {keep};
	/* in chunks: no long transaction and no long lock on a large table */
	for (int round = 0; round < 100; round++) {
		PGresult *r = PQexecParams(pg,
			"DELETE FROM vox_outbox WHERE id IN (SELECT id FROM vox_outbox"
			" WHERE published_at < now() - $1::interval LIMIT 5000)",
			1, NULL, params, NULL, NULL, 0);
		bool more = vox_pg_status(pg, r) == VOX_OK && strtoll(PQcmdTuples(r), NULL, 10) == 5000;
		PQclear(r);
		if (!more)
			break;
	}
	/* deferral counts of messages long gone (a purged stream) */
	PGresult *r = PQexec(pg, "DELETE FROM vox_deferrals WHERE updated_at < now() - interval '30 days'");
	PQclear(r);
}

/* The oldest unpublished row's age, read through the partial index of
 * unpublished rows (ids grow with time): 0 when every row is published,
 * -1 (not exposed) when the database did not answer. */
void vox_rt_outbox_age(vox_runtime *rt, PGconn *pg)
{
	PGresult *r = PQexec(pg,
		"SELECT coalesce((SELECT (extract(epoch FROM now() - created_at)"
		" * 1000)::bigint FROM vox_outbox WHERE published_at IS NULL"
		" ORDER BY id LIMIT 1), 0)");
	int64_t ms = -1;
	if (vox_pg_status(pg, r) == VOX_OK && PQntuples(r) == 1) {
		ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		if (ms < 0) /* a row stamped by a clock ahead of this one */
			ms = 0;
	}
	PQclear(r);
	atomic_store(&rt->outbox_age_ms, ms);
}
