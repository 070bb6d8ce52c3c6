/*
 * handler.c - how vox-leads applies a batch of lead.scored events, with a
 * fixed number of set-based statements whatever the batch size:
 *
 *   1. orgs      which orgs exist, and each one's hot threshold (the
 *                deployment's VOX_HOT_LEAD_THRESHOLD, or the org's
 *                org_feature_flags row 'hot_lead_threshold')
 *   2. create    contacts for events that name a phone and no contact_id
 *                (ON CONFLICT (org_id, phone) DO NOTHING)
 *   3. resolve   every event's contact: by contact_id in its org, else by
 *                (org, phone)
 *   4. scores    one update per contact with the batch's newest score; a
 *                stored newer score is never overwritten
 *   5. alerts    hot_lead_alerts rows, unique per (org, contact, call):
 *                only rows actually inserted are emitted, through the
 *                outbox, with the row id as alert_id and Nats-Msg-Id;
 *                a stored phone or name that the alert's field would
 *                refuse is left out of the row and the alert
 *
 * No processed_webhook_events row is written: a repeated score changes
 * nothing (newest wins) and an alert is unique by its key; nothing would
 * read the row.
 */
#include "core/common.h"

#include "actors/leads/leads.h"
#include "core/lead_rules.h"
#include "core/codec.h"
#include "io/log.h"
#include "io/pg.h"

typedef struct resolved {
	vox_uuid contact; /* "" when not found */
	vox_str phone;    /* the contact's phone (into a PGresult) */
	vox_str name;     /* the contact's first name */
	int64_t threshold;
	bool org_ok;
} resolved;

/* Every statement of a batch, prepared once per connection
 * (vox_leads_prepare): a batch parses and plans nothing. */
enum { S_THRESHOLDS, S_CONTACTS, S_RESOLVE, S_SCORES, S_ALERTS, S_COUNT };

static const vox_pg_stmt statements[S_COUNT] = {
	[S_THRESHOLDS] = {"vox_leads_thresholds",
		"SELECT o.id, COALESCE(CASE WHEN f.value #>> '{}' ~ '^[0-9]{1,3}$'"
		" THEN (f.value #>> '{}')::int END, $2::int)"
		" FROM organizations o LEFT JOIN org_feature_flags f"
		" ON f.org_id = o.id AND f.flag_name = 'hot_lead_threshold' AND f.enabled"
		" WHERE o.id = ANY($1::uuid[])"},
	[S_CONTACTS] = {"vox_leads_contacts",
		"INSERT INTO contacts (org_id, phone, first_name)"
		" SELECT DISTINCT ON (o, ph) o, ph, nm"
		" FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(o, ph, nm)"
		" ORDER BY o, ph"
		" ON CONFLICT (org_id, phone) DO NOTHING"},
	[S_RESOLVE] = {"vox_leads_resolve",
		"SELECT t.ord, k.id, k.phone, k.first_name"
		" FROM unnest($1::uuid[], $2::uuid[], $3::text[]) WITH ORDINALITY"
		"  AS t(o, cid, ph, ord)"
		/* by id (the org checked on the row found: OFFSET 0 keeps the
		 * planner from scanning the org's contacts for it), else by
		 * (org, phone); each by its own unique index */
		" LEFT JOIN LATERAL (SELECT u.id, u.phone, u.first_name FROM ("
		"  (SELECT 0 AS pri, c.id, c.phone, c.first_name, c.org_id"
		"    FROM contacts c WHERE c.id = t.cid OFFSET 0)"
		"  UNION ALL"
		"  (SELECT 1, c.id, c.phone, c.first_name, c.org_id"
		"    FROM contacts c WHERE c.org_id = t.o AND c.phone = t.ph)) u"
		"  WHERE u.org_id = t.o ORDER BY u.pri LIMIT 1) k ON true"
		" ORDER BY t.ord"},
	[S_SCORES] = {"vox_leads_scores",
		"UPDATE contacts c SET lead_score = t.s, lead_status = t.st,"
		" lead_scored_at = t.at, updated_at = now()"
		" FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[])"
		"  AS t(id, s, st, at)"
		" WHERE c.id = t.id"
		" AND (c.lead_scored_at IS NULL OR c.lead_scored_at <= t.at)"},
	[S_ALERTS] = {"vox_leads_alerts",
		"INSERT INTO hot_lead_alerts (org_id, contact_id, call_id, lead_name,"
		" lead_phone, lead_score, urgency_level, service_interest, summary,"
		" created_at)"
		" SELECT o, ct, cl, nm, ph, sc, ur, si, su, at"
		" FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[],"
		"  $5::text[], $6::int[], $7::text[], $8::text[], $9::text[],"
		"  $10::timestamptz[]) WITH ORDINALITY"
		"  AS t(o, ct, cl, nm, ph, sc, ur, si, su, at, ord)"
		/* one lock order for every instance; among duplicates the
		 * first in stream order is the one inserted */
		" ORDER BY o, ct, cl, ord"
		" ON CONFLICT ON CONSTRAINT hot_lead_alerts_org_contact_call_key DO NOTHING"
		" RETURNING id, contact_id, COALESCE(call_id::text, '')"},
};

