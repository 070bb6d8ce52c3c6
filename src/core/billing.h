/*
 * billing.h - the money rules of vox as a pure function: given the wallets
 * a batch touches (read under their row locks), what the store already
 * knows about the batch's idempotency keys, and the batch's events in
 * stream order, plan every ledger row, call charge, wallet update and
 * alert. No I/O: vox-billing reads the inputs and writes the plan; the
 * unit tests drive it with generated event sequences.
 *
 * Rules (see the README's "Money" section):
 *   charge(d) = ceil(d * rate / 60); a call of 0 s writes no ledger row;
 *   a charge never takes the balance below -debt_limit: what does not fit
 *   is recorded as shortfall and added to unbilled;
 *   top-ups are keyed by payment intent, refunds by refund id and capped
 *   by their payment intent, charges by call id; the same key with the
 *   same fields is a no-op, with other fields a conflict;
 *   alert.low_balance fires once per crossing, when a debit (a charge or
 *   a refund) takes the balance from at or above the threshold to below
 *   it; alert.debt_limit when a charge leaves a shortfall, once per
 *   crossing of the floor;
 *   money is int64 (the bigint columns): an event whose effect would take
 *   a balance or an org's unbilled total past what int64 holds is refused
 *   (overflow) and moves nothing, never computed with a wrapped value.
 */
#ifndef VOX_BILLING_H
#define VOX_BILLING_H

#include "core/common.h"
#include "vox/event.h"

/* The charge of a call of d seconds at rate per minute, rounded up. */
int64_t vox_billing_charge(int64_t duration_seconds, int64_t rate_per_minute);

/* balance + debt_limit (debt_limit >= 0): what a call may still take, as
 * billing.authorize and query.wallet report it. Saturates at INT64_MAX
 * instead of overflowing. */
int64_t vox_billing_available(int64_t balance, int64_t debt_limit);

/* balance + debt_limit - held (held >= 0: the active credit holds): what
 * a new call may use, billing.authorize's and query.wallet's
 * available_pence. Saturates at both ends. */
int64_t vox_billing_spendable(int64_t balance, int64_t debt_limit, int64_t held);

typedef struct vox_wallet {
	vox_uuid org_id;
	int64_t balance;
	int64_t debt_limit;
	int64_t unbilled;
	int64_t low_balance;  /* alert threshold */
	bool low_alerted;     /* an alert of the current crossing went out */
	bool debt_alerted;
	bool changed;         /* set by the planner */
} vox_wallet;

/* Keys the store already holds (looked up for the batch's keys). */
typedef struct vox_known_call {
	vox_uuid call_id;
	vox_uuid org_id;
	int64_t duration_seconds;
} vox_known_call;

typedef struct vox_known_topup {
	vox_str payment_intent;
	vox_uuid org_id;
	int64_t amount;
	int64_t refunded; /* sum of its refunds so far */
} vox_known_topup;

typedef struct vox_known_refund {
	vox_str refund_id;
	vox_str payment_intent;
	int64_t amount;
} vox_known_refund;

typedef enum vox_billing_outcome {
	VOX_BILL_APPLIED = 0, /* money moved (or a 0 s call was recorded) */
	VOX_BILL_DUPLICATE,   /* same key, same fields: no-op, ack */
	VOX_BILL_CONFLICT,    /* same key, other fields: 409 */
	VOX_BILL_OTHER_ORG,   /* same key, held by another org: 409 */
	VOX_BILL_UNKNOWN_ORG, /* 404 */
	VOX_BILL_NOT_FOUND,   /* refund of a payment never credited: 404 */
	VOX_BILL_OVER_REFUND, /* refunds would exceed the payment: 409 */
	VOX_BILL_OVERFLOW,    /* would take balance (top-up, refund) or
			       * unbilled (charge) past int64: 409 */
	VOX_BILL_IGNORED,     /* not a billing event */
} vox_billing_outcome;

typedef enum vox_ledger_type {
	VOX_LEDGER_TOPUP,
	VOX_LEDGER_DEDUCTION,
	VOX_LEDGER_REFUND,
} vox_ledger_type;

typedef struct vox_ledger_row {
	size_t wallet;     /* index into the wallets array */
	size_t item;       /* index of the event that caused it */
	vox_ledger_type type;
	int64_t amount;    /* signed: + top-up, - deduction, - refund */
	int64_t before;
	int64_t after;
	int64_t shortfall; /* deductions only */
} vox_ledger_row;

typedef struct vox_call_charge {
	size_t wallet;
	size_t item;
	int64_t duration_seconds;
	int64_t charge;
	int64_t deducted;
	int64_t shortfall;
} vox_call_charge;

typedef struct vox_billing_alert {
	vox_event_kind kind; /* VOX_ALERT_LOW_BALANCE or VOX_ALERT_DEBT_LIMIT */
	size_t wallet;
	size_t item;         /* the debit that caused it: a call.ended
			      * (both kinds) or a payment.refunded
			      * (low_balance only) */
	int64_t balance;
	int64_t amount;      /* threshold or shortfall */
} vox_billing_alert;

typedef struct vox_billing_plan {
	vox_billing_outcome *outcomes; /* one per event */
	vox_ledger_row *ledger;
	size_t nledger;
	vox_call_charge *charges;
	size_t ncharges;
	vox_billing_alert *alerts;
	size_t nalerts;
} vox_billing_plan;

typedef struct vox_billing_input {
	const vox_event *const *events; /* stream order */
	size_t nevents;
	vox_wallet *wallets;            /* updated in place; sorted or not */
	size_t nwallets;
	const vox_known_call *calls;
	size_t ncalls;
	const vox_known_topup *topups;
	size_t ntopups;
	const vox_known_refund *refunds;
	size_t nrefunds;
	int64_t rate_per_minute;
} vox_billing_input;

/*
 * Plan the batch. The wallets are updated to their final state (with
 * changed set on those that moved); out receives the rows, all allocated
 * (free with vox_billing_plan_release). Never fails: every event gets an
 * outcome.
 */
void vox_billing_plan_batch(vox_billing_plan *out,
			    const vox_billing_input *in);

void vox_billing_plan_release(vox_billing_plan *p);

/* "conflict", "unknown_org", "overflow", ... for dead letters; NULL when
 * applied. */
const char *vox_billing_outcome_code(vox_billing_outcome o);

/*
 * A deterministic UUID for an alert: the same (kind, org, cause) always
 * gives the same id, so a retried batch emits the very same alert and the
 * outbox and JetStream's duplicate window keep one copy. The cause is the
 * debit's own key: the call_id text of a charge, "refund:" and the
 * stripe_refund_id of a refund (the prefix keeps a refund id that looks
 * like a call id from ever sharing an alert id with that call's).
 */
void vox_billing_alert_id(vox_uuid *out, vox_event_kind kind,
			  const vox_uuid *org, const char *cause, size_t causelen);

#endif
