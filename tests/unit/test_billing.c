/*
 * The money rules (core/billing.c): the charge table of the rules, the
 * debt-limit floor, refund caps, conflicts, alerts once per crossing,
 * int64 overflow refused, and properties over generated event sequences:
 * invariants 1-4 hold for any order with any duplicates, overflow is
 * refused exactly when an effect does not fit, and splitting a stream into
 * batches of any size gives exactly the result of applying it one event
 * at a time.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/billing.h"

#define ORG_A "aaaaaaaa-0000-4000-8000-000000000001"
#define ORG_B "bbbbbbbb-0000-4000-8000-000000000002"
#define RATE 70

static void wallet(vox_wallet *w, const char *org, int64_t balance,
		   int64_t debt_limit, int64_t low)
{
	memset(w, 0, sizeof(*w));
	memcpy(w->org_id.s, org, 37);
	w->balance = balance;
	w->debt_limit = debt_limit;
	w->low_balance = low;
}

static void call(vox_event *ev, const char *org, int n, int64_t duration)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_CALL_ENDED;
	memcpy(ev->u.call_ended.org_id.s, org, 37);
	snprintf(ev->u.call_ended.call_id.s, 37,
		 "cccccccc-0000-4000-8000-%012d", n);
	ev->u.call_ended.duration_seconds = duration;
	ev->u.call_ended.event_id = (vox_str){"e", 1};
}

static void topup(vox_event *ev, const char *org, const char *pi, int64_t amount)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_PAYMENT_SUCCEEDED;
	memcpy(ev->u.payment_succeeded.org_id.s, org, 37);
	ev->u.payment_succeeded.stripe_payment_intent_id = (vox_str){pi, strlen(pi)};
	ev->u.payment_succeeded.amount_pence = amount;
}

static void refund(vox_event *ev, const char *org, const char *re,
		   const char *pi, int64_t amount)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_PAYMENT_REFUNDED;
	memcpy(ev->u.payment_refunded.org_id.s, org, 37);
	ev->u.payment_refunded.stripe_refund_id = (vox_str){re, strlen(re)};
	ev->u.payment_refunded.stripe_payment_intent_id = (vox_str){pi, strlen(pi)};
	ev->u.payment_refunded.amount_pence = amount;
}

/* Plan a batch over the given wallets with nothing known before. */
static void plan(vox_event *evs, size_t n, vox_wallet *w, size_t nw,
		 vox_billing_plan *p)
{
	const vox_event *ptrs[64];
	for (size_t i = 0; i < n; i++)
		ptrs[i] = &evs[i];
	vox_billing_input in = {ptrs, n, w, nw, NULL, 0, NULL, 0, NULL, 0, RATE};
	vox_billing_plan_batch(p, &in);
}

static void test_charge_table(void **state)
{
	(void)state;
	static const int64_t table[][2] = {
		{1, 2}, {30, 35}, {59, 69}, {60, 70}, {91, 107}, {3600, 4200},
		{0, 0}, {86400, 100800}, {61, 72}, {119, 139}, {120, 140},
	};
	for (size_t i = 0; i < VOX_NELEM(table); i++)
		assert_int_equal(vox_billing_charge(table[i][0], RATE), table[i][1]);
	/* one formula for every length: no cap on long calls */
	for (int64_t d = 1; d <= 86400; d++) {
		int64_t c = vox_billing_charge(d, RATE);
		assert_true(c * 60 >= d * RATE && (c - 1) * 60 < d * RATE);
	}
	assert_int_equal(vox_billing_charge(60, 100), 100);
}

static void test_zero_second_call_writes_no_ledger_row(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev;
	vox_billing_plan p;
	wallet(&w, ORG_A, 1000, 500, 0);
	call(&ev, ORG_A, 1, 0);
	plan(&ev, 1, &w, 1, &p);
	assert_int_equal(p.outcomes[0], VOX_BILL_APPLIED);
	assert_int_equal(p.nledger, 0);
	assert_int_equal(p.ncharges, 1); /* recorded, so a repeat is known */
	assert_int_equal(p.charges[0].charge, 0);
	assert_int_equal(w.balance, 1000);
	vox_billing_plan_release(&p);
}

/* The replaced system dropped charges at the debt limit. */
static void test_charge_over_the_debt_limit_records_shortfall(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev;
	vox_billing_plan p;
	wallet(&w, ORG_A, 100, 500, 1000);
	call(&ev, ORG_A, 1, 600); /* 700 */
	plan(&ev, 1, &w, 1, &p);
	assert_int_equal(p.outcomes[0], VOX_BILL_APPLIED);
	assert_int_equal(p.nledger, 1);
	assert_int_equal(p.ledger[0].amount, -600);
	assert_int_equal(p.ledger[0].shortfall, 100);
	assert_int_equal(p.ledger[0].before, 100);
	assert_int_equal(p.ledger[0].after, -500);
	assert_int_equal(w.balance, -500);
	assert_int_equal(w.unbilled, 100);
	assert_int_equal(p.charges[0].deducted + p.charges[0].shortfall, 700);
	/* debt-limit alert with the shortfall; no low-balance crossing since
	 * the wallet was already below its threshold */
	assert_int_equal(p.nalerts, 1);
	assert_int_equal(p.alerts[0].kind, VOX_ALERT_DEBT_LIMIT);
	assert_int_equal(p.alerts[0].amount, 100);
	vox_billing_plan_release(&p);

	/* at the floor: nothing fits, the row records the whole charge */
	call(&ev, ORG_A, 2, 60);
	plan(&ev, 1, &w, 1, &p);
	assert_int_equal(p.ledger[0].amount, 0);
	assert_int_equal(p.ledger[0].shortfall, 70);
	assert_int_equal(w.balance, -500);
	assert_int_equal(w.unbilled, 170);
	assert_int_equal(p.nalerts, 0); /* same crossing: no second alert */
	vox_billing_plan_release(&p);
}

