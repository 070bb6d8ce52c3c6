/*
 * calls_plan.h - the pure half of vox-calls: folding a batch of call.started and
 * call.ended events into one merged record per call, with the same merge
 * rules the SQL applies to the stored row, so that the handler writes a
 * whole batch with a fixed number of statements. No libpq, no I/O: the
 * unit tests drive it directly.
 */
#ifndef VOX_CALLS_PLAN_H
#define VOX_CALLS_PLAN_H

#include "core/buf.h"
#include "core/common.h"
#include "vox/event.h"

/*
 * One call after folding every event of the batch that names it, in stream
 * order. Applying this record to a stored row (see handler.c) gives the
 * same row as applying the events one by one:
 *
 *  - fill fields (direction, numbers, vapi_call_id, caller_name,
 *    contact_id) keep the first value seen; later events only fill what is
 *    still absent;
 *  - the first call.ended wins whole (a call is terminal after it);
 *  - created_at is the proposal of the first event, replaced by that of the
 *    first event that brings a direction when none was known before (a
 *    late call.started corrects the estimate of an early call.ended).
 *
 * Strings are views into the events (borrowed: valid while they are).
 */
typedef struct vox_calls_rec {
	vox_uuid call_id;
	vox_uuid org_id;
	vox_direction direction;  /* VOX_DIR_NONE: not known from this batch */
	vox_str from_number;      /* ptr NULL: absent */
	vox_str to_number;
	vox_str vapi_call_id;
	vox_str caller_name;
	vox_uuid contact_id;      /* given by a call.started; "" none */
	vox_time created_at;      /* proposed creation time (always set) */
	const vox_call_ended *ended; /* the first call.ended, or NULL */
	/* Derived after folding: the other party's number (from_number for
	 * inbound, to_number for outbound), NULL when unknown, and whether a
	 * contact may be created for it (inbound calls only). */
	vox_str contact_phone;
	bool create_contact;
	size_t nevents;           /* events folded into this record */
} vox_calls_rec;

/* The records of one batch, sorted by call_id (the order rows are written
 * and locked in, the same in every instance). Embedded struct:
 * vox_calls_plan_release frees it. */
typedef struct vox_calls_plan {
	vox_calls_rec *recs;
	size_t n;
} vox_calls_plan;

/*
 * Fold n events (stream order). evs[i] == NULL means "skip this one" (it
 * was refused before planning). verdict[i] receives, for every i:
 *   VOX_OK            folded into its call's record
 *   VOX_E_CONFLICT    its call_id already belongs to another org in this
 *                     batch (the first event seen decides): not folded
 *   VOX_E_INVALID     not a call.started / call.ended: not folded
 * and VOX_OK for skipped entries (the caller already refused them).
 * *out is overwritten; release it with vox_calls_plan_release.
 */
void vox_calls_plan_build(vox_calls_plan *out, const vox_event *const *evs,
			  size_t n, vox_status *verdict);

/* Free the records; the plan is empty afterwards. Accepts an empty plan. */
void vox_calls_plan_release(vox_calls_plan *p);

/* The record of call_id, or NULL (binary search). */
const vox_calls_rec *vox_calls_plan_find(const vox_calls_plan *p,
					 const char *call_id);

#endif
