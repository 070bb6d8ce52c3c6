/*
 * store.c - vox-billing's side of the database: read what a batch needs
 * under the org row locks, run the pure planner (core/billing.c), write the
 * plan with a fixed number of set-based statements, and answer
 * billing.authorize (its request read by core/authorize.c). Every
 * statement is parameterised.
 */
#include "actors/billing/billing.h"

#include "core/authorize.h"
#include "core/billing.h"
#include "core/codec.h"
#include "io/log.h"
#include "io/pg.h"
#include "vox/subjects.h"

#include <msgpack.h>
#include <time.h>

#define BILLING_CLEANUP_LOCK "7366923002"

/* ---- statements ----------------------------------------------------------- */

/* Every statement of the batch path, prepared once per connection
 * (vox_billing_prepare): a batch parses and plans nothing. */
enum {
	S_LOCK_ORGS,
	S_READ_CHARGES,
	S_READ_TOPUPS,
	S_READ_REFUNDS,
	S_LEDGER,
	S_CHARGES,
	S_WALLETS,
	S_PROCESSED,
	S_SETTLE,
	S_SETTLE_MARK,
	S_COUNT
};

static const vox_pg_stmt statements[S_COUNT] = {
	/* sorted: no deadlock between instances */
	[S_LOCK_ORGS] = {"vox_billing_lock_orgs",
		"SELECT id, wallet_balance_pence, debt_limit_pence, unbilled_pence,"
		" low_balance_pence, low_balance_alerted, debt_limit_alerted"
		" FROM organizations WHERE id = ANY($1::uuid[])"
		" ORDER BY id FOR NO KEY UPDATE"},
	[S_READ_CHARGES] = {"vox_billing_read_charges",
		"SELECT call_id, org_id, duration_seconds FROM call_charges"
		" WHERE call_id = ANY($1::uuid[])"},
	[S_READ_TOPUPS] = {"vox_billing_read_topups",
		"SELECT t.stripe_payment_intent_id, t.org_id, t.amount_pence,"
		" COALESCE((SELECT -sum(f.amount_pence) FROM credit_transactions f"
		"  WHERE f.type = 'refund'"
		"  AND f.stripe_payment_intent_id = t.stripe_payment_intent_id), 0)"
		" FROM credit_transactions t WHERE t.type = 'topup'"
		" AND t.stripe_payment_intent_id = ANY($1::text[])"},
	[S_READ_REFUNDS] = {"vox_billing_read_refunds",
		"SELECT stripe_refund_id, stripe_payment_intent_id, -amount_pence"
		" FROM credit_transactions WHERE type = 'refund'"
		" AND stripe_refund_id = ANY($1::text[])"},
	/* ORDER BY ord: seq (the chain order) follows the plan's order.
	 * The ledger and call_charges are plain inserts, yet not COPY: a
	 * batch's rows cost their index entries (nine on the ledger) either
	 * way, 666-row batches through COPY took as long as INSERT ...
	 * SELECT (0.83-0.91 s against 0.65-0.78 s for 40,000 rows), and
	 * COPY waits for one more round trip per table. */
	[S_LEDGER] = {"vox_billing_ledger",
		"INSERT INTO credit_transactions (org_id, amount_pence, type,"
		" balance_before_pence, balance_after_pence, shortfall_pence,"
		" event_id, description, call_id, stripe_payment_intent_id,"
		" stripe_refund_id, created_at)"
		" SELECT o, amt, typ, bef, aft, sf, eid, dsc, cid, pi, re, clock_timestamp()"
		" FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[],"
		"  $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::uuid[],"
		"  $10::text[], $11::text[], $12::int[])"
		"  AS t(o, amt, typ, bef, aft, sf, eid, dsc, cid, pi, re, ord)"
		" ORDER BY ord"},
	[S_CHARGES] = {"vox_billing_charges",
		"INSERT INTO call_charges (call_id, org_id, duration_seconds,"
		" rate_per_minute, charge_pence, deducted_pence, shortfall_pence, event_id)"
		" SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[],"
		"  $5::bigint[], $6::bigint[], $7::bigint[], $8::text[])"},
	[S_WALLETS] = {"vox_billing_wallets",
		"UPDATE organizations o SET wallet_balance_pence = t.b,"
		" unbilled_pence = t.u, low_balance_alerted = t.la,"
		" debt_limit_alerted = t.da, updated_at = now()"
		" FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bool[], $5::bool[])"
		"  AS t(id, b, u, la, da) WHERE o.id = t.id"},
	[S_PROCESSED] = {"vox_billing_processed",
		"INSERT INTO processed_webhook_events (event_id, event_type, org_id, event_data)"
		" SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::jsonb[])"
		" ON CONFLICT (event_id) DO NOTHING"},
	/* call.ended settles its call's hold, in the charge's transaction;
	 * with none, a settled row of 0 keeps a later hold from being
	 * placed for a call that has ended */
	[S_SETTLE] = {"vox_billing_settle",
		"UPDATE credit_holds h SET state = 'settled', ended_at = now()"
		" FROM unnest($1::uuid[], $2::uuid[]) AS t(o, c)"
		" WHERE h.org_id = t.o AND h.call_id = t.c AND h.state = 'active'"},
	[S_SETTLE_MARK] = {"vox_billing_settle_mark",
		"INSERT INTO credit_holds (org_id, call_id, amount_pence, fits, state,"
		" expires_at, ended_at)"
		" SELECT DISTINCT o, c, 0::bigint, true, 'settled', now(), now()"
		" FROM unnest($1::uuid[], $2::uuid[]) AS t(o, c)"
		" ON CONFLICT (org_id, call_id) DO NOTHING"},
};

