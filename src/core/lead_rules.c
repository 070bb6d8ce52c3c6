/*
 * lead_rules.c - lead status, urgency and ordering (see lead_rules.h).
 */
#include "core/lead_rules.h"

vox_lead_status vox_leads_status(int64_t score, vox_lead_status given)
{
	if (given != VOX_LEAD_NONE)
		return given;
	if (score >= VOX_LEADS_HOT)
		return VOX_LEAD_HOT;
	if (score >= VOX_LEADS_WARM)
		return VOX_LEAD_WARM;
	return VOX_LEAD_COLD;
}

const char *vox_leads_status_name(vox_lead_status s)
{
	switch (s) {
	case VOX_LEAD_HOT: return "hot";
	case VOX_LEAD_WARM: return "warm";
	case VOX_LEAD_CONTACTED: return "contacted";
	default: return "cold";
	}
}

vox_urgency vox_leads_urgency(int64_t score)
{
	return score >= 80 ? VOX_URGENCY_HIGH : VOX_URGENCY_MEDIUM;
}

bool vox_leads_newer(const vox_time *a, const vox_time *b)
{
	if (!b->set)
		return true;
	if (a->sec != b->sec)
		return a->sec > b->sec;
	return a->nsec >= b->nsec;
}
