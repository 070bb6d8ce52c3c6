/*
 * handler.h - the vox-calls batch handler the runtime calls: it refuses
 * events of unknown organizations (404) or that name another tenant's call
 * (409), folds the rest with core/calls_plan.c, and writes calls, contacts and the
 * idempotency records with a fixed number of set-based statements per
 * batch, whatever its size.
 */
#ifndef VOX_CALLS_HANDLER_H
#define VOX_CALLS_HANDLER_H

#include "io/runtime.h"

/* vox_handler.prepare: prepare the handler's statements on a fresh
 * connection. ctx is unused (NULL). VOX_E_UNAVAILABLE when one fails (the
 * runtime reconnects and tries again). */
vox_status vox_calls_prepare(void *ctx, PGconn *c) VOX_MUST_CHECK;

/*
 * vox_handler.apply: apply items (call.started / call.ended, stream order)
 * inside the runtime's open transaction. Refused items are marked with
 * vox_item_reject and leave no effect. Returns VOX_OK, or the status of
 * the statement that failed (the runtime rolls back and retries or
 * isolates).
 */
vox_status vox_calls_apply(void *ctx, vox_tx *tx, vox_item *items, size_t n) VOX_MUST_CHECK;

#endif
