/*
 * vox-leads - lead scores and hot-lead alerts.
 * Wiring only: the actor shell (io/actor.c) owns the lifecycle.
 */
#include "core/common.h"

#include "io/actor.h"

int main(int argc, char **argv)
{
	static const vox_actor_def def = {
		.name = "vox-leads",
		.description = "Lead scores and hot-lead alerts",
	};
	return vox_actor_main(&def, argc, argv);
}
