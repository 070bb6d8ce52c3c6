/*
 * vox-leads - lead scores on contacts, and hot-lead alerts emitted once
 * per (org, contact, call) through the outbox.
 * Wiring only: the runtime owns the loop, handler.c the SQL and core/lead_rules.c
 * the lead rules.
 */
#include "core/common.h"

#include "actors/leads/leads.h"
#include "io/actor.h"

static const vox_cfg_var leads_vars[] = {
	{"VOX_HOT_LEAD_THRESHOLD", VOX_CFG_INT, "70", 0, 100, NULL,
	 offsetof(vox_leads_config, hot_threshold),
	 "score at or above which a lead is hot (an org may override it with"
	 " its org_feature_flags row 'hot_lead_threshold')"},
};

static vox_leads_ctx leads;

int main(int argc, char **argv)
{
	static const vox_input inputs[] = {
		{"vox-leads", "lead.scored.*"},
	};
	static const vox_actor_def def = {
		.name = "vox-leads",
		.description = "Lead scores and hot-lead alerts",
		.inputs = inputs,
		.ninputs = VOX_NELEM(inputs),
		.handler = {vox_leads_prepare, vox_leads_apply, NULL, &leads},
		.vars = leads_vars,
		.nvars = VOX_NELEM(leads_vars),
		.cfg = &leads.cfg,
	};
	return vox_actor_main(&def, argc, argv);
}
