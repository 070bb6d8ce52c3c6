/*
 * vox-calls - calls and contacts from call.started and call.ended events.
 * Wiring only: the actor shell (io/actor.c) owns the lifecycle, the
 * runtime the consume loop, handler.c the writes and core/calls_plan.c the merging.
 */
#include "core/common.h"

#include "actors/calls/handler.h"
#include "io/actor.h"

int main(int argc, char **argv)
{
	/* One consumer for both kinds: a call's events stay in stream order
	 * and one batch can fold a call.started with its call.ended. */
	static const vox_input inputs[] = {
		{"vox-calls", "call.*.*"},
	};
	static const vox_actor_def def = {
		.name = "vox-calls",
		.description = "Calls and contacts from call.started and"
			       " call.ended events",
		.inputs = inputs,
		.ninputs = VOX_NELEM(inputs),
		.handler = {
			.prepare = vox_calls_prepare,
			.apply = vox_calls_apply,
			.ctx = NULL,
		},
	};
	return vox_actor_main(&def, argc, argv);
}