vox_status vox_leads_prepare(void *ctx, PGconn *c)
{
	VOX_UNUSED(ctx);
	return vox_pg_prepare_all(c, statements, S_COUNT);
}

/* Run a statement with q (released here); the result, or NULL and *st. */
static PGresult *run(PGconn *c, int stmt, vox_pg_params *q, vox_status *st)
{
	PGresult *r = NULL;
	*st = vox_pg_run(c, statements[stmt].name, q, &r);
	vox_pg_params_release(q);
	return r;
}


static vox_status orgs_and_thresholds(PGconn *c, vox_item *items, size_t n,
				      int64_t def, resolved *res)
{
	vox_pg_params q;
	vox_status st;
	char defbuf[32];
	vox_pg_params_init(&q);
	vox_pg_array *orgs = vox_pg_params_array(&q, VOX_PG_UUID);
	for (size_t i = 0; i < n; i++)
		vox_pg_array_uuid(orgs, &items[i].ev.u.lead_scored.org_id);
	snprintf(defbuf, sizeof(defbuf), "%" PRId64, def);
	vox_pg_params_text(&q, defbuf);
	PGresult *r = run(c, S_THRESHOLDS, &q, &st);
	if (!r)
		return st;
	for (size_t i = 0; i < n; i++) {
		const char *org = items[i].ev.u.lead_scored.org_id.s;
		for (int k = 0; k < PQntuples(r); k++) {
			if (strcmp(PQgetvalue(r, k, 0), org) == 0) {
				res[i].org_ok = true;
				res[i].threshold = strtoll(PQgetvalue(r, k, 1), NULL, 10);
			}
		}
		if (!res[i].org_ok)
			vox_item_reject(&items[i], VOX_E_UNKNOWN_ORG,
					"unknown_org", "org_id",
					"no such organization");
	}
	PQclear(r);
	return VOX_OK;
}

static vox_status create_contacts(PGconn *c, const vox_item *items, size_t n)
{
	static const vox_pg_type types[] = {VOX_PG_UUID, VOX_PG_TEXT, VOX_PG_TEXT};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	vox_status st = VOX_OK;
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < n; i++) {
		const vox_lead_scored *e = &items[i].ev.u.lead_scored;
		if (vox_item_refused(&items[i]) || e->contact_id.s[0] || !e->phone.ptr)
			continue;
		vox_pg_array_uuid(a[0], &e->org_id);
		vox_pg_array_view(a[1], e->phone);
		if (e->lead_name.ptr)
			vox_pg_array_view(a[2], e->lead_name);
		else
			vox_pg_array_str(a[2], "", 0);
	}
	if (a[0]->n == 0) {
		vox_pg_params_release(&q);
		return VOX_OK;
	}
	PQclear(run(c, S_CONTACTS, &q, &st));
	return st;
}

