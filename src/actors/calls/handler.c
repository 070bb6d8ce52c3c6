/*
 * handler.c - how vox-calls writes a batch. Every batch costs the same
 * five statements at most, whatever its size, each fed whole columns as
 * text-format array parameters and unnested on the server:
 *
 *   1. check     which events name an unknown org, or a call that is
 *                stored under another org (those are refused)
 *   2. contacts  create missing contacts of inbound calls
 *                (ON CONFLICT (org_id, phone) DO NOTHING)
 *   3. calls     upsert one merged record per call; the merge rules of
 *                plan.h are repeated in ON CONFLICT DO UPDATE, and the
 *                contact is looked up there (a new statement, so it sees
 *                contacts another instance committed meanwhile)
 *   4. owners    whether a call of the batch now belongs to another org:
 *                one committed by another instance after step 1, whose
 *                row the upsert left alone; then the batch is run again
 *                and step 1 refuses the event
 *   5. touch     contacts.last_contacted_at = GREATEST(it, ended_at)
 *
 * No processed_webhook_events row is written: the merge on calls.id
 * makes a repeat a no-op, and nothing would read the row.
 *
 * Rows are written in a fixed order (calls by id, contacts by org and
 * phone, keys by text) so that two instances never deadlock each other.
 */
#include "core/common.h"

#include "actors/calls/handler.h"
#include "core/calls_plan.h"
#include "core/buf.h"
#include "core/codec.h"
#include "io/log.h"
#include "io/pg.h"

#define TERMINAL "('completed', 'failed')"
/* This update finishes the call: it was not terminal and now is. */
#define FIN "c.status NOT IN " TERMINAL " AND EXCLUDED.status IN " TERMINAL
/* An ended field: set by the call.ended that finishes the call only. */
#define ENDED_SET(col) \
	col " = CASE WHEN " FIN " THEN COALESCE(EXCLUDED." col ", c." col ")" \
	" ELSE c." col " END, "
/* A fill field: only ever set when still NULL. */
#define FILL_SET(col) col " = COALESCE(c." col ", EXCLUDED." col "), "
#define FILLS(col) " OR (c." col " IS NULL AND EXCLUDED." col " IS NOT NULL)"

static const char sql_check[] =
	"SELECT i.ord, o.id IS NULL"
	" FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY"
	"  AS i(org_id, call_id, ord)"
	" LEFT JOIN organizations o ON o.id = i.org_id"
	" WHERE o.id IS NULL OR EXISTS (SELECT 1 FROM calls c"
	"  WHERE c.id = i.call_id AND c.org_id <> i.org_id)";

static const char sql_contacts[] =
	"INSERT INTO contacts (org_id, phone, first_name, last_name)"
	" SELECT DISTINCT ON (i.org_id, i.phone)"
	"  i.org_id, i.phone, COALESCE(i.name, ''), ''"
	" FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[])"
	"  AS i(org_id, phone, name, contact_id, call_id)"
	/* a valid given contact, or one already linked, is used instead;
	 * both are read by primary key alone (see KEYED_ONLY) */
	" WHERE (SELECT k.org_id FROM contacts k WHERE k.id = i.contact_id)"
	"   IS DISTINCT FROM i.org_id"
	"  AND (SELECT c.contact_id FROM calls c WHERE c.id = i.call_id) IS NULL"
	" ORDER BY i.org_id, i.phone, i.name IS NULL"
	" ON CONFLICT (org_id, phone) DO NOTHING";