static void test_exact_fit_at_the_floor(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev;
	vox_billing_plan p;
	wallet(&w, ORG_A, 200, 500, 0);
	call(&ev, ORG_A, 1, 600); /* 700 = 200 + 500 exactly */
	plan(&ev, 1, &w, 1, &p);
	assert_int_equal(w.balance, -500);
	assert_int_equal(p.ledger[0].shortfall, 0);
	/* fully taken: no debt-limit alert, only the crossing below 0 */
	assert_int_equal(p.nalerts, 1);
	assert_int_equal(p.alerts[0].kind, VOX_ALERT_LOW_BALANCE);
	assert_int_equal(w.unbilled, 0);
	vox_billing_plan_release(&p);
}

static void test_duplicates_and_conflicts(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev[6];
	vox_billing_plan p;
	wallet(&w, ORG_A, 10000, 500, 0);
	call(&ev[0], ORG_A, 1, 60);
	call(&ev[1], ORG_A, 1, 60);  /* same call, same duration: no-op */
	call(&ev[2], ORG_A, 1, 61);  /* same call, other duration: conflict */
	topup(&ev[3], ORG_A, "pi_1", 500);
	topup(&ev[4], ORG_A, "pi_1", 500);
	topup(&ev[5], ORG_A, "pi_1", 900);
	plan(ev, 6, &w, 1, &p);
	assert_int_equal(p.outcomes[0], VOX_BILL_APPLIED);
	assert_int_equal(p.outcomes[1], VOX_BILL_DUPLICATE);
	assert_int_equal(p.outcomes[2], VOX_BILL_CONFLICT);
	assert_int_equal(p.outcomes[3], VOX_BILL_APPLIED);
	assert_int_equal(p.outcomes[4], VOX_BILL_DUPLICATE);
	assert_int_equal(p.outcomes[5], VOX_BILL_CONFLICT);
	assert_int_equal(p.nledger, 2);
	assert_int_equal(w.balance, 10000 - 70 + 500);
	assert_string_equal(vox_billing_outcome_code(p.outcomes[2]), "conflict");
	vox_billing_plan_release(&p);

	/* known before the batch (from the store) counts the same */
	vox_known_call kc = {{{0}}, {{0}}, 60};
	call(&ev[0], ORG_A, 7, 60);
	kc.call_id = ev[0].u.call_ended.call_id;
	kc.org_id = ev[0].u.call_ended.org_id;
	call(&ev[1], ORG_A, 7, 30);
	const vox_event *ptrs[2] = {&ev[0], &ev[1]};
	vox_billing_input in = {ptrs, 2, &w, 1, &kc, 1, NULL, 0, NULL, 0, RATE};
	int64_t before = w.balance;
	vox_billing_plan_batch(&p, &in);
	assert_int_equal(p.outcomes[0], VOX_BILL_DUPLICATE);
	assert_int_equal(p.outcomes[1], VOX_BILL_CONFLICT);
	assert_int_equal(w.balance, before);
	vox_billing_plan_release(&p);
}

static void test_refunds_are_capped_and_applied_in_full(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev[6];
	vox_billing_plan p;
	wallet(&w, ORG_A, 0, 500, 0);
	topup(&ev[0], ORG_A, "pi_1", 1000);
	refund(&ev[1], ORG_A, "re_1", "pi_1", 600);
	refund(&ev[2], ORG_A, "re_2", "pi_1", 500);  /* 1100 > 1000 */
	refund(&ev[3], ORG_A, "re_3", "pi_404", 10); /* never credited */
	refund(&ev[4], ORG_A, "re_1", "pi_1", 600);  /* repeat */
	refund(&ev[5], ORG_A, "re_4", "pi_1", 400);  /* exactly the rest */
	plan(ev, 6, &w, 1, &p);
	assert_int_equal(p.outcomes[1], VOX_BILL_APPLIED);
	assert_int_equal(p.outcomes[2], VOX_BILL_OVER_REFUND);
	assert_int_equal(p.outcomes[3], VOX_BILL_NOT_FOUND);
	assert_int_equal(p.outcomes[4], VOX_BILL_DUPLICATE);
	assert_int_equal(p.outcomes[5], VOX_BILL_APPLIED);
	assert_int_equal(w.balance, 0);
	vox_billing_plan_release(&p);

	/* a refund below the debt limit still applies in full */
	wallet(&w, ORG_A, -400, 500, 0);
	vox_known_topup kt = {{"pi_9", 4}, {{0}}, 300, 0};
	memcpy(kt.org_id.s, ORG_A, 37);
	refund(&ev[0], ORG_A, "re_9", "pi_9", 300);
	const vox_event *ptrs[1] = {&ev[0]};
	vox_billing_input in = {ptrs, 1, &w, 1, NULL, 0, &kt, 1, NULL, 0, RATE};
	vox_billing_plan_batch(&p, &in);
	assert_int_equal(p.outcomes[0], VOX_BILL_APPLIED);
	assert_int_equal(w.balance, -700);
	vox_billing_plan_release(&p);
	/* and another org cannot refund this org's payment */
	wallet(&w, ORG_B, 0, 500, 0);
	refund(&ev[0], ORG_B, "re_10", "pi_9", 1);
	vox_billing_plan_batch(&p, &in);
	assert_int_equal(p.outcomes[0], VOX_BILL_NOT_FOUND);
	vox_billing_plan_release(&p);
}

