/*
 * vox-query - read-only, tenant-scoped answers for dashboards and services.
 * Wiring only: the actor shell (io/actor.c) owns the lifecycle.
 */
#include "core/common.h"

#include "io/actor.h"

int main(int argc, char **argv)
{
	static const vox_actor_def def = {
		.name = "vox-query",
		.description = "Read-only, tenant-scoped answers for dashboards and services",
	};
	return vox_actor_main(&def, argc, argv);
}