vox_status vox_billing_prepare(void *ctx, PGconn *c)
{
	VOX_UNUSED(ctx);
	return vox_pg_prepare_all(c, statements, S_COUNT);
}

/* ---- reading ------------------------------------------------------------ */

/* Parse "t"/"f". */
static bool pg_bool(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col)[0] == 't';
}

static int64_t pg_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void pg_uuid(const PGresult *r, int row, int col, vox_uuid *out)
{
	snprintf(out->s, sizeof(out->s), "%s", PQgetvalue(r, row, col));
}

static vox_str pg_str(const PGresult *r, int row, int col)
{
	return (vox_str){PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col)};
}

/* Run a read of the batch's keys; NULL (and *st VOX_OK) when the key
 * column is empty: no statement for an empty array. */
static PGresult *query(PGconn *c, int stmt, vox_pg_params *p, vox_status *st)
{
	PGresult *r = NULL;
	*st = p->col[0].n ? vox_pg_run(c, statements[stmt].name, p, &r) : VOX_OK;
	vox_pg_params_release(p);
	return r;
}

/* ---- apply ------------------------------------------------------------- */

static const char *reason_for(const vox_event *ev, vox_billing_outcome o)
{
	switch (o) {
	case VOX_BILL_UNKNOWN_ORG:
		return "org_id: no such organization";
	case VOX_BILL_NOT_FOUND:
		return "stripe_payment_intent_id: no top-up of this org has this payment intent";
	case VOX_BILL_OVER_REFUND:
		return "amount_pence: the refunds of this payment intent would exceed it";
	case VOX_BILL_OTHER_ORG:
		if (ev->kind == VOX_CALL_ENDED)
			return "call_id: belongs to another organization";
		return "stripe_payment_intent_id: credited to another organization";
	case VOX_BILL_OVERFLOW:
		if (ev->kind == VOX_CALL_ENDED)
			return "unbilled_pence: this call's shortfall would take the"
			       " org's unbilled total past 9223372036854775807";
		if (ev->kind == VOX_PAYMENT_SUCCEEDED)
			return "amount_pence: the top-up would take balance_pence past"
			       " 9223372036854775807";
		return "amount_pence: the refund would take balance_pence below"
		       " -9223372036854775808";
	case VOX_BILL_CONFLICT:
		if (ev->kind == VOX_CALL_ENDED)
			return "call_id: already billed with another duration_seconds";
		if (ev->kind == VOX_PAYMENT_SUCCEEDED)
			return "stripe_payment_intent_id: already credited with another amount";
		return "stripe_refund_id: already applied with other fields";
	default:
		return "refused";
	}
}

static vox_status reject_status(vox_billing_outcome o)
{
	switch (o) {
	case VOX_BILL_UNKNOWN_ORG:
		return VOX_E_UNKNOWN_ORG;
	case VOX_BILL_NOT_FOUND:
		return VOX_E_NOT_FOUND;
	default:
		return VOX_E_CONFLICT;
	}
}

static const char *ledger_type_name(vox_ledger_type t)
{
	return t == VOX_LEDGER_TOPUP ? "topup" : t == VOX_LEDGER_REFUND ? "refund"
								       : "deduction";
}

static const vox_uuid *item_org(const vox_item *it)
{
	return vox_event_org(&it->ev);
}