static void test_unknown_org(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev;
	vox_billing_plan p;
	wallet(&w, ORG_A, 0, 500, 0);
	call(&ev, ORG_B, 1, 60);
	plan(&ev, 1, &w, 1, &p);
	assert_int_equal(p.outcomes[0], VOX_BILL_UNKNOWN_ORG);
	assert_string_equal(vox_billing_outcome_code(p.outcomes[0]), "unknown_org");
	assert_int_equal(p.nledger, 0);
	vox_billing_plan_release(&p);
}

static void test_low_balance_alert_once_per_crossing(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev[5];
	vox_billing_plan p;
	wallet(&w, ORG_A, 1100, 500, 1000);
	call(&ev[0], ORG_A, 1, 120); /* 1100 -> 960: crosses */
	call(&ev[1], ORG_A, 2, 60);  /* stays low: no alert */
	topup(&ev[2], ORG_A, "pi_1", 5000); /* back above: crossing ends */
	call(&ev[3], ORG_A, 3, 3600); /* 5890 -> 1690: above */
	call(&ev[4], ORG_A, 4, 1200); /* 1690 -> 290: crosses again */
	plan(ev, 5, &w, 1, &p);
	assert_int_equal(p.nalerts, 2);
	assert_int_equal(p.alerts[0].kind, VOX_ALERT_LOW_BALANCE);
	assert_int_equal(p.alerts[0].item, 0);
	assert_int_equal(p.alerts[0].balance, 960);
	assert_int_equal(p.alerts[0].amount, 1000);
	assert_int_equal(p.alerts[1].item, 4);
	assert_true(w.low_alerted);
	vox_billing_plan_release(&p);
}

/* A refund is a debit like a charge: crossing below the threshold raises
 * the alert, once per crossing, whichever debit crossed. */
static void test_low_balance_alert_on_a_refund(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev[6];
	vox_billing_plan p;
	wallet(&w, ORG_A, 500, 500, 1000);
	topup(&ev[0], ORG_A, "pi_1", 2000);          /* 2500 */
	refund(&ev[1], ORG_A, "re_1", "pi_1", 1400); /* 1100: above */
	refund(&ev[2], ORG_A, "re_2", "pi_1", 200);  /* 900: crosses */
	call(&ev[3], ORG_A, 1, 60);                  /* 830: same crossing */
	refund(&ev[4], ORG_A, "re_3", "pi_1", 100);  /* 730: same crossing */
	topup(&ev[5], ORG_A, "pi_2", 300);           /* 1030: crossing ends */
	plan(ev, 6, &w, 1, &p);
	for (int i = 0; i < 6; i++)
		assert_int_equal(p.outcomes[i], VOX_BILL_APPLIED);
	assert_int_equal(p.nalerts, 1);
	assert_int_equal(p.alerts[0].kind, VOX_ALERT_LOW_BALANCE);
	assert_int_equal(p.alerts[0].item, 2);
	assert_int_equal(p.alerts[0].balance, 900);
	assert_int_equal(p.alerts[0].amount, 1000);
	assert_false(w.low_alerted);
	vox_billing_plan_release(&p);

	/* a refund that leaves the wallet at the line is not a crossing; the
	 * next one below it is */
	refund(&ev[0], ORG_A, "re_4", "pi_2", 30);  /* 1000 */
	refund(&ev[1], ORG_A, "re_5", "pi_2", 1);   /* 999 */
	vox_known_topup kt = {{"pi_2", 4}, {{0}}, 300, 0};
	memcpy(kt.org_id.s, ORG_A, 37);
	const vox_event *ptrs[2] = {&ev[0], &ev[1]};
	vox_billing_input in = {ptrs, 2, &w, 1, NULL, 0, &kt, 1, NULL, 0, RATE};
	vox_billing_plan_batch(&p, &in);
	assert_int_equal(p.nalerts, 1);
	assert_int_equal(p.alerts[0].item, 1);
	assert_int_equal(p.alerts[0].balance, 999);
	assert_true(w.low_alerted);
	vox_billing_plan_release(&p);
}

static void test_alert_ids_are_deterministic(void **state)
{
	(void)state;
	vox_uuid a, b, c, org;
	memcpy(org.s, ORG_A, 37);
	vox_billing_alert_id(&a, VOX_ALERT_LOW_BALANCE, &org, "call-1", 6);
	vox_billing_alert_id(&b, VOX_ALERT_LOW_BALANCE, &org, "call-1", 6);
	vox_billing_alert_id(&c, VOX_ALERT_DEBT_LIMIT, &org, "call-1", 6);
	assert_string_equal(a.s, b.s);
	assert_string_not_equal(a.s, c.s);
	assert_int_equal(strlen(a.s), 36);
	assert_int_equal(a.s[14], '8');
}