/* Resolve every event's contact; the result keeps the views alive. */
static vox_status resolve_contacts(PGconn *c, vox_item *items, size_t n,
				   resolved *res, PGresult **keep)
{
	static const vox_pg_type types[] = {VOX_PG_UUID, VOX_PG_UUID, VOX_PG_TEXT};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	vox_status st;
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < n; i++) {
		const vox_lead_scored *e = &items[i].ev.u.lead_scored;
		vox_pg_array_uuid(a[0], &e->org_id);
		vox_pg_array_uuid(a[1], &e->contact_id); /* "" is NULL */
		vox_pg_array_view(a[2], e->phone);
	}
	PGresult *r = run(c, S_RESOLVE, &q, &st);
	if (!r)
		return st;
	for (int k = 0; k < PQntuples(r) && (size_t)k < n; k++) {
		if (PQgetisnull(r, k, 1)) {
			if (!vox_item_refused(&items[k]))
				vox_item_reject(&items[k], VOX_E_NOT_FOUND,
						"not_found", "contact_id",
						"no such contact in this org,"
						" and no phone to create one");
			continue;
		}
		snprintf(res[k].contact.s, sizeof(res[k].contact.s), "%s",
			 PQgetvalue(r, k, 1));
		res[k].phone = (vox_str){PQgetvalue(r, k, 2),
					 (size_t)PQgetlength(r, k, 2)};
		res[k].name = (vox_str){PQgetvalue(r, k, 3),
					(size_t)PQgetlength(r, k, 3)};
	}
	*keep = r;
	return VOX_OK;
}

/* One update per contact: the batch's newest score (stream order breaks
 * ties), applied only over an older stored score. */
static vox_status update_scores(PGconn *c, const vox_item *items, size_t n,
				const resolved *res)
{
	static const vox_pg_type types[] = {VOX_PG_UUID, VOX_PG_INT4, VOX_PG_TEXT,
					    VOX_PG_TIMESTAMPTZ};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	vox_status st = VOX_OK;
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < n; i++) {
		if (vox_item_refused(&items[i]))
			continue;
		const vox_lead_scored *e = &items[i].ev.u.lead_scored;
		bool beaten = false;
		for (size_t j = 0; j < n && !beaten; j++) {
			if (j == i || vox_item_refused(&items[j]) ||
			    strcmp(res[j].contact.s, res[i].contact.s) != 0)
				continue;
			const vox_time *tj = &items[j].ev.u.lead_scored.scored_at;
			/* j beats i if it is newer, or as new and later */
			beaten = j > i ? vox_leads_newer(tj, &e->scored_at)
				       : !vox_leads_newer(&e->scored_at, tj);
		}
		if (beaten)
			continue;
		const char *status = vox_leads_status_name(
			vox_leads_status(e->lead_score, e->lead_status));
		vox_pg_array_uuid(a[0], &res[i].contact);
		vox_pg_array_int(a[1], e->lead_score);
		vox_pg_array_str(a[2], status, strlen(status));
		vox_pg_array_time(a[3], &e->scored_at);
	}
	if (a[0]->n == 0) {
		vox_pg_params_release(&q);
		return VOX_OK;
	}
	PQclear(run(c, S_SCORES, &q, &st));
	return st;
}

/* The lead_name and lead_phone of an alert and of its row: the event's
 * name, else the contact's first name; the contact's phone. The event's
 * own values passed the decoder, but the contact's are whatever its row
 * holds, and a contact from before vox may have a phone that is not E.164
 * ("07700 900123") or a name over the field's 200 bytes. Such a value is
 * left out (ptr NULL): the alert and the lead go through without it,
 * instead of the alert's encoding failing and the lead with it. */