typedef struct batch_read {
	vox_wallet *wallets;
	size_t nwallets;
	vox_known_call *calls;
	size_t ncalls;
	vox_known_topup *topups;
	size_t ntopups;
	vox_known_refund *refunds;
	size_t nrefunds;
	PGresult *results[4]; /* keep views alive */
} batch_read;

static void read_release(batch_read *b)
{
	free(b->wallets);
	free(b->calls);
	free(b->topups);
	free(b->refunds);
	for (size_t i = 0; i < VOX_NELEM(b->results); i++)
		PQclear(b->results[i]);
}

/* Lock the batch's orgs and read what the store knows about its keys.
 * FOR NO KEY UPDATE excludes another billing instance but not the
 * foreign-key checks (FOR KEY SHARE) of the calls and contacts other
 * actors write for the same orgs; sorted: no deadlock between instances. */
static vox_status read_batch(PGconn *c, const vox_item *items, size_t n,
			     batch_read *b)
{
	/* one parameter set per read: a key column each */
	vox_pg_params q[4];
	vox_pg_array *keys[4];
	static const vox_pg_type types[4] = {VOX_PG_UUID, VOX_PG_UUID,
					     VOX_PG_TEXT, VOX_PG_TEXT};
	vox_status st = VOX_OK;
	PGresult *r;
	for (size_t i = 0; i < 4; i++) {
		vox_pg_params_init(&q[i]);
		keys[i] = vox_pg_params_array(&q[i], types[i]);
	}
	vox_pg_array *orgs = keys[0], *calls = keys[1], *pis = keys[2],
		     *refunds = keys[3];
	for (size_t i = 0; i < n; i++) {
		const vox_event *ev = &items[i].ev;
		vox_pg_array_uuid(orgs, item_org(&items[i]));
		if (ev->kind == VOX_CALL_ENDED) {
			vox_pg_array_uuid(calls, &ev->u.call_ended.call_id);
		} else if (ev->kind == VOX_PAYMENT_SUCCEEDED) {
			vox_str pi = ev->u.payment_succeeded.stripe_payment_intent_id;
			vox_pg_array_str(pis, pi.ptr, pi.len);
		} else if (ev->kind == VOX_PAYMENT_REFUNDED) {
			vox_str pi = ev->u.payment_refunded.stripe_payment_intent_id;
			vox_str re = ev->u.payment_refunded.stripe_refund_id;
			vox_pg_array_str(pis, pi.ptr, pi.len);
			vox_pg_array_str(refunds, re.ptr, re.len);
		}
	}
	r = query(c, S_LOCK_ORGS, &q[0], &st);
	if (!r)
		goto out;
	b->results[0] = r;
	b->nwallets = (size_t)PQntuples(r);
	b->wallets = vox_calloc(b->nwallets ? b->nwallets : 1, sizeof(*b->wallets));
	for (size_t i = 0; i < b->nwallets; i++) {
		vox_wallet *w = &b->wallets[i];
		pg_uuid(r, (int)i, 0, &w->org_id);
		w->balance = pg_i64(r, (int)i, 1);
		w->debt_limit = pg_i64(r, (int)i, 2);
		w->unbilled = pg_i64(r, (int)i, 3);
		w->low_balance = pg_i64(r, (int)i, 4);
		w->low_alerted = pg_bool(r, (int)i, 5);
		w->debt_alerted = pg_bool(r, (int)i, 6);
	}

	r = query(c, S_READ_CHARGES, &q[1], &st);
	if (st != VOX_OK)
		goto out;
	b->results[1] = r;
	b->ncalls = r ? (size_t)PQntuples(r) : 0;
	b->calls = vox_calloc(b->ncalls ? b->ncalls : 1, sizeof(*b->calls));
	for (size_t i = 0; i < b->ncalls; i++) {
		pg_uuid(r, (int)i, 0, &b->calls[i].call_id);
		pg_uuid(r, (int)i, 1, &b->calls[i].org_id);
		b->calls[i].duration_seconds = pg_i64(r, (int)i, 2);
	}

	r = query(c, S_READ_TOPUPS, &q[2], &st);
	if (st != VOX_OK)
		goto out;
	b->results[2] = r;
	b->ntopups = r ? (size_t)PQntuples(r) : 0;
	b->topups = vox_calloc(b->ntopups ? b->ntopups : 1, sizeof(*b->topups));
	for (size_t i = 0; i < b->ntopups; i++) {
		b->topups[i].payment_intent = pg_str(r, (int)i, 0);
		pg_uuid(r, (int)i, 1, &b->topups[i].org_id);
		b->topups[i].amount = pg_i64(r, (int)i, 2);
		b->topups[i].refunded = pg_i64(r, (int)i, 3);
	}

	r = query(c, S_READ_REFUNDS, &q[3], &st);
	if (st != VOX_OK)
		goto out;
	b->results[3] = r;
	b->nrefunds = r ? (size_t)PQntuples(r) : 0;
	b->refunds = vox_calloc(b->nrefunds ? b->nrefunds : 1, sizeof(*b->refunds));
	for (size_t i = 0; i < b->nrefunds; i++) {
		b->refunds[i].refund_id = pg_str(r, (int)i, 0);
		b->refunds[i].payment_intent = pg_str(r, (int)i, 1);
		b->refunds[i].amount = pg_i64(r, (int)i, 2);
	}
out:
	for (size_t i = 0; i < 4; i++)
		vox_pg_params_release(&q[i]);
	return st;
}