/* Money is int64: an event whose effect would take a balance (or the
 * unbilled total) past it is refused, moves nothing, and the rest of the
 * batch goes on. The values at the edge itself are taken. */
static void test_overflow_is_refused_and_moves_nothing(void **state)
{
	(void)state;
	vox_wallet w;
	vox_event ev[4];
	vox_billing_plan p;

	wallet(&w, ORG_A, INT64_MAX - 10, 500, 0);
	topup(&ev[0], ORG_A, "pi_over", 11);  /* one past INT64_MAX */
	topup(&ev[1], ORG_A, "pi_edge", 10);  /* exactly INT64_MAX */
	topup(&ev[2], ORG_A, "pi_over", 11);  /* still refused, not a duplicate */
	plan(ev, 3, &w, 1, &p);
	assert_int_equal(p.outcomes[0], VOX_BILL_OVERFLOW);
	assert_int_equal(p.outcomes[1], VOX_BILL_APPLIED);
	assert_int_equal(p.outcomes[2], VOX_BILL_OVERFLOW);
	assert_string_equal(vox_billing_outcome_code(p.outcomes[0]), "overflow");
	assert_int_equal(p.nledger, 1);
	assert_int_equal(p.ledger[0].item, 1);
	assert_int_equal(w.balance, INT64_MAX);
	vox_billing_plan_release(&p);

	/* a refund below INT64_MIN */
	wallet(&w, ORG_A, INT64_MIN + 5, 500, 0);
	vox_known_topup kt = {{"pi_old", 6}, {{0}}, 100, 0};
	memcpy(kt.org_id.s, ORG_A, 37);
	refund(&ev[0], ORG_A, "re_over", "pi_old", 6);
	refund(&ev[1], ORG_A, "re_edge", "pi_old", 5);
	const vox_event *ptrs[2] = {&ev[0], &ev[1]};
	vox_billing_input in = {ptrs, 2, &w, 1, NULL, 0, &kt, 1, NULL, 0, RATE};
	vox_billing_plan_batch(&p, &in);
	assert_int_equal(p.outcomes[0], VOX_BILL_OVERFLOW);
	assert_int_equal(p.outcomes[1], VOX_BILL_APPLIED);
	assert_int_equal(w.balance, INT64_MIN);
	assert_int_equal(p.nledger, 1);
	vox_billing_plan_release(&p);

	/* the charge's room (balance + debt limit) saturates instead of
	 * wrapping to a negative room that would make it all shortfall */
	wallet(&w, ORG_A, INT64_MAX, INT64_MAX, 0);
	call(&ev[0], ORG_A, 1, 60);
	plan(ev, 1, &w, 1, &p);
	assert_int_equal(p.outcomes[0], VOX_BILL_APPLIED);
	assert_int_equal(p.charges[0].deducted, 70);
	assert_int_equal(p.charges[0].shortfall, 0);
	assert_int_equal(w.balance, INT64_MAX - 70);
	vox_billing_plan_release(&p);

	/* a shortfall the unbilled total cannot hold: refused, no charge row;
	 * a call that fits in full goes through */
	wallet(&w, ORG_A, 0, 0, 0);
	w.unbilled = INT64_MAX - 69;
	call(&ev[0], ORG_A, 2, 60);  /* all 70 short: one past */
	call(&ev[1], ORG_A, 3, 59);  /* 69 short: exactly INT64_MAX */
	plan(ev, 2, &w, 1, &p);
	assert_int_equal(p.outcomes[0], VOX_BILL_OVERFLOW);
	assert_int_equal(p.outcomes[1], VOX_BILL_APPLIED);
	assert_int_equal(p.ncharges, 1);
	assert_int_equal(p.charges[0].item, 1);
	assert_int_equal(w.unbilled, INT64_MAX);
	vox_billing_plan_release(&p);

	assert_int_equal(vox_billing_available(INT64_MAX, 1), INT64_MAX);
	assert_int_equal(vox_billing_available(INT64_MAX - 1, 1), INT64_MAX);
	assert_int_equal(vox_billing_available(INT64_MIN, INT64_MAX), -1);
	/* less the holds, saturating low as well as high */
	assert_int_equal(vox_billing_spendable(70, 0, 350), -280);
	assert_int_equal(vox_billing_spendable(INT64_MAX, 1, 0), INT64_MAX);
	assert_int_equal(vox_billing_spendable(INT64_MIN, 0, 1), INT64_MIN);
	assert_int_equal(vox_billing_spendable(-430, 500, 0), 70);
	assert_int_equal(vox_billing_available(-430, 500), 70);
}