static const char sql_calls[] =
	"INSERT INTO calls AS c (id, org_id, contact_id, call_direction,"
	"  from_number, to_number, phone_number, vapi_call_id, caller_name,"
	"  status, duration_seconds, transcript, summary, recording_url,"
	"  sentiment_label, sentiment_score, sentiment_summary,"
	"  sentiment_urgency, ended_at, created_at, updated_at)"
	" SELECT i.id, i.org_id,"
	"  COALESCE((SELECT CASE WHEN k.org_id = i.org_id THEN k.id END"
	"     FROM contacts k WHERE k.id = i.contact_id),"
	"   (SELECT k.id FROM contacts k"
	"     WHERE k.org_id = i.org_id AND k.phone = i.phone)),"
	"  i.direction, i.from_number, i.to_number, i.phone, i.vapi_call_id,"
	"  i.caller_name, i.status, i.duration, i.transcript, i.summary,"
	"  i.recording_url, i.sentiment_label, i.sentiment_score::numeric,"
	"  i.sentiment_summary, i.sentiment_urgency, i.ended_at, i.created_at,"
	"  now()"
	" FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],"
	"  $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
	"  $11::int[], $12::text[], $13::text[], $14::text[], $15::text[],"
	"  $16::text[], $17::text[], $18::text[], $19::timestamptz[],"
	"  $20::timestamptz[])"
	"  AS i(id, org_id, contact_id, direction, from_number, to_number, phone,"
	"   vapi_call_id, caller_name, status, duration, transcript, summary,"
	"   recording_url, sentiment_label, sentiment_score, sentiment_summary,"
	"   sentiment_urgency, ended_at, created_at)"
	" ORDER BY i.id"
	" ON CONFLICT (id) DO UPDATE SET "
	FILL_SET("contact_id")
	FILL_SET("call_direction")
	FILL_SET("from_number")
	FILL_SET("to_number")
	FILL_SET("phone_number")
	FILL_SET("vapi_call_id")
	FILL_SET("caller_name")
	/* the first call.started corrects the estimate of a call.ended */
	"created_at = CASE WHEN c.call_direction IS NULL"
	"  AND EXCLUDED.call_direction IS NOT NULL"
	"  THEN EXCLUDED.created_at ELSE c.created_at END, "
	/* pending < in_progress < completed/failed (terminal) */
	"status = CASE WHEN c.status IN " TERMINAL " THEN c.status"
	"  WHEN EXCLUDED.status IN " TERMINAL " THEN EXCLUDED.status"
	"  ELSE 'in_progress' END, "
	"duration_seconds = CASE WHEN " FIN " THEN EXCLUDED.duration_seconds"
	"  ELSE c.duration_seconds END, "
	"ended_at = CASE WHEN " FIN " THEN EXCLUDED.ended_at"
	"  ELSE c.ended_at END, "
	ENDED_SET("transcript")
	ENDED_SET("summary")
	ENDED_SET("recording_url")
	ENDED_SET("sentiment_label")
	ENDED_SET("sentiment_score")
	ENDED_SET("sentiment_summary")
	ENDED_SET("sentiment_urgency")
	"updated_at = now()"
	/* never another tenant's row; and a repeat changes nothing, not even
	 * updated_at: update only when one of the rules above moves a value */
	" WHERE c.org_id = EXCLUDED.org_id AND ("
	"  (c.status NOT IN " TERMINAL " AND (EXCLUDED.status IN " TERMINAL
	"    OR c.status <> 'in_progress'))"
	FILLS("contact_id")
	FILLS("call_direction")
	FILLS("from_number")
	FILLS("to_number")
	FILLS("phone_number")
	FILLS("vapi_call_id")
	FILLS("caller_name")
	")";

/* A new statement, so it sees a row that another transaction committed
 * while the upsert waited for it (READ COMMITTED): the upsert's
 * "WHERE c.org_id = EXCLUDED.org_id" skipped it without a word. */
static const char sql_owners[] =
	"SELECT 1 FROM unnest($1::uuid[], $2::uuid[]) AS i(id, org_id)"
	" JOIN calls c ON c.id = i.id WHERE c.org_id <> i.org_id LIMIT 1";

/* KEYED_ONLY: rows named by the batch are found by primary key, and only
 * then filtered. Written as "c.id = ANY($1) AND c.contact_id IS NOT
 * NULL", the planner may scan idx_calls_contact_id for every call with a
 * contact when its statistics say there are almost none (measured: 5 s
 * per batch on 1M preloaded calls without contacts, after 20,000 with);
 * "k.id = $x AND k.org_id = $y" may scan an org's contacts by
 * contacts_org_id_phone_key. Here OFFSET 0 keeps the filter out of the
 * keyed scan, elsewhere the filter is on the keyed row's value. */
static const char sql_touch[] =
	"WITH b AS (SELECT c.contact_id, c.ended_at FROM calls c"
	"  WHERE c.id = ANY($1::uuid[]) OFFSET 0),"
	" t AS (SELECT b.contact_id AS id, max(b.ended_at) AS at FROM b"
	"  WHERE b.contact_id IS NOT NULL AND b.ended_at IS NOT NULL"
	"  GROUP BY b.contact_id),"
	" l AS (SELECT k.id, t.at FROM contacts k JOIN t ON t.id = k.id"
	"  WHERE k.last_contacted_at IS NULL OR k.last_contacted_at < t.at"
	"  ORDER BY k.id FOR NO KEY UPDATE OF k)"
	" UPDATE contacts k SET"
	"  last_contacted_at = GREATEST(k.last_contacted_at, l.at),"
	"  updated_at = now()"
	" FROM l WHERE k.id = l.id";