/* Run a write. A unique violation (23505) here is a race, never the
 * message's fault: another instance committed a row with one of this
 * batch's keys (the same call_id for another org, the same payment
 * intent) after read_batch looked them up. VOX_E_RETRY makes the runtime
 * run the batch again at once; the read then sees that row and the
 * planner answers duplicate, conflict or another org's. */
static vox_status exec(PGconn *c, int stmt, vox_pg_params *p)
{
	vox_status st = vox_pg_run(c, statements[stmt].name, p, NULL);
	vox_pg_params_release(p);
	return st == VOX_E_CONFLICT ? VOX_E_RETRY : st; /* 23505 */
}

static vox_status write_ledger(PGconn *c, const vox_billing_plan *p,
			       const batch_read *b, const vox_item *items)
{
	static const vox_pg_type types[] = {
		VOX_PG_UUID, VOX_PG_INT8, VOX_PG_TEXT, VOX_PG_INT8, VOX_PG_INT8,
		VOX_PG_INT8, VOX_PG_TEXT, VOX_PG_TEXT, VOX_PG_UUID, VOX_PG_TEXT,
		VOX_PG_TEXT, VOX_PG_INT4,
	};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < p->nledger; i++) {
		const vox_ledger_row *row = &p->ledger[i];
		const vox_event *ev = &items[row->item].ev;
		char desc[160];
		vox_pg_array_uuid(a[0], &b->wallets[row->wallet].org_id);
		vox_pg_array_int(a[1], row->amount);
		const char *type = ledger_type_name(row->type);
		vox_pg_array_str(a[2], type, strlen(type));
		vox_pg_array_int(a[3], row->before);
		vox_pg_array_int(a[4], row->after);
		vox_pg_array_int(a[5], row->shortfall);
		vox_pg_array_view(a[6], vox_event_msg_id(ev));
		if (ev->kind == VOX_CALL_ENDED) {
			const vox_call_ended *e = &ev->u.call_ended;
			snprintf(desc, sizeof(desc), "call of %" PRId64 " s", e->duration_seconds);
			vox_pg_array_str(a[7], desc, strlen(desc));
			vox_pg_array_uuid(a[8], &e->call_id);
			vox_pg_array_null(a[9]);
			vox_pg_array_null(a[10]);
		} else if (ev->kind == VOX_PAYMENT_SUCCEEDED) {
			const vox_payment_succeeded *e = &ev->u.payment_succeeded;
			if (e->description.ptr)
				vox_pg_array_view(a[7], e->description);
			else
				vox_pg_array_str(a[7], "top-up", 6);
			vox_pg_array_null(a[8]);
			vox_pg_array_view(a[9], e->stripe_payment_intent_id);
			vox_pg_array_null(a[10]);
		} else {
			const vox_payment_refunded *e = &ev->u.payment_refunded;
			vox_pg_array_str(a[7], "refund", 6);
			vox_pg_array_null(a[8]);
			vox_pg_array_view(a[9], e->stripe_payment_intent_id);
			vox_pg_array_view(a[10], e->stripe_refund_id);
		}
		vox_pg_array_int(a[11], (int64_t)i);
	}
	return exec(c, S_LEDGER, &q);
}

