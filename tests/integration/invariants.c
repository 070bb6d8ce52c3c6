/*
 * invariants.c - the money invariants of billing.md as SQL (invariants.h).
 */
#include "core/common.h"

#include "harness.h"
#include "invariants.h"

const th_invariant th_invariants[] = {
	{"every organization has its opening balance recorded",
	 "SELECT count(*) FROM organizations o WHERE NOT EXISTS"
	 " (SELECT 1 FROM it_opening p WHERE p.org_id = o.id)"},
	{"1: balance = opening + sum(ledger amounts)",
	 "SELECT count(*) FROM organizations o JOIN it_opening p ON p.org_id = o.id"
	 " WHERE o.wallet_balance_pence <> p.opening + COALESCE((SELECT sum(t.amount_pence)"
	 "  FROM credit_transactions t WHERE t.org_id = o.id), 0)"},
	{"1: ledger chain in seq order (first before = opening, before = previous"
	 " after, after = before + amount, created_at non-decreasing)",
	 "WITH c AS (SELECT t.org_id, t.seq, t.amount_pence a,"
	 "  t.balance_before_pence b, t.balance_after_pence af, t.created_at at,"
	 "  lag(t.balance_after_pence) OVER w AS prev_after,"
	 "  lag(t.created_at) OVER w AS prev_at, row_number() OVER w AS rn"
	 "  FROM credit_transactions t WINDOW w AS (PARTITION BY t.org_id ORDER BY t.seq))"
	 " SELECT count(*) FROM c LEFT JOIN it_opening p ON p.org_id = c.org_id"
	 " WHERE (c.rn = 1 AND c.b IS DISTINCT FROM p.opening)"
	 "  OR (c.rn > 1 AND c.b IS DISTINCT FROM c.prev_after)"
	 "  OR c.af IS DISTINCT FROM c.b + c.a"
	 "  OR (c.rn > 1 AND c.at < c.prev_at)"},
	{"2: no deduction ends below -debt_limit",
	 "SELECT count(*) FROM credit_transactions t JOIN organizations o ON o.id = t.org_id"
	 " WHERE t.type = 'deduction' AND t.amount_pence < 0"
	 " AND t.balance_after_pence < -o.debt_limit_pence"},
	{"3: call_charges: charge = ceil(d*70/60) = deducted + shortfall",
	 "SELECT count(*) FROM call_charges c WHERE c.rate_per_minute <> 70"
	 " OR c.charge_pence <> (c.duration_seconds * 70 + 59) / 60"
	 " OR c.deducted_pence + c.shortfall_pence <> (c.duration_seconds * 70 + 59) / 60"},
	{"3: one matching deduction row per charged call (amount = -deducted,"
	 " shortfall equal, same org), none for a charge of 0",
	 "SELECT count(*) FROM call_charges c WHERE"
	 " (SELECT count(*) FROM credit_transactions t WHERE t.type = 'deduction'"
	 "   AND t.call_id = c.call_id) <> CASE WHEN c.charge_pence > 0 THEN 1 ELSE 0 END"
	 " OR EXISTS (SELECT 1 FROM credit_transactions t WHERE t.type = 'deduction'"
	 "   AND t.call_id = c.call_id AND (t.amount_pence <> -c.deducted_pence"
	 "   OR t.shortfall_pence <> c.shortfall_pence OR t.org_id <> c.org_id))"},
	{"3: every deduction row belongs to a billed call",
	 "SELECT count(*) FROM credit_transactions t WHERE t.type = 'deduction'"
	 " AND NOT EXISTS (SELECT 1 FROM call_charges c WHERE c.call_id = t.call_id)"},
	{"3: only deductions carry a shortfall",
	 "SELECT count(*) FROM credit_transactions WHERE type <> 'deduction'"
	 " AND shortfall_pence <> 0"},
	{"4: one top-up per payment intent",
	 "SELECT count(*) FROM (SELECT stripe_payment_intent_id FROM credit_transactions"
	 " WHERE type = 'topup' GROUP BY 1 HAVING count(*) > 1) d"},
	{"4: refunds of a payment intent never exceed it",
	 "SELECT count(*) FROM credit_transactions t WHERE t.type = 'topup'"
	 " AND t.amount_pence < COALESCE((SELECT -sum(r.amount_pence)"
	 "  FROM credit_transactions r WHERE r.type = 'refund'"
	 "  AND r.stripe_payment_intent_id = t.stripe_payment_intent_id), 0)"},
	{"4: every refund refunds a top-up of its own org",
	 "SELECT count(*) FROM credit_transactions r WHERE r.type = 'refund'"
	 " AND NOT EXISTS (SELECT 1 FROM credit_transactions t WHERE t.type = 'topup'"
	 "  AND t.stripe_payment_intent_id = r.stripe_payment_intent_id"
	 "  AND t.org_id = r.org_id)"},
	{"4: one ledger row per refund id",
	 "SELECT count(*) FROM (SELECT stripe_refund_id FROM credit_transactions"
	 " WHERE type = 'refund' GROUP BY 1 HAVING count(*) > 1) d"},
	{"4: unbilled_pence = sum of call_charges.shortfall_pence",
	 "SELECT count(*) FROM organizations o WHERE o.unbilled_pence <>"
	 " COALESCE((SELECT sum(c.shortfall_pence) FROM call_charges c"
	 "  WHERE c.org_id = o.id), 0)"},
	{"5: held >= 0, and no hold of a charged call is still active (call.ended"
	 " settles it in the charge's transaction)",
	 "SELECT (SELECT count(*) FROM credit_holds WHERE amount_pence < 0)"
	 " + (SELECT count(*) FROM credit_holds h JOIN call_charges c"
	 "    ON c.call_id = h.call_id AND c.org_id = h.org_id WHERE h.state = 'active')"},
	{"5: a held call's charge is its duration's, whatever the hold was",
	 "SELECT count(*) FROM credit_holds h JOIN call_charges c"
	 " ON c.call_id = h.call_id AND c.org_id = h.org_id"
	 " WHERE c.charge_pence <> (c.duration_seconds * c.rate_per_minute + 59) / 60"},
};
const size_t th_ninvariants = VOX_NELEM(th_invariants);

int th_invariants_broken(PGconn *c, FILE *out)
{
	int bad = 0;
	for (size_t i = 0; i < th_ninvariants; i++) {
		long long v = th_pg_int(c, th_invariants[i].sql);
		if (v != 0) {
			fprintf(out, "INVARIANT VIOLATED (%lld rows): %s\n", v,
				th_invariants[i].name);
			bad++;
		}
	}
	return bad;
}