/* A key held by another org is refused as that, whoever's the event. */
static void test_keys_of_another_org(void **state)
{
	(void)state;
	vox_wallet w[2];
	vox_event ev[4];
	vox_billing_plan p;
	wallet(&w[0], ORG_A, 1000, 500, 0);
	wallet(&w[1], ORG_B, 1000, 500, 0);
	call(&ev[0], ORG_A, 1, 60);
	call(&ev[1], ORG_B, 1, 60);   /* same call id, same duration */
	topup(&ev[2], ORG_A, "pi_1", 100);
	topup(&ev[3], ORG_B, "pi_1", 100);
	plan(ev, 4, w, 2, &p);
	assert_int_equal(p.outcomes[0], VOX_BILL_APPLIED);
	assert_int_equal(p.outcomes[1], VOX_BILL_OTHER_ORG);
	assert_int_equal(p.outcomes[2], VOX_BILL_APPLIED);
	assert_int_equal(p.outcomes[3], VOX_BILL_OTHER_ORG);
	assert_string_equal(vox_billing_outcome_code(p.outcomes[1]), "conflict");
	assert_int_equal(w[1].balance, 1000);
	vox_billing_plan_release(&p);
}

/* ---- properties over generated streams --------------------------------- */

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

#define NORG 3
#define NEV 400

static const char *orgs[NORG] = {ORG_A, ORG_B,
				 "cccccccc-0000-4000-8000-000000000003"};
static char keybuf[NEV][24];

/* A stream of calls, top-ups and refunds with duplicates and conflicts. */
static void gen_stream(vox_event *evs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *org = orgs[rnd() % NORG];
		size_t back = i ? (size_t)(rnd() % i) : 0;
		uint64_t r = rnd() % 100;
		if (i > 0 && r < 20) {
			evs[i] = evs[back]; /* an exact duplicate */
		} else if (i > 0 && r < 25 && evs[back].kind == VOX_CALL_ENDED) {
			evs[i] = evs[back]; /* a conflicting duplicate */
			evs[i].u.call_ended.duration_seconds += 1;
		} else if (r < 65) {
			call(&evs[i], org, (int)i, (int64_t)(rnd() % 1800));
		} else if (r < 85) {
			snprintf(keybuf[i], sizeof(keybuf[i]), "pi_%zu", i);
			topup(&evs[i], org, keybuf[i], (int64_t)(rnd() % 3000) + 1);
		} else {
			/* refund some earlier top-up (maybe another org's) */
			const vox_event *t = NULL;
			for (size_t k = back; k > 0 && !t; k--)
				if (evs[k].kind == VOX_PAYMENT_SUCCEEDED)
					t = &evs[k];
			snprintf(keybuf[i], sizeof(keybuf[i]), "re_%zu", i);
			refund(&evs[i], t ? t->u.payment_succeeded.org_id.s : org,
			       keybuf[i],
			       t ? t->u.payment_succeeded.stripe_payment_intent_id.ptr : "pi_none",
			       (int64_t)(rnd() % 1500) + 1);
			if (t)
				evs[i].u.payment_refunded.stripe_payment_intent_id.len =
					t->u.payment_succeeded.stripe_payment_intent_id.len;
		}
	}
}

typedef struct logged_alert {
	vox_event_kind kind;
	size_t wallet;
	size_t item; /* index in the whole stream */
	int64_t balance;
	int64_t amount;
} logged_alert;

typedef struct outcome_log {
	vox_wallet wallets[NORG];
	vox_billing_outcome outcomes[NEV];
	int64_t ledger_sum[NORG];
	size_t nledger;
	logged_alert alerts[2 * NEV];
	size_t nalerts;
	size_t refund_alerts; /* low_balance alerts a refund raised */
} outcome_log;

/*
 * The alerts a batch must raise, from its ledger rows in order and the
 * crossing state of each wallet (low[k], debt[k], carried across
 * batches): alert.low_balance for a debit (charge or refund) from at or
 * above the threshold to below it, alert.debt_limit for a charge with a
 * shortfall, each once per crossing; a crossing ends when the balance is
 * back at (or above) its line. Checks that the plan raised exactly those.
 */
static void check_alerts(const vox_billing_plan *p, const vox_wallet *w,
			 bool *low, bool *debt, size_t first_item,
			 outcome_log *log, const vox_event *evs)
{
	size_t next = 0;
	for (size_t r = 0; r < p->nledger; r++) {
		const vox_ledger_row *row = &p->ledger[r];
		const vox_wallet *wl = &w[row->wallet];
		size_t k = row->wallet;
		if (row->after >= wl->low_balance)
			low[k] = false;
		if (row->after > -wl->debt_limit)
			debt[k] = false;
		bool debit = row->type != VOX_LEDGER_TOPUP;
		if (debit && row->before >= wl->low_balance &&
		    row->after < wl->low_balance && !low[k]) {
			low[k] = true;
			assert_true(next < p->nalerts);
			const vox_billing_alert *a = &p->alerts[next++];
			assert_int_equal(a->kind, VOX_ALERT_LOW_BALANCE);
			assert_int_equal(a->wallet, row->wallet);
			assert_int_equal(a->item, row->item);
			assert_int_equal(a->balance, row->after);
			assert_int_equal(a->amount, wl->low_balance);
			if (row->type == VOX_LEDGER_REFUND) {
				assert_int_equal(evs[first_item + a->item].kind,
						 VOX_PAYMENT_REFUNDED);
				log->refund_alerts++;
			}
		}
		if (row->type == VOX_LEDGER_DEDUCTION && row->shortfall > 0 && !debt[k]) {
			debt[k] = true;
			assert_true(next < p->nalerts);
			const vox_billing_alert *a = &p->alerts[next++];
			assert_int_equal(a->kind, VOX_ALERT_DEBT_LIMIT);
			assert_int_equal(a->item, row->item);
			assert_int_equal(a->balance, row->after);
			assert_int_equal(a->amount, row->shortfall);
		}
	}
	assert_int_equal(next, p->nalerts);
	for (size_t i = 0; i < p->nalerts; i++) {
		const vox_billing_alert *a = &p->alerts[i];
		log->alerts[log->nalerts++] = (logged_alert){a->kind, a->wallet,
			first_item + a->item, a->balance, a->amount};
	}
}