static vox_status write_charges(PGconn *c, const vox_billing_plan *p,
				const batch_read *b, const vox_item *items,
				int64_t rate)
{
	static const vox_pg_type types[] = {
		VOX_PG_UUID, VOX_PG_UUID, VOX_PG_INT4, VOX_PG_INT4, VOX_PG_INT8,
		VOX_PG_INT8, VOX_PG_INT8, VOX_PG_TEXT,
	};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < p->ncharges; i++) {
		const vox_call_charge *ch = &p->charges[i];
		const vox_call_ended *e = &items[ch->item].ev.u.call_ended;
		vox_pg_array_uuid(a[0], &e->call_id);
		vox_pg_array_uuid(a[1], &b->wallets[ch->wallet].org_id);
		vox_pg_array_int(a[2], ch->duration_seconds);
		vox_pg_array_int(a[3], rate);
		vox_pg_array_int(a[4], ch->charge);
		vox_pg_array_int(a[5], ch->deducted);
		vox_pg_array_int(a[6], ch->shortfall);
		vox_pg_array_view(a[7], e->event_id);
	}
	return exec(c, S_CHARGES, &q);
}

/* The holds of the calls this batch ended (charged now or before). */
static vox_status settle_holds(PGconn *c, const vox_billing_plan *p,
			       const vox_item *items, size_t n)
{
	static const vox_pg_type types[] = {VOX_PG_UUID, VOX_PG_UUID};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	size_t k = 0;
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < n; i++) {
		vox_billing_outcome o = p->outcomes[i];
		if (items[i].ev.kind != VOX_CALL_ENDED ||
		    (o != VOX_BILL_APPLIED && o != VOX_BILL_DUPLICATE))
			continue;
		vox_pg_array_uuid(a[0], &items[i].ev.u.call_ended.org_id);
		vox_pg_array_uuid(a[1], &items[i].ev.u.call_ended.call_id);
		k++;
	}
	if (k == 0) {
		vox_pg_params_release(&q);
		return VOX_OK;
	}
	vox_status st = vox_pg_run(c, statements[S_SETTLE].name, &q, NULL);
	if (st == VOX_OK)
		st = vox_pg_run(c, statements[S_SETTLE_MARK].name, &q, NULL);
	vox_pg_params_release(&q);
	return st == VOX_E_CONFLICT ? VOX_E_RETRY : st;
}

static vox_status write_wallets(PGconn *c, const batch_read *b)
{
	static const vox_pg_type types[] = {
		VOX_PG_UUID, VOX_PG_INT8, VOX_PG_INT8, VOX_PG_BOOL, VOX_PG_BOOL,
	};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < b->nwallets; i++) {
		const vox_wallet *w = &b->wallets[i];
		if (!w->changed)
			continue;
		vox_pg_array_uuid(a[0], &w->org_id);
		vox_pg_array_int(a[1], w->balance);
		vox_pg_array_int(a[2], w->unbilled);
		vox_pg_array_bool(a[3], w->low_alerted);
		vox_pg_array_bool(a[4], w->debt_alerted);
	}
	if (a[0]->n == 0) {
		vox_pg_params_release(&q);
		return VOX_OK;
	}
	return exec(c, S_WALLETS, &q);
}

/* processed_webhook_events keeps the seed's meaning: a payment webhook
 * processed (its 24 h retention is vox_billing_tick's), one row per
 * payment event keyed by actor and event type (the replaced system keyed
 * by event id alone and skipped end-of-call events whose start had been
 * recorded). The permanent idempotency is the payment intent's and the
 * refund id's unique keys; a call's is its call_charges row, so call
 * events write none: nothing would read it. */
static vox_status write_processed(PGconn *c, const vox_item *items, size_t n,
				  const vox_billing_plan *p)
{
	static const vox_pg_type types[] = {
		VOX_PG_TEXT, VOX_PG_TEXT, VOX_PG_UUID, VOX_PG_JSONB,
	};
	vox_pg_params q;
	vox_pg_array *a[VOX_NELEM(types)];
	vox_pg_params_columns(&q, a, types, VOX_NELEM(types));
	for (size_t i = 0; i < n; i++) {
		if (p->outcomes[i] != VOX_BILL_APPLIED && p->outcomes[i] != VOX_BILL_DUPLICATE)
			continue;
		if (items[i].ev.kind == VOX_CALL_ENDED)
			continue; /* a call's charge is its own record */
		char key[200], json[64];
		const char *kind = vox_event_kind_name(items[i].ev.kind);
		vox_str eid = vox_event_msg_id(&items[i].ev);
		int k = snprintf(key, sizeof(key), "vox-billing:%s:%.*s", kind,
				 (int)eid.len, eid.ptr);
		vox_pg_array_str(a[0], key, (size_t)k);
		vox_pg_array_str(a[1], kind, strlen(kind));
		vox_pg_array_uuid(a[2], item_org(&items[i]));
		k = snprintf(json, sizeof(json), "{\"seq\":%" PRIu64 "}", items[i].stream_seq);
		vox_pg_array_str(a[3], json, (size_t)k);
	}
	if (a[0]->n == 0) {
		vox_pg_params_release(&q);
		return VOX_OK;
	}
	return exec(c, S_PROCESSED, &q);
}

