/*
 * vox-billing - prepaid wallets: per-call charges, top-ups, refunds, the ledger and wallet alerts.
 * Wiring only: the actor shell (io/actor.c) owns the lifecycle.
 */
#include "core/common.h"

#include "io/actor.h"

int main(int argc, char **argv)
{
	static const vox_actor_def def = {
		.name = "vox-billing",
		.description = "Prepaid wallets: per-call charges, top-ups, refunds, the ledger and wallet alerts",
	};
	return vox_actor_main(&def, argc, argv);
}
