/*
 * vox-billing - prepaid wallets: per-call charges, top-ups, refunds, the
 * ledger and wallet alerts; answers billing.authorize.
 * Wiring only: the runtime owns the loop, store.c the SQL, core/billing.c
 * the money rules.
 */
#include "core/common.h"

#include "actors/billing/billing.h"
#include "io/actor.h"

#define BC(f) offsetof(vox_billing_config, f)

static const vox_cfg_var billing_vars[] = {
	{"VOX_RATE_PER_MINUTE", VOX_CFG_INT, "70", 1, 100000, NULL,
	 BC(rate_per_minute), "price of a call minute in the wallet's minor unit"},
	{"VOX_WEBHOOK_RETENTION_H", VOX_CFG_INT, "24", 1, 87600, NULL,
	 BC(retention_h), "processed_webhook_events kept this long"},
	{"VOX_WEBHOOK_CLEANUP_S", VOX_CFG_INT, "300", 1, 86400, NULL,
	 BC(cleanup_interval_s), "how often the retention cleanup runs"},
	{"VOX_HOLD_MINUTES", VOX_CFG_INT, "5", 1, 1440, NULL, BC(hold_minutes),
	 "minutes of the rate a call's hold reserves (billing.authorize with hold)"},
	{"VOX_HOLD_EXPIRY_S", VOX_CFG_INT, "7200", 60, 604800, NULL,
	 BC(hold_expiry_s), "a hold its call never settled (no call.ended)"
	 " expires after this"},
};

static vox_billing_ctx billing;

static vox_status setup(vox_actor *a, void *ctx)
{
	vox_billing_ctx *bc = ctx;
	/* one connection: the endpoint has one delivery thread */
	bc->pool = vox_pgpool_new(vox_actor_cfg(a)->pg_dsn, 1, 5000, NULL, NULL);
	return vox_service_add_endpoint(vox_actor_service(a), "authorize",
					"billing.authorize.*",
					vox_billing_authorize, bc);
}

static void teardown(vox_actor *a, void *ctx)
{
	vox_billing_ctx *bc = ctx;
	VOX_UNUSED(a);
	/* drain the endpoint first: no request may run past the pool */
	vox_service_stop(vox_actor_service(a));
	vox_pgpool_free(bc->pool);
	bc->pool = NULL;
}

int main(int argc, char **argv)
{
	static const vox_input inputs[] = {
		{"vox-billing-calls", "call.ended.*"},
		{"vox-billing-payments", "payment.*.*"},
	};
	static const vox_actor_def def = {
		.name = "vox-billing",
		.description = "Prepaid wallets: per-call charges, top-ups, refunds,"
			       " the ledger and wallet alerts",
		.inputs = inputs,
		.ninputs = VOX_NELEM(inputs),
		.handler = {vox_billing_prepare, vox_billing_apply, vox_billing_tick, &billing},
		.vars = billing_vars,
		.nvars = VOX_NELEM(billing_vars),
		.cfg = &billing.cfg,
		.setup = setup,
		.teardown = teardown,
		.ctx = &billing,
	};
	return vox_actor_main(&def, argc, argv);
}