/* The alerts of the plan, through the outbox. Every field comes from the
 * event that caused the alert (or the wallet), never from the clock, so
 * a retried batch emits the very same message under the same id. */
static vox_status emit_alerts(vox_tx *tx, const vox_billing_plan *p,
			      const batch_read *b, const vox_item *items)
{
	for (size_t i = 0; i < p->nalerts; i++) {
		const vox_billing_alert *a = &p->alerts[i];
		const vox_wallet *w = &b->wallets[a->wallet];
		const vox_event *cause = &items[a->item].ev;
		vox_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.kind = a->kind;
		if (cause->kind == VOX_CALL_ENDED) {
			const vox_call_ended *e = &cause->u.call_ended;
			vox_billing_alert_id(&ev.u.wallet.alert_id, a->kind, &w->org_id, e->call_id.s,
					     36);
			ev.u.wallet.call_id = e->call_id;
			ev.u.wallet.created_at = e->ended_at;
		} else {
			/* a refund: no call; the refund id is the key */
			const vox_payment_refunded *e = &cause->u.payment_refunded;
			char key[300];
			int k = snprintf(key, sizeof(key), "refund:%.*s",
					 (int)e->stripe_refund_id.len,
					 e->stripe_refund_id.ptr);
			vox_billing_alert_id(&ev.u.wallet.alert_id, a->kind, &w->org_id, key,
					     (size_t)k);
			ev.u.wallet.created_at = e->occurred_at;
		}
		ev.u.wallet.org_id = w->org_id;
		ev.u.wallet.balance_pence = a->balance;
		ev.u.wallet.debt_limit_pence = w->debt_limit;
		ev.u.wallet.amount_pence = a->amount;
		vox_status st = vox_tx_emit(tx, &ev);
		if (st != VOX_OK)
			return st;
	}
	return VOX_OK;
}

vox_status vox_billing_apply(void *ctx, vox_tx *tx, vox_item *items, size_t n)
{
	vox_billing_ctx *bc = ctx;
	PGconn *c = vox_tx_pg(tx);
	batch_read b;
	vox_billing_plan p;
	const vox_event **events = vox_calloc(n ? n : 1, sizeof(*events));
	memset(&b, 0, sizeof(b));
	memset(&p, 0, sizeof(p));

	vox_status st = read_batch(c, items, n, &b);
	if (st != VOX_OK)
		goto out;
	for (size_t i = 0; i < n; i++)
		events[i] = &items[i].ev;
	vox_billing_input in = {events, n, b.wallets, b.nwallets, b.calls, b.ncalls,
				b.topups, b.ntopups, b.refunds, b.nrefunds,
				bc->cfg.rate_per_minute};
	vox_billing_plan_batch(&p, &in);
	for (size_t i = 0; i < n; i++) {
		vox_billing_outcome o = p.outcomes[i];
		if (o == VOX_BILL_APPLIED || o == VOX_BILL_DUPLICATE)
			continue;
		/* a refund may arrive before its payment (two instances, a
		 * redelivery, the payment provider's own order): wait for it */
		if (o == VOX_BILL_NOT_FOUND)
			vox_item_defer(&items[i], reject_status(o),
				       vox_billing_outcome_code(o), NULL, "%s",
				       reason_for(&items[i].ev, o));
		else
			vox_item_reject(&items[i], reject_status(o),
					vox_billing_outcome_code(o), NULL, "%s",
					reason_for(&items[i].ev, o));
	}
	if (p.nledger && (st = write_ledger(c, &p, &b, items)) != VOX_OK)
		goto out;
	if (p.ncharges &&
	    (st = write_charges(c, &p, &b, items, bc->cfg.rate_per_minute)) != VOX_OK)
		goto out;
	if ((st = write_wallets(c, &b)) != VOX_OK)
		goto out;
	if ((st = write_processed(c, items, n, &p)) != VOX_OK)
		goto out;
	if ((st = settle_holds(c, &p, items, n)) != VOX_OK)
		goto out;
	st = emit_alerts(tx, &p, &b, items);
out:
	vox_billing_plan_release(&p);
	read_release(&b);
	free(events);
	return st;
}