static const vox_pg_stmt statements[] = {
	{"vox_calls_check", sql_check},
	{"vox_calls_contacts", sql_contacts},
	{"vox_calls_upsert", sql_calls},
	{"vox_calls_owners", sql_owners},
	{"vox_calls_touch", sql_touch},
};

/* ---- columns of a record ------------------------------------------------ */

typedef enum col {
	COL_CALL_ID, COL_ORG_ID, COL_CONTACT_ID, COL_DIRECTION, COL_FROM,
	COL_TO, COL_PHONE, COL_VAPI_CALL_ID, COL_CALLER_NAME, COL_STATUS,
	COL_DURATION, COL_TRANSCRIPT, COL_SUMMARY, COL_RECORDING_URL,
	COL_SENTIMENT_LABEL, COL_SENTIMENT_SCORE, COL_SENTIMENT_SUMMARY,
	COL_SENTIMENT_URGENCY, COL_ENDED_AT, COL_CREATED_AT
} col;

/* The parameters of sql_calls, in order. */
static const col upsert_cols[] = {
	COL_CALL_ID, COL_ORG_ID, COL_CONTACT_ID, COL_DIRECTION, COL_FROM,
	COL_TO, COL_PHONE, COL_VAPI_CALL_ID, COL_CALLER_NAME, COL_STATUS,
	COL_DURATION, COL_TRANSCRIPT, COL_SUMMARY, COL_RECORDING_URL,
	COL_SENTIMENT_LABEL, COL_SENTIMENT_SCORE, COL_SENTIMENT_SUMMARY,
	COL_SENTIMENT_URGENCY, COL_ENDED_AT, COL_CREATED_AT,
};

/* The parameters of sql_contacts, in order. */
static const col contact_cols[] = {
	COL_ORG_ID, COL_PHONE, COL_CALLER_NAME, COL_CONTACT_ID, COL_CALL_ID,
};

static const char *const directions[] = {NULL, "inbound", "outbound"};
static const char *const statuses[] = {"in_progress", "completed", "failed"};
static const char *const sentiments[] = {NULL, "positive", "neutral",
					 "negative"};
static const char *const urgencies[] = {NULL, "low", "medium", "high",
					"critical"};

static const char *name_of(const char *const *names, size_t count, int v)
{
	return v >= 0 && (size_t)v < count ? names[v] : NULL;
}

static vox_str cstr(const char *s)
{
	return (vox_str){s, s ? strlen(s) : 0};
}

/* The shortest text that reads back as v (numeric keeps what it is
 * given; float8's cast to numeric would keep 15 digits). */
static vox_str score_str(double v, char scratch[64])
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(scratch, 64, "%.*g", prec, v);
		if (strtod(scratch, NULL) == v)
			break;
	}
	return cstr(scratch);
}

/* The element type of a column, as its statement casts it. */
static vox_pg_type col_type(col c)
{
	switch (c) {
	case COL_CALL_ID: case COL_ORG_ID: case COL_CONTACT_ID:
		return VOX_PG_UUID;
	case COL_DURATION:
		return VOX_PG_INT4;
	case COL_ENDED_AT: case COL_CREATED_AT:
		return VOX_PG_TIMESTAMPTZ;
	default:
		return VOX_PG_TEXT; /* sentiment_score too: cast to numeric */
	}
}