/*
 * Feed the stream in batches of the given sizes (0 = random 1..64),
 * carrying the store's knowledge between batches as the store would, and
 * check the invariants on every ledger row.
 */
static void run_stream(const vox_event *evs, size_t n, size_t batch,
		       outcome_log *log)
{
	vox_known_call calls[NEV];
	vox_known_topup topups[NEV];
	vox_known_refund refunds[NEV];
	size_t ncalls = 0, ntopups = 0, nrefunds = 0;
	int64_t opening[NORG];
	int64_t charged[NEV]; /* per event index: deducted + shortfall */
	bool low[NORG] = {false}, debt[NORG] = {false};
	memset(log, 0, sizeof(*log));
	memset(charged, 0, sizeof(charged));
	for (int k = 0; k < NORG; k++) {
		wallet(&log->wallets[k], orgs[k], (int64_t)(rnd() % 2000), 500, 800);
		opening[k] = log->wallets[k].balance;
	}
	for (size_t i = 0; i < n;) {
		size_t b = batch ? batch : (size_t)(rnd() % 64) + 1;
		if (i + b > n)
			b = n - i;
		const vox_event *ptrs[64];
		for (size_t k = 0; k < b; k++)
			ptrs[k] = &evs[i + k];
		vox_billing_input in = {ptrs, b, log->wallets, NORG, calls, ncalls,
					topups, ntopups, refunds, nrefunds, RATE};
		vox_billing_plan p;
		vox_billing_plan_batch(&p, &in);
		for (size_t r = 0; r < p.nledger; r++) {
			const vox_ledger_row *row = &p.ledger[r];
			const vox_wallet *w = &log->wallets[row->wallet];
			/* invariant 1: the chain has no gaps */
			assert_int_equal(row->after, row->before + row->amount);
			/* invariant 2: a charge never goes below -debt_limit */
			if (row->type == VOX_LEDGER_DEDUCTION)
				assert_true(row->after >= -w->debt_limit ||
					    row->amount == 0);
			log->ledger_sum[row->wallet] += row->amount;
			log->nledger++;
		}
		for (size_t c = 0; c < p.ncharges; c++)
			charged[i + p.charges[c].item] =
				p.charges[c].deducted + p.charges[c].shortfall;
		check_alerts(&p, log->wallets, low, debt, i, log, evs);
		/* what the store learns from this batch */
		for (size_t k = 0; k < b; k++) {
			const vox_event *ev = &evs[i + k];
			log->outcomes[i + k] = p.outcomes[k];
			if (p.outcomes[k] != VOX_BILL_APPLIED)
				continue;
			if (ev->kind == VOX_CALL_ENDED) {
				calls[ncalls++] = (vox_known_call){ev->u.call_ended.call_id,
					ev->u.call_ended.org_id, ev->u.call_ended.duration_seconds};
			} else if (ev->kind == VOX_PAYMENT_SUCCEEDED) {
				topups[ntopups++] = (vox_known_topup){
					ev->u.payment_succeeded.stripe_payment_intent_id,
					ev->u.payment_succeeded.org_id,
					ev->u.payment_succeeded.amount_pence, 0};
			} else if (ev->kind == VOX_PAYMENT_REFUNDED) {
				const vox_payment_refunded *rf = &ev->u.payment_refunded;
				refunds[nrefunds++] = (vox_known_refund){rf->stripe_refund_id,
					rf->stripe_payment_intent_id, rf->amount_pence};
				for (size_t t = 0; t < ntopups; t++)
					if (topups[t].payment_intent.len == rf->stripe_payment_intent_id.len &&
					    memcmp(topups[t].payment_intent.ptr,
						   rf->stripe_payment_intent_id.ptr,
						   topups[t].payment_intent.len) == 0)
						topups[t].refunded += rf->amount_pence;
			}
		}
		vox_billing_plan_release(&p);
		i += b;
	}
	for (int k = 0; k < NORG; k++) {
		/* invariant 1: balance = opening + sum of the ledger */
		assert_int_equal(log->wallets[k].balance, opening[k] + log->ledger_sum[k]);
	}
	/* invariant 3: every call charged exactly once, in full */
	for (size_t i = 0; i < n; i++) {
		if (evs[i].kind != VOX_CALL_ENDED || log->outcomes[i] != VOX_BILL_APPLIED)
			continue;
		assert_int_equal(charged[i], vox_billing_charge(
			evs[i].u.call_ended.duration_seconds, RATE));
		for (size_t j = 0; j < n; j++)
			if (j != i && evs[j].kind == VOX_CALL_ENDED &&
			    memcmp(evs[j].u.call_ended.call_id.s,
				   evs[i].u.call_ended.call_id.s, 36) == 0)
				assert_int_not_equal(log->outcomes[j], VOX_BILL_APPLIED);
	}
	/* invariant 4: credited once, refunds within the payment */
	for (size_t t = 0; t < ntopups; t++) {
		assert_true(topups[t].refunded <= topups[t].amount);
		for (size_t u = t + 1; u < ntopups; u++)
			assert_false(topups[t].payment_intent.len == topups[u].payment_intent.len &&
				     memcmp(topups[t].payment_intent.ptr, topups[u].payment_intent.ptr,
					    topups[t].payment_intent.len) == 0);
	}
}

