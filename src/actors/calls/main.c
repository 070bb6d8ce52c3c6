/*
 * vox-calls - calls and contacts from call.started and call.ended events.
 * Wiring only: the actor shell (io/actor.c) owns the lifecycle.
 */
#include "core/common.h"

#include "io/actor.h"

int main(int argc, char **argv)
{
	static const vox_actor_def def = {
		.name = "vox-calls",
		.description = "Calls and contacts from call.started and call.ended events",
	};
	return vox_actor_main(&def, argc, argv);
}