/* The text value of a text column of a record. */
static vox_str rec_text(const vox_calls_rec *r, col c, char scratch[64])
{
	const vox_call_ended *e = r->ended;
	vox_str none = {NULL, 0};
	switch (c) {
	case COL_DIRECTION:
		return cstr(name_of(directions, VOX_NELEM(directions),
				    (int)r->direction));
	case COL_FROM: return r->from_number;
	case COL_TO: return r->to_number;
	case COL_PHONE: return r->contact_phone;
	case COL_VAPI_CALL_ID: return r->vapi_call_id;
	case COL_CALLER_NAME: return r->caller_name;
	case COL_STATUS:
		if (e == NULL)
			return cstr(statuses[0]);
		return cstr(statuses[e->status == VOX_CALL_FAILED ? 2 : 1]);
	default: break;
	}
	if (e == NULL)
		return none; /* every other column comes from a call.ended */
	switch (c) {
	case COL_TRANSCRIPT: return e->transcript;
	case COL_SUMMARY: return e->summary;
	case COL_RECORDING_URL: return e->recording_url;
	case COL_SENTIMENT_SUMMARY: return e->sentiment_summary;
	case COL_SENTIMENT_LABEL:
		return cstr(name_of(sentiments, VOX_NELEM(sentiments),
				    (int)e->sentiment_label));
	case COL_SENTIMENT_URGENCY:
		return cstr(name_of(urgencies, VOX_NELEM(urgencies),
				    (int)e->sentiment_urgency));
	case COL_SENTIMENT_SCORE:
		if (!e->has_sentiment_score)
			return none;
		return score_str(e->sentiment_score, scratch);
	default: return none;
	}
}

/* Append the value of column c of record r to a. */
static void put_col(vox_pg_array *a, const vox_calls_rec *r, col c)
{
	char scratch[64];
	switch (c) {
	case COL_CALL_ID: vox_pg_array_uuid(a, &r->call_id); return;
	case COL_ORG_ID: vox_pg_array_uuid(a, &r->org_id); return;
	case COL_CONTACT_ID: vox_pg_array_uuid(a, &r->contact_id); return;
	case COL_CREATED_AT: vox_pg_array_time(a, &r->created_at); return;
	case COL_DURATION:
		if (r->ended)
			vox_pg_array_int(a, r->ended->duration_seconds);
		else
			vox_pg_array_null(a);
		return;
	case COL_ENDED_AT:
		if (r->ended)
			vox_pg_array_time(a, &r->ended->ended_at);
		else
			vox_pg_array_null(a);
		return;
	default:
		vox_pg_array_view(a, rec_text(r, c, scratch));
		return;
	}
}

/* Add the columns cols of the records recs[0..n) as parameters. */
static void add_recs(vox_pg_params *p, const vox_calls_rec *const *recs,
		     size_t n, const col *cols, size_t ncols)
{
	for (size_t c = 0; c < ncols; c++) {
		vox_pg_array *a = vox_pg_params_array(p, col_type(cols[c]));
		for (size_t i = 0; i < n; i++)
			put_col(a, recs[i], cols[c]);
	}
}

/* ---- the steps of a batch ------------------------------------------------ */

/* Step 1: refuse events of unknown orgs, or naming another org's call. */
static vox_status refuse_strangers(PGconn *pg, vox_item *items, size_t n)
{
	vox_pg_params p;
	PGresult *r = NULL;
	vox_pg_params_init(&p);
	vox_pg_array *orgs = vox_pg_params_array(&p, VOX_PG_UUID);
	vox_pg_array *calls = vox_pg_params_array(&p, VOX_PG_UUID);
	for (size_t i = 0; i < n; i++) {
		const vox_event *ev = &items[i].ev;
		vox_pg_array_uuid(orgs, vox_event_org(ev));
		vox_pg_array_uuid(calls, ev->kind == VOX_CALL_STARTED
						 ? &ev->u.call_started.call_id
						 : &ev->u.call_ended.call_id);
	}
	vox_status st = vox_pg_run(pg, "vox_calls_check", &p, &r);
	if (st != VOX_OK)
		goto out;
	for (int row = 0; row < PQntuples(r); row++) {
		unsigned long long ord = strtoull(PQgetvalue(r, row, 0), NULL, 10);
		if (ord < 1 || ord > n)
			continue;
		vox_item *it = &items[ord - 1];
		if (PQgetvalue(r, row, 1)[0] == 't')
			vox_item_reject(it, VOX_E_UNKNOWN_ORG, "unknown_org",
					"org_id", "no such organization");
		else
			vox_item_reject(it, VOX_E_CONFLICT, "conflict", "call_id",
					"belongs to another organization");
	}
out:
	PQclear(r);
	vox_pg_params_release(&p);
	return st;
}