/* ---- retention ----------------------------------------------------------- */

/* Holds whose call never ended (the bridge crashed, the call.ended was
 * lost upstream) stop counting after VOX_HOLD_EXPIRY_S: each once, by
 * whichever instance's keeper gets there first (the state guard). */
static void expire_holds(PGconn *c)
{
	PGresult *r = PQexec(c,
		"UPDATE credit_holds SET state = 'expired', ended_at = now()"
		" WHERE (org_id, call_id) IN (SELECT org_id, call_id FROM credit_holds"
		"  WHERE state = 'active' AND expires_at <= now() LIMIT 1000"
		"  FOR UPDATE SKIP LOCKED)");
	if (vox_pg_status(c, r) == VOX_OK && strcmp(PQcmdTuples(r), "0") != 0)
		vox_info("msg=\"holds expired\" count=%s", PQcmdTuples(r));
	PQclear(r);
}

void vox_billing_tick(void *ctx, PGconn *c)
{
	vox_billing_ctx *bc = ctx;
	int64_t now = (int64_t)time(NULL);
	expire_holds(c);
	if (now < bc->next_cleanup)
		return;
	bc->next_cleanup = now + bc->cfg.cleanup_interval_s;
	/* one instance at a time; the others skip this round */
	PGresult *r = PQexec(c, "SELECT pg_try_advisory_lock(" BILLING_CLEANUP_LOCK ")");
	bool locked = vox_pg_status(c, r) == VOX_OK && pg_bool(r, 0, 0);
	PQclear(r);
	if (!locked)
		return;
	char hours[32];
	snprintf(hours, sizeof(hours), "%" PRId64 " hours", bc->cfg.retention_h);
	const char *params[1] = {hours};
	r = PQexecParams(c, "SELECT cleanup_old_webhook_events($1::interval)", 1,
			 NULL, params, NULL, NULL, 0);
	if (vox_pg_status(c, r) == VOX_OK && PQntuples(r) == 1)
		vox_info("msg=\"webhook events cleaned\" deleted=%s retention_h=%" PRId64,
			 PQgetvalue(r, 0, 0), bc->cfg.retention_h);
	PQclear(r);
	r = PQexec(c, "SELECT pg_advisory_unlock(" BILLING_CLEANUP_LOCK ")");
	PQclear(r);
}

/* ---- billing.authorize --------------------------------------------------- */

/* What billing.authorize answers. */
typedef struct authz {
	bool found;        /* the org exists */
	bool allowed;
	int64_t available; /* balance + debt limit - held, saturating */
	int64_t held;      /* active holds, the call's own included */
	const char *hold;  /* with hold: placed | active | settled | expired | refused */
	const char *reason;
} authz;

/*
 * One answer in one transaction. Without hold, one read: the org, the sum
 * of its active holds. With hold, the same read locks the org row (FOR NO
 * KEY UPDATE, as a batch of charges does) and reads this call's hold, so
 * concurrent requests for one org are answered one after the other, each
 * seeing the holds of those before it. A hold is placed only when the
 * call is allowed, exactly once per (org, call_id) (the primary key); a
 * second request for the same call gets the first one's hold back.
 */