static void alert_contact_fields(const vox_lead_scored *e, const resolved *rs,
				 vox_str *name, vox_str *phone)
{
	*name = (vox_str){NULL, 0};
	*phone = (vox_str){NULL, 0};
	if (e->lead_name.ptr)
		*name = e->lead_name; /* stored as given, even empty */
	else if (rs->name.len &&
		 vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_name", rs->name))
		*name = rs->name;
	if (vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_phone", rs->phone))
		*phone = rs->phone;
}

/* The event an inserted alert row came from: the first hot event of the
 * batch for that (contact, call), as the INSERT keeps the first in stream
 * order. */
static const vox_item *alert_source(const vox_item *items, size_t n,
				    const resolved *res, const char *contact,
				    const char *call)
{
	for (size_t i = 0; i < n; i++) {
		const vox_lead_scored *e = &items[i].ev.u.lead_scored;
		if (!vox_item_refused(&items[i]) && e->lead_score >= res[i].threshold &&
		    strcmp(res[i].contact.s, contact) == 0 &&
		    strcmp(e->call_id.s, call) == 0)
			return &items[i];
	}
	return NULL;
}

static vox_status insert_alerts(vox_tx *tx, const vox_item *items, size_t n,
				const resolved *res)
{
	PGconn *c = vox_tx_pg(tx);
	static const vox_pg_type types[] = {
		VOX_PG_UUID, VOX_PG_UUID, VOX_PG_UUID, VOX_PG_TEXT, VOX_PG_TEXT,
		VOX_PG_INT4, VOX_PG_TEXT, VOX_PG_TEXT, VOX_PG_TEXT,
		VOX_PG_TIMESTAMPTZ,
	};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	vox_status st = VOX_OK;
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < n; i++) {
		const vox_lead_scored *e = &items[i].ev.u.lead_scored;
		if (vox_item_refused(&items[i]) || e->lead_score < res[i].threshold)
			continue;
		const char *urgency = vox_leads_urgency(e->lead_score) == VOX_URGENCY_HIGH
			? "high" : "medium";
		vox_str name, phone;
		alert_contact_fields(e, &res[i], &name, &phone);
		vox_pg_array_uuid(a[0], &e->org_id);
		vox_pg_array_uuid(a[1], &res[i].contact);
		vox_pg_array_uuid(a[2], &e->call_id); /* "" is NULL */
		/* the row holds what the alert carries */
		vox_pg_array_view(a[3], name);
		vox_pg_array_view(a[4], phone);
		vox_pg_array_int(a[5], e->lead_score);
		vox_pg_array_str(a[6], urgency, strlen(urgency));
		vox_pg_array_view(a[7], e->service_interest);
		vox_pg_array_view(a[8], e->summary);
		vox_pg_array_time(a[9], &e->scored_at);
	}
	if (a[0]->n == 0) {
		vox_pg_params_release(&q);
		return VOX_OK;
	}
	/* DO NOTHING also absorbs duplicates inside the batch; RETURNING
	 * gives only the rows this transaction created */
	PGresult *r = run(c, S_ALERTS, &q, &st);
	if (!r)
		return st;
	for (int k = 0; k < PQntuples(r) && st == VOX_OK; k++) {
		const vox_item *src = alert_source(items, n, res, PQgetvalue(r, k, 1),
						   PQgetvalue(r, k, 2));
		if (!src)
			continue;
		const vox_lead_scored *e = &src->ev.u.lead_scored;
		const resolved *rs = &res[src - items];
		vox_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.kind = VOX_ALERT_HOT_LEAD;
		vox_alert_hot_lead *h = &ev.u.hot_lead;
		snprintf(h->alert_id.s, sizeof(h->alert_id.s), "%s", PQgetvalue(r, k, 0));
		h->org_id = e->org_id;
		h->contact_id = rs->contact;
		h->call_id = e->call_id;
		alert_contact_fields(e, rs, &h->lead_name, &h->lead_phone);
		h->lead_score = e->lead_score;
		h->urgency_level = vox_leads_urgency(e->lead_score);
		h->service_interest = e->service_interest;
		h->summary = e->summary;
		h->created_at = e->scored_at;
		st = vox_tx_emit(tx, &ev);
	}
	PQclear(r);
	return st;
}

vox_status vox_leads_apply(void *ctx, vox_tx *tx, vox_item *items, size_t n)
{
	vox_leads_ctx *lc = ctx;
	PGconn *c = vox_tx_pg(tx);
	PGresult *keep = NULL;
	resolved *res = vox_calloc(n ? n : 1, sizeof(*res));
	vox_status st = orgs_and_thresholds(c, items, n, lc->cfg.hot_threshold, res);
	if (st == VOX_OK)
		st = create_contacts(c, items, n);
	if (st == VOX_OK)
		st = resolve_contacts(c, items, n, res, &keep);
	if (st == VOX_OK)
		st = update_scores(c, items, n, res);
	if (st == VOX_OK)
		st = insert_alerts(tx, items, n, res);
	PQclear(keep);
	free(res);
	return st;
}
