/*
 * vox-vault - encrypted provider credentials for each organization.
 * Wiring only: the actor shell (io/actor.c) owns the lifecycle.
 */
#include "core/common.h"

#include "io/actor.h"

int main(int argc, char **argv)
{
	static const vox_actor_def def = {
		.name = "vox-vault",
		.description = "Encrypted provider credentials for each organization",
	};
	return vox_actor_main(&def, argc, argv);
}