static vox_status authorize_tx(authz *out, PGconn *c, const vox_billing_ctx *bc,
			       const char *org, const vox_authorize_req *q)
{
	char msg[256], amount[24], expiry[32], fits[8];
	const char *p[5] = {org, q->call_id.s, amount, expiry, fits};
	vox_status st = VOX_OK;
	PGresult *r = NULL;
	memset(out, 0, sizeof(*out));
	if (q->hold && (st = vox_pg_exec(c, "BEGIN", msg, sizeof(msg))) != VOX_OK)
		return st;
	r = PQexecParams(c, q->hold
		? "SELECT o.wallet_balance_pence, o.debt_limit_pence,"
		  " (SELECT COALESCE(sum(h.amount_pence), 0)::int8 FROM credit_holds h"
		  "  WHERE h.org_id = o.id AND h.state = 'active'),"
		  " (SELECT h.state FROM credit_holds h WHERE h.org_id = o.id"
		  "  AND h.call_id = $2::uuid)"
		  " FROM organizations o WHERE o.id = $1::uuid FOR NO KEY UPDATE OF o"
		: "SELECT o.wallet_balance_pence, o.debt_limit_pence,"
		  " (SELECT COALESCE(sum(h.amount_pence), 0)::int8 FROM credit_holds h"
		  "  WHERE h.org_id = o.id AND h.state = 'active')"
		  " FROM organizations o WHERE o.id = $1::uuid",
		q->hold ? 2 : 1, NULL, p, NULL, NULL, 0);
	if ((st = vox_pg_status(c, r)) != VOX_OK || PQntuples(r) != 1)
		goto done;
	out->found = true;
	int64_t balance = pg_i64(r, 0, 0), debt = pg_i64(r, 0, 1);
	out->held = pg_i64(r, 0, 2);
	out->available = vox_billing_spendable(balance, debt, out->held);
	out->allowed = out->available >= bc->cfg.rate_per_minute;
	if (!q->hold)
		goto done;
	if (!PQgetisnull(r, 0, 3)) {
		/* asked before: the answer of then, whatever is left now */
		const char *state = PQgetvalue(r, 0, 3);
		out->hold = strcmp(state, "active") == 0 ? "active"
			    : strcmp(state, "settled") == 0 ? "settled" : "expired";
		out->allowed = strcmp(state, "active") == 0;
		goto done;
	}
	PQclear(r);
	r = NULL;
	if (!out->allowed) {
		out->hold = "refused";
		goto done;
	}
	int64_t want = bc->cfg.hold_minutes * bc->cfg.rate_per_minute;
	snprintf(amount, sizeof(amount), "%" PRId64, want);
	snprintf(expiry, sizeof(expiry), "%" PRId64 " seconds", bc->cfg.hold_expiry_s);
	snprintf(fits, sizeof(fits), "%s", out->available >= want ? "true" : "false");
	r = PQexecParams(c, "INSERT INTO credit_holds (org_id, call_id, amount_pence,"
			 " fits, expires_at) VALUES ($1::uuid, $2::uuid, $3::int8,"
			 " $5::bool, now() + $4::interval)",
			 5, NULL, p, NULL, NULL, 0);
	if ((st = vox_pg_status(c, r)) != VOX_OK)
		goto done;
	out->hold = "placed";
	out->held += want;
	out->available = vox_billing_spendable(balance, debt, out->held);
done:
	PQclear(r);
	if (q->hold) {
		vox_status end = vox_pg_exec(c, st == VOX_OK ? "COMMIT" : "ROLLBACK",
					     msg, sizeof(msg));
		if (st == VOX_OK)
			st = end;
	}
	if (!out->reason)
		out->reason = out->hold && strcmp(out->hold, "settled") == 0
				      ? "the call has ended"
			      : out->hold && strcmp(out->hold, "expired") == 0
				      ? "the call's hold has expired"
			      : out->allowed ? "ok"
					     : "insufficient funds: less than one minute"
					       " can be paid beyond the credit held";
	return st == VOX_E_CONFLICT ? VOX_E_RETRY : st;
}

static void pack_key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str(pk, strlen(k));
	msgpack_pack_str_body(pk, k, strlen(k));
}

void vox_billing_authorize(vox_request *req, void *ctx)
{
	vox_billing_ctx *bc = ctx;
	size_t len;
	const char *data = vox_request_data(req, &len);
	char orgbuf[37];

	vox_error err;
	if (!vox_request_org(req, orgbuf)) {
		vox_request_fail(req, vox_request_bad_org(&err));
		return;
	}
	vox_authorize_req areq;
	if (vox_authorize_parse(&areq, data, len, &err) != VOX_OK) {
		vox_request_fail(req, &err); /* 413 or 400 */
		return;
	}

	char why[256];
	PGconn *c = NULL;
	vox_status st = vox_pgpool_get(&c, bc->pool, why, sizeof(why));
	if (st != VOX_OK) {
		vox_request_fail(req, vox_request_db_error(&err, st));
		return;
	}
	authz a;
	st = authorize_tx(&a, c, bc, orgbuf, &areq);
	vox_pgpool_put(bc->pool, c, st);
	if (st != VOX_OK) {
		vox_request_fail(req, vox_request_db_error(&err, st));
		return;
	}
	if (!a.found) {
		vox_request_fail(req, vox_request_no_org(&err));
		return;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, a.hold ? 5 : 4);
	pack_key(&pk, "allowed");
	if (a.allowed)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	pack_key(&pk, "reason");
	pack_key(&pk, a.reason);
	pack_key(&pk, "available_pence");
	msgpack_pack_int64(&pk, a.available);
	pack_key(&pk, "held_pence");
	msgpack_pack_int64(&pk, a.held);
	if (a.hold) {
		pack_key(&pk, "hold");
		pack_key(&pk, a.hold);
	}
	vox_request_respond(req, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}