/* Step 2: create the contacts of inbound calls that have none. */
static vox_status create_contacts(PGconn *pg, const vox_calls_plan *plan)
{
	vox_pg_params p;
	vox_status st = VOX_OK;
	const vox_calls_rec **recs = vox_malloc(plan->n * sizeof(*recs));
	size_t n = 0;
	vox_pg_params_init(&p);
	for (size_t i = 0; i < plan->n; i++)
		if (plan->recs[i].create_contact)
			recs[n++] = &plan->recs[i];
	if (n == 0)
		goto out;
	add_recs(&p, recs, n, contact_cols, VOX_NELEM(contact_cols));
	st = vox_pg_run(pg, "vox_calls_contacts", &p, NULL);
out:
	vox_pg_params_release(&p);
	free(recs);
	return st;
}

/* Steps 3 to 5: upsert the calls, check that each is still its org's,
 * then touch their contacts. */
static vox_status write_calls(PGconn *pg, const vox_calls_plan *plan)
{
	vox_pg_params p;
	PGresult *owners = NULL;
	const vox_calls_rec **recs = vox_malloc(plan->n * sizeof(*recs));
	for (size_t i = 0; i < plan->n; i++)
		recs[i] = &plan->recs[i];
	vox_pg_params_init(&p);
	add_recs(&p, recs, plan->n, upsert_cols, VOX_NELEM(upsert_cols));
	vox_status st = vox_pg_run(pg, "vox_calls_upsert", &p, NULL);
	if (st != VOX_OK)
		goto out;
	vox_pg_params_release(&p);
	/* Step 1 saw no other org's row for these calls, so one here was
	 * committed by another instance since, for another org: the same
	 * call_id from two tenants at once. VOX_E_RETRY rolls back and runs
	 * the batch again, and step 1 then refuses the event with a 409. */
	static const col keys[] = {COL_CALL_ID, COL_ORG_ID};
	add_recs(&p, recs, plan->n, keys, VOX_NELEM(keys));
	st = vox_pg_run(pg, "vox_calls_owners", &p, &owners);
	if (st != VOX_OK)
		goto out;
	if (PQntuples(owners) > 0) {
		vox_info("msg=\"call_id committed for another org meanwhile, running"
			 " the batch again\" calls=%zu", plan->n);
		st = VOX_E_RETRY;
		goto out;
	}
	vox_pg_params_release(&p);
	/* every call of the batch: a late call.started may just have linked
	 * the contact of a call that had already ended */
	static const col ids[] = {COL_CALL_ID};
	add_recs(&p, recs, plan->n, ids, 1);
	st = vox_pg_run(pg, "vox_calls_touch", &p, NULL);
out:
	PQclear(owners);
	vox_pg_params_release(&p);
	free(recs);
	return st;
}

/* ---- the handler ---------------------------------------------------------- */

vox_status vox_calls_prepare(void *ctx, PGconn *c)
{
	VOX_UNUSED(ctx);
	return vox_pg_prepare_all(c, statements, VOX_NELEM(statements));
}

vox_status vox_calls_apply(void *ctx, vox_tx *tx, vox_item *items, size_t n)
{
	PGconn *pg = vox_tx_pg(tx);
	vox_calls_plan plan = {0};
	const vox_event **evs = NULL;
	vox_status *verdict = NULL;
	vox_status st = VOX_OK;
	size_t refused = 0;
	VOX_UNUSED(ctx);
	if (n == 0)
		goto out;

	st = refuse_strangers(pg, items, n);
	if (st != VOX_OK)
		goto out;

	evs = vox_malloc(n * sizeof(*evs));
	verdict = vox_malloc(n * sizeof(*verdict));
	for (size_t i = 0; i < n; i++)
		evs[i] = vox_item_refused(&items[i]) ? NULL : &items[i].ev;
	vox_calls_plan_build(&plan, evs, n, verdict);
	for (size_t i = 0; i < n; i++) {
		if (verdict[i] == VOX_E_CONFLICT)
			vox_item_reject(&items[i], VOX_E_CONFLICT, "conflict",
					"call_id", "belongs to another organization");
		else if (verdict[i] != VOX_OK)
			vox_item_reject(&items[i], verdict[i],
					vox_status_str(verdict[i]), NULL,
					"not a call.started or call.ended event");
		if (vox_item_refused(&items[i]))
			refused++;
	}
	if (plan.n == 0)
		goto out;

	st = create_contacts(pg, &plan);
	if (st == VOX_OK)
		st = write_calls(pg, &plan);

	if (st == VOX_OK)
		vox_debug("msg=\"batch applied\" events=%zu calls=%zu refused=%zu",
			  n, plan.n, refused);
out:
	vox_calls_plan_release(&plan);
	free(evs);
	free(verdict);
	return st;
}
