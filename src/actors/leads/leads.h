/*
 * leads.h - vox-leads' handler and configuration, shared by main.c
 * (wiring) and handler.c (SQL).
 */
#ifndef VOX_ACTOR_LEADS_H
#define VOX_ACTOR_LEADS_H

#include "core/common.h"

#include "io/runtime.h"

typedef struct vox_leads_config {
	int64_t hot_threshold; /* VOX_HOT_LEAD_THRESHOLD */
} vox_leads_config;

typedef struct vox_leads_ctx {
	vox_leads_config cfg;
} vox_leads_ctx;

/* Prepare the batch statements on a new connection. */
vox_status vox_leads_prepare(void *ctx, PGconn *c) VOX_MUST_CHECK;

/* The runtime handler: apply a batch of lead.scored events. */
vox_status vox_leads_apply(void *ctx, vox_tx *tx, vox_item *items, size_t n) VOX_MUST_CHECK;

#endif