/*
 * Overflow on generated streams: wallets open near both ends of int64
 * (and with an unbilled total near its top), and a stream of top-ups,
 * refunds and charges runs one event at a time. Every refusal for
 * overflow is exactly an event whose effect does not fit in int64
 * (checked in 128-bit arithmetic) and changes nothing; every applied
 * event fits; and a batch of any size gives the same outcomes.
 */
#define OV_NEV 300

static void ov_stream(vox_event *evs, size_t n, char keys[][24])
{
	for (size_t i = 0; i < n; i++) {
		const char *org = orgs[rnd() % NORG];
		uint64_t r = rnd() % 100;
		if (r < 40) {
			call(&evs[i], org, (int)i, (int64_t)(rnd() % 7200));
		} else if (r < 75) {
			snprintf(keys[i], 24, "pi_%zu", i);
			topup(&evs[i], org, keys[i], (int64_t)(rnd() % 100000000) + 1);
		} else {
			/* refund an earlier top-up of the same org, if any */
			const vox_event *t = NULL;
			for (size_t k = i; k > 0 && !t; k--)
				if (evs[k - 1].kind == VOX_PAYMENT_SUCCEEDED &&
				    strcmp(evs[k - 1].u.payment_succeeded.org_id.s, org) == 0)
					t = &evs[k - 1];
			if (!t) {
				call(&evs[i], org, (int)i, 60);
				continue;
			}
			snprintf(keys[i], 24, "re_%zu", i);
			refund(&evs[i], org, keys[i],
			       t->u.payment_succeeded.stripe_payment_intent_id.ptr,
			       (int64_t)(rnd() % 1000) + 1);
			evs[i].u.payment_refunded.stripe_payment_intent_id.len =
				t->u.payment_succeeded.stripe_payment_intent_id.len;
		}
	}
}

static void ov_wallets(vox_wallet *w)
{
	for (int k = 0; k < NORG; k++) {
		int64_t off = (int64_t)(rnd() % 400000000);
		switch (rnd() % 3) {
		case 0:
			wallet(&w[k], orgs[k], INT64_MAX - off, (int64_t)(rnd() % 1000), 0);
			break;
		case 1:
			wallet(&w[k], orgs[k], INT64_MIN + off, (int64_t)(rnd() % 1000), 0);
			break;
		default:
			wallet(&w[k], orgs[k], 0, 0, 0);
			w[k].unbilled = INT64_MAX - (int64_t)(rnd() % 20000);
			break;
		}
	}
}

/* Apply evs in batches of size b (0: random), carrying what the store
 * learns; outcomes into out. With b == 1, check each outcome against the
 * wallet it met. */
static void ov_run(const vox_event *evs, size_t n, size_t b, vox_wallet *w,
		   vox_billing_outcome *out, int *overflows)
{
	static vox_known_call calls[OV_NEV];
	static vox_known_topup topups[OV_NEV];
	static vox_known_refund refunds[OV_NEV];
	size_t ncalls = 0, ntopups = 0, nrefunds = 0;
	for (size_t i = 0; i < n;) {
		size_t size = b ? b : (size_t)(rnd() % 64) + 1;
		if (i + size > n)
			size = n - i;
		const vox_event *ptrs[64];
		vox_wallet before[NORG];
		memcpy(before, w, sizeof(before));
		for (size_t k = 0; k < size; k++)
			ptrs[k] = &evs[i + k];
		vox_billing_input in = {ptrs, size, w, NORG, calls, ncalls, topups,
					ntopups, refunds, nrefunds, RATE};
		vox_billing_plan p;
		vox_billing_plan_batch(&p, &in);
		for (size_t k = 0; k < size; k++) {
			const vox_event *ev = &evs[i + k];
			out[i + k] = p.outcomes[k];
			if (b == 1) {
				int wi = 0;
				while (strcmp(w[wi].org_id.s, vox_event_org(ev)->s) != 0)
					wi++;
				__int128 bal = before[wi].balance;
				__int128 lo = INT64_MIN, hi = INT64_MAX;
				bool fits = true;
				if (ev->kind == VOX_PAYMENT_SUCCEEDED)
					fits = bal + ev->u.payment_succeeded.amount_pence <= hi;
				else if (ev->kind == VOX_PAYMENT_REFUNDED)
					fits = bal - ev->u.payment_refunded.amount_pence >= lo;
				else {
					int64_t c = vox_billing_charge(ev->u.call_ended.duration_seconds, RATE);
					__int128 room = bal + before[wi].debt_limit;
					__int128 take = room <= 0 ? 0 : (c < room ? c : room);
					fits = (__int128)before[wi].unbilled + (c - take) <= hi;
				}
				if (p.outcomes[k] == VOX_BILL_OVERFLOW) {
					assert_false(fits);
					assert_memory_equal(&before[wi], &w[wi], sizeof(w[wi]));
					(*overflows)++;
				} else if (p.outcomes[k] == VOX_BILL_APPLIED) {
					assert_true(fits);
				}
			}
			if (p.outcomes[k] != VOX_BILL_APPLIED)
				continue;
			if (ev->kind == VOX_CALL_ENDED)
				calls[ncalls++] = (vox_known_call){ev->u.call_ended.call_id,
					ev->u.call_ended.org_id, ev->u.call_ended.duration_seconds};
			else if (ev->kind == VOX_PAYMENT_SUCCEEDED)
				topups[ntopups++] = (vox_known_topup){
					ev->u.payment_succeeded.stripe_payment_intent_id,
					ev->u.payment_succeeded.org_id,
					ev->u.payment_succeeded.amount_pence, 0};
			else {
				const vox_payment_refunded *rf = &ev->u.payment_refunded;
				refunds[nrefunds++] = (vox_known_refund){rf->stripe_refund_id,
					rf->stripe_payment_intent_id, rf->amount_pence};
				for (size_t t = 0; t < ntopups; t++)
					if (topups[t].payment_intent.len == rf->stripe_payment_intent_id.len &&
					    memcmp(topups[t].payment_intent.ptr, rf->stripe_payment_intent_id.ptr,
						   rf->stripe_payment_intent_id.len) == 0)
						topups[t].refunded += rf->amount_pence;
			}
		}
		for (size_t r = 0; r < p.nledger; r++)
			assert_true((__int128)p.ledger[r].before + p.ledger[r].amount ==
				    p.ledger[r].after);
		vox_billing_plan_release(&p);
		i += size;
	}
}

