/*
 * billing.c - the batch planner of vox-billing (see billing.h). Events are
 * taken strictly in stream order; keys seen earlier in the same batch
 * count as known, so a batch behaves exactly like the same events applied
 * one at a time.
 */
#include "core/billing.h"

#include <sodium.h>

int64_t vox_billing_charge(int64_t duration_seconds, int64_t rate_per_minute)
{
	if (duration_seconds <= 0 || rate_per_minute <= 0)
		return 0;
	/* integer ceiling; d <= 86400 and rate is small: no overflow */
	return (duration_seconds * rate_per_minute + 59) / 60;
}

int64_t vox_billing_available(int64_t balance, int64_t debt_limit)
{
	int64_t sum;
	if (__builtin_add_overflow(balance, debt_limit, &sum))
		return debt_limit > 0 ? INT64_MAX : INT64_MIN;
	return sum;
}

int64_t vox_billing_spendable(int64_t balance, int64_t debt_limit, int64_t held)
{
	int64_t avail = vox_billing_available(balance, debt_limit), r;
	if (__builtin_sub_overflow(avail, held, &r))
		return held > 0 ? INT64_MIN : INT64_MAX;
	return r;
}

const char *vox_billing_outcome_code(vox_billing_outcome o)
{
	switch (o) {
	case VOX_BILL_CONFLICT:
	case VOX_BILL_OTHER_ORG:
	case VOX_BILL_OVER_REFUND:
		return "conflict";
	case VOX_BILL_UNKNOWN_ORG:
		return "unknown_org";
	case VOX_BILL_NOT_FOUND:
		return "not_found";
	case VOX_BILL_OVERFLOW:
		return "overflow";
	default:
		return NULL;
	}
}

