/*
 * billing.h - vox-billing's handler, its billing.authorize endpoint and
 * its retention chore, shared by main.c (wiring) and store.c (SQL).
 */
#ifndef VOX_ACTOR_BILLING_H
#define VOX_ACTOR_BILLING_H

#include "core/common.h"

#include "io/pgpool.h"
#include "io/runtime.h"
#include "io/service.h"

typedef struct vox_billing_config {
	int64_t rate_per_minute;    /* VOX_RATE_PER_MINUTE */
	int64_t retention_h;        /* VOX_WEBHOOK_RETENTION_H */
	int64_t cleanup_interval_s; /* VOX_WEBHOOK_CLEANUP_S */
	int64_t hold_minutes;       /* VOX_HOLD_MINUTES */
	int64_t hold_expiry_s;      /* VOX_HOLD_EXPIRY_S */
} vox_billing_config;

typedef struct vox_billing_ctx {
	vox_billing_config cfg;
	vox_pgpool *pool;       /* billing.authorize's connection (setup) */
	int64_t next_cleanup;   /* unix time of the next retention run */
} vox_billing_ctx;

/* Prepare the batch path's statements on a new connection. */
vox_status vox_billing_prepare(void *ctx, PGconn *c) VOX_MUST_CHECK;

/* The runtime handler: apply a batch of call.ended / payment.* events. */
vox_status vox_billing_apply(void *ctx, vox_tx *tx, vox_item *items, size_t n) VOX_MUST_CHECK;

/* Retention of processed_webhook_events, one instance at a time, and
 * the expiry of holds never settled (every round, exactly once each). */
void vox_billing_tick(void *ctx, PGconn *c);

/* billing.authorize.<org_id>: allowed while a minute can be paid from
 * balance + debt limit - active holds; with hold, places the call's. */
void vox_billing_authorize(vox_request *req, void *ctx);

#endif