static void test_overflow_over_generated_streams(void **state)
{
	(void)state;
	static vox_event evs[OV_NEV];
	static char keys[OV_NEV][24];
	int overflows = 0;
	for (int round = 0; round < 40; round++) {
		ov_stream(evs, OV_NEV, keys);
		vox_wallet start[NORG], one[NORG], batched[NORG];
		ov_wallets(start);
		vox_billing_outcome o1[OV_NEV], o2[OV_NEV];
		memcpy(one, start, sizeof(one));
		memcpy(batched, start, sizeof(batched));
		ov_run(evs, OV_NEV, 1, one, o1, &overflows);
		ov_run(evs, OV_NEV, 0, batched, o2, &overflows);
		assert_memory_equal(o1, o2, sizeof(o1));
		for (int k = 0; k < NORG; k++) {
			assert_int_equal(one[k].balance, batched[k].balance);
			assert_int_equal(one[k].unbilled, batched[k].unbilled);
		}
	}
	/* the streams did reach the edges */
	assert_true(overflows > 40);
}

static void test_invariants_over_generated_streams(void **state)
{
	(void)state;
	static vox_event evs[NEV];
	size_t refund_alerts = 0;
	for (int round = 0; round < 50; round++) {
		gen_stream(evs, NEV);
		uint64_t seed = rng;
		outcome_log one, batched, random_batches;
		rng = seed;
		run_stream(evs, NEV, 1, &one);
		rng = seed;
		run_stream(evs, NEV, 64, &batched);
		rng = seed;
		run_stream(evs, NEV, 0, &random_batches);
		/* a batch behaves exactly like its events one at a time */
		for (int k = 0; k < NORG; k++) {
			assert_int_equal(one.wallets[k].balance, batched.wallets[k].balance);
			assert_int_equal(one.wallets[k].unbilled, batched.wallets[k].unbilled);
			assert_int_equal(one.wallets[k].balance, random_batches.wallets[k].balance);
		}
		assert_memory_equal(one.outcomes, batched.outcomes, sizeof(one.outcomes));
		assert_memory_equal(one.outcomes, random_batches.outcomes, sizeof(one.outcomes));
		assert_int_equal(one.nledger, random_batches.nledger);
		/* and raises the same alerts, for the same events */
		assert_int_equal(one.nalerts, batched.nalerts);
		assert_int_equal(one.nalerts, random_batches.nalerts);
		assert_memory_equal(one.alerts, batched.alerts,
				    one.nalerts * sizeof(one.alerts[0]));
		assert_memory_equal(one.alerts, random_batches.alerts,
				    one.nalerts * sizeof(one.alerts[0]));
		refund_alerts += one.refund_alerts;
	}
	/* refunds did cross thresholds in the generated streams */
	assert_true(refund_alerts > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_charge_table),
		cmocka_unit_test(test_zero_second_call_writes_no_ledger_row),
		cmocka_unit_test(test_charge_over_the_debt_limit_records_shortfall),
		cmocka_unit_test(test_exact_fit_at_the_floor),
		cmocka_unit_test(test_duplicates_and_conflicts),
		cmocka_unit_test(test_refunds_are_capped_and_applied_in_full),
		cmocka_unit_test(test_unknown_org),
		cmocka_unit_test(test_low_balance_alert_once_per_crossing),
		cmocka_unit_test(test_low_balance_alert_on_a_refund),
		cmocka_unit_test(test_alert_ids_are_deterministic),
		cmocka_unit_test(test_invariants_over_generated_streams),
		cmocka_unit_test(test_overflow_is_refused_and_moves_nothing),
		cmocka_unit_test(test_keys_of_another_org),
		cmocka_unit_test(test_overflow_over_generated_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