void vox_billing_alert_id(vox_uuid *out, vox_event_kind kind,
			  const vox_uuid *org, const char *cause, size_t causelen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[16];
	crypto_generichash_state st;
	const char *name = vox_event_kind_name(kind);
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)name, strlen(name) + 1);
	crypto_generichash_update(&st, (const unsigned char *)org->s, 36);
	crypto_generichash_update(&st, (const unsigned char *)cause, causelen);
	crypto_generichash_final(&st, h, sizeof(h));
	h[6] = (unsigned char)((h[6] & 0x0f) | 0x80); /* version 8: custom */
	h[8] = (unsigned char)((h[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	int k = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out->s[k++] = '-';
		out->s[k++] = hex[h[i] >> 4];
		out->s[k++] = hex[h[i] & 15];
	}
	out->s[36] = '\0';
}

/* ---- working sets ------------------------------------------------------- */

typedef struct work {
	const vox_billing_input *in;
	vox_billing_plan *out;
	vox_known_call *calls;
	size_t ncalls, capcalls;
	vox_known_topup *topups;
	size_t ntopups, captopups;
	vox_known_refund *refunds;
	size_t nrefunds, caprefunds;
	size_t capledger, capcharges, capalerts;
} work;

#define GROW(arr, n, cap)                                                      \
	do {                                                                   \
		if ((n) == (cap)) {                                            \
			(cap) = (cap) ? (cap) * 2 : 16;                        \
			(arr) = vox_realloc((arr), (cap) * sizeof(*(arr)));    \
		}                                                              \
	} while (0)

static bool str_eq(vox_str a, vox_str b)
{
	return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static bool uuid_eq(const vox_uuid *a, const vox_uuid *b)
{
	return memcmp(a->s, b->s, 36) == 0;
}

static vox_wallet *find_wallet(work *w, const vox_uuid *org, size_t *index)
{
	for (size_t i = 0; i < w->in->nwallets; i++) {
		if (uuid_eq(&w->in->wallets[i].org_id, org)) {
			*index = i;
			return &w->in->wallets[i];
		}
	}
	return NULL;
}

static vox_known_call *find_call(work *w, const vox_uuid *call_id)
{
	for (size_t i = 0; i < w->ncalls; i++)
		if (uuid_eq(&w->calls[i].call_id, call_id))
			return &w->calls[i];
	return NULL;
}

static vox_known_topup *find_topup(work *w, vox_str pi)
{
	for (size_t i = 0; i < w->ntopups; i++)
		if (str_eq(w->topups[i].payment_intent, pi))
			return &w->topups[i];
	return NULL;
}

static vox_known_refund *find_refund(work *w, vox_str id)
{
	for (size_t i = 0; i < w->nrefunds; i++)
		if (str_eq(w->refunds[i].refund_id, id))
			return &w->refunds[i];
	return NULL;
}

/* Append a ledger row moving wallet wi by amount; returns it. The caller
 * has checked that balance + amount fits in int64. */
static vox_ledger_row *ledger(work *w, size_t wi, size_t item,
			      vox_ledger_type type, int64_t amount,
			      int64_t shortfall)
{
	vox_wallet *wl = &w->in->wallets[wi];
	GROW(w->out->ledger, w->out->nledger, w->capledger);
	vox_ledger_row *r = &w->out->ledger[w->out->nledger++];
	r->wallet = wi;
	r->item = item;
	r->type = type;
	r->amount = amount;
	r->before = wl->balance;
	r->after = wl->balance + amount;
	r->shortfall = shortfall;
	wl->balance = r->after;
	wl->changed = true;
	/* a crossing ends when the balance is back above its line */
	if (wl->balance >= wl->low_balance)
		wl->low_alerted = false;
	if (wl->balance > -wl->debt_limit)
		wl->debt_alerted = false;
	return r;
}

/* Whether the balance can take a credit / a debit of amount (>= 0) and
 * stay in int64. */
static bool credit_fits(const vox_wallet *wl, int64_t amount)
{
	int64_t after;
	return !__builtin_add_overflow(wl->balance, amount, &after);
}

static bool debit_fits(const vox_wallet *wl, int64_t amount)
{
	int64_t after;
	return !__builtin_sub_overflow(wl->balance, amount, &after);
}

static void alert(work *w, vox_event_kind kind, size_t wi, size_t item,
		  int64_t amount)
{
	GROW(w->out->alerts, w->out->nalerts, w->capalerts);
	vox_billing_alert *a = &w->out->alerts[w->out->nalerts++];
	a->kind = kind;
	a->wallet = wi;
	a->item = item;
	a->balance = w->in->wallets[wi].balance;
	a->amount = amount;
}

/* After a debit of wallet wi from before: alert.low_balance if it took the
 * balance from at or above the threshold to below it, once per crossing
 * (ledger() ends a crossing when the balance is back at the line). */
static void low_balance_crossing(work *w, size_t wi, size_t item, int64_t before)
{
	vox_wallet *wl = &w->in->wallets[wi];
	if (before >= wl->low_balance && wl->balance < wl->low_balance &&
	    !wl->low_alerted) {
		wl->low_alerted = true;
		alert(w, VOX_ALERT_LOW_BALANCE, wi, item, wl->low_balance);
	}
}

/* ---- one event each ------------------------------------------------------ */

static vox_billing_outcome call_ended(work *w, size_t item,
				      const vox_call_ended *e)
{
	size_t wi;
	vox_wallet *wl = find_wallet(w, &e->org_id, &wi);
	if (!wl)
		return VOX_BILL_UNKNOWN_ORG;
	vox_known_call *k = find_call(w, &e->call_id);
	if (k) {
		if (!uuid_eq(&k->org_id, &e->org_id))
			return VOX_BILL_OTHER_ORG;
		if (k->duration_seconds == e->duration_seconds)
			return VOX_BILL_DUPLICATE;
		return VOX_BILL_CONFLICT;
	}
	int64_t charge = vox_billing_charge(e->duration_seconds,
					    w->in->rate_per_minute);
	/* take what fits above -debt_limit (a sum past INT64_MAX fits any
	 * charge); the rest is shortfall. balance - deducted cannot
	 * overflow: it ends at -debt_limit at the lowest. */
	int64_t room = vox_billing_available(wl->balance, wl->debt_limit);
	int64_t deducted = room <= 0 ? 0 : (charge < room ? charge : room);
	int64_t shortfall = charge - deducted;
	int64_t before = wl->balance;
	int64_t unbilled;
	if (__builtin_add_overflow(wl->unbilled, shortfall, &unbilled))
		return VOX_BILL_OVERFLOW;

	GROW(w->out->charges, w->out->ncharges, w->capcharges);
	vox_call_charge *c = &w->out->charges[w->out->ncharges++];
	c->wallet = wi;
	c->item = item;
	c->duration_seconds = e->duration_seconds;
	c->charge = charge;
	c->deducted = deducted;
	c->shortfall = shortfall;
	GROW(w->calls, w->ncalls, w->capcalls);
	w->calls[w->ncalls++] = (vox_known_call){e->call_id, e->org_id,
						 e->duration_seconds};
	if (charge == 0)
		return VOX_BILL_APPLIED; /* 0 s: recorded, no ledger row */

	ledger(w, wi, item, VOX_LEDGER_DEDUCTION, -deducted, shortfall);
	wl->unbilled = unbilled;
	low_balance_crossing(w, wi, item, before);
	if (shortfall > 0 && !wl->debt_alerted) {
		wl->debt_alerted = true;
		alert(w, VOX_ALERT_DEBT_LIMIT, wi, item, shortfall);
	}
	return VOX_BILL_APPLIED;
}

static vox_billing_outcome topup(work *w, size_t item,
				 const vox_payment_succeeded *e)
{
	size_t wi;
	vox_wallet *wl = find_wallet(w, &e->org_id, &wi);
	if (!wl)
		return VOX_BILL_UNKNOWN_ORG;
	vox_known_topup *k = find_topup(w, e->stripe_payment_intent_id);
	if (k) {
		if (!uuid_eq(&k->org_id, &e->org_id))
			return VOX_BILL_OTHER_ORG;
		if (k->amount == e->amount_pence)
			return VOX_BILL_DUPLICATE;
		return VOX_BILL_CONFLICT;
	}
	if (!credit_fits(wl, e->amount_pence))
		return VOX_BILL_OVERFLOW;
	ledger(w, wi, item, VOX_LEDGER_TOPUP, e->amount_pence, 0);
	GROW(w->topups, w->ntopups, w->captopups);
	w->topups[w->ntopups++] = (vox_known_topup){
		e->stripe_payment_intent_id, e->org_id, e->amount_pence, 0};
	return VOX_BILL_APPLIED;
}

static vox_billing_outcome refund(work *w, size_t item,
				  const vox_payment_refunded *e)
{
	size_t wi;
	vox_wallet *wl = find_wallet(w, &e->org_id, &wi);
	if (!wl)
		return VOX_BILL_UNKNOWN_ORG;
	vox_known_refund *k = find_refund(w, e->stripe_refund_id);
	if (k) {
		if (k->amount == e->amount_pence &&
		    str_eq(k->payment_intent, e->stripe_payment_intent_id))
			return VOX_BILL_DUPLICATE;
		return VOX_BILL_CONFLICT;
	}
	vox_known_topup *t = find_topup(w, e->stripe_payment_intent_id);
	if (!t || !uuid_eq(&t->org_id, &e->org_id))
		return VOX_BILL_NOT_FOUND;
	/* refunded <= amount holds for what the store reads; written so that
	 * no sum of two stored values can overflow either way */
	if (t->refunded > t->amount || e->amount_pence > t->amount - t->refunded)
		return VOX_BILL_OVER_REFUND;
	if (!debit_fits(wl, e->amount_pence))
		return VOX_BILL_OVERFLOW;
	/* an outside fact: applied in full, even below the debt limit */
	int64_t before = wl->balance;
	ledger(w, wi, item, VOX_LEDGER_REFUND, -e->amount_pence, 0);
	low_balance_crossing(w, wi, item, before);
	t->refunded += e->amount_pence;
	GROW(w->refunds, w->nrefunds, w->caprefunds);
	w->refunds[w->nrefunds++] = (vox_known_refund){
		e->stripe_refund_id, e->stripe_payment_intent_id, e->amount_pence};
	return VOX_BILL_APPLIED;
}

void vox_billing_plan_batch(vox_billing_plan *out, const vox_billing_input *in)
{
	work w;
	memset(&w, 0, sizeof(w));
	memset(out, 0, sizeof(*out));
	w.in = in;
	w.out = out;
	out->outcomes = vox_calloc(in->nevents ? in->nevents : 1,
				   sizeof(*out->outcomes));
	/* copies, since the batch adds to them */
	for (size_t i = 0; i < in->ncalls; i++) {
		GROW(w.calls, w.ncalls, w.capcalls);
		w.calls[w.ncalls++] = in->calls[i];
	}
	for (size_t i = 0; i < in->ntopups; i++) {
		GROW(w.topups, w.ntopups, w.captopups);
		w.topups[w.ntopups++] = in->topups[i];
	}
	for (size_t i = 0; i < in->nrefunds; i++) {
		GROW(w.refunds, w.nrefunds, w.caprefunds);
		w.refunds[w.nrefunds++] = in->refunds[i];
	}
	for (size_t i = 0; i < in->nevents; i++) {
		const vox_event *ev = in->events[i];
		vox_billing_outcome o;
		switch (ev->kind) {
		case VOX_CALL_ENDED:
			o = call_ended(&w, i, &ev->u.call_ended);
			break;
		case VOX_PAYMENT_SUCCEEDED:
			o = topup(&w, i, &ev->u.payment_succeeded);
			break;
		case VOX_PAYMENT_REFUNDED:
			o = refund(&w, i, &ev->u.payment_refunded);
			break;
		default:
			o = VOX_BILL_IGNORED;
			break;
		}
		out->outcomes[i] = o;
	}
	free(w.calls);
	free(w.topups);
	free(w.refunds);
}

void vox_billing_plan_release(vox_billing_plan *p)
{
	free(p->outcomes);
	free(p->ledger);
	free(p->charges);
	free(p->alerts);
	memset(p, 0, sizeof(*p));
}
