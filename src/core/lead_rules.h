/*
 * lead_rules.h - the lead rules of vox-leads as pure functions: the status a
 * score implies, the urgency of a hot lead, which of two scores of one
 * contact wins, and the fold of a batch to one winning score per contact.
 */
#ifndef VOX_LEADS_RULES_H
#define VOX_LEADS_RULES_H

#include "core/common.h"
#include "vox/event.h"

#define VOX_LEADS_HOT 70  /* default hot threshold */
#define VOX_LEADS_WARM 40

/* The status to store: the event's own when given, else >= 70 hot,
 * >= 40 warm, else cold. */
vox_lead_status vox_leads_status(int64_t score, vox_lead_status given);

/* "hot", "warm", "cold", "contacted". */
const char *vox_leads_status_name(vox_lead_status s);

/* Urgency of a hot-lead alert: high at >= 80, else medium. */
vox_urgency vox_leads_urgency(int64_t score);

/* True when a score made at `a` may replace one made at `b`: never an
 * older one (equal times: the later event wins). */
bool vox_leads_newer(const vox_time *a, const vox_time *b);

#endif
