/*
 * authorize.h - the request of billing.authorize.<org_id>, read with the
 * schema decoder (core/schema.h) like every other input of vox: no
 * allocation, no recursion, every length checked against the bytes left.
 * Pure: vox-billing answers from it, the unit tests and the fuzz target
 * call it directly. The rules are in subjects/billing.authorize.md.
 */
#ifndef VOX_AUTHORIZE_H
#define VOX_AUTHORIZE_H

#include "core/common.h"
#include "vox/event.h"

/* Largest request accepted; a longer one is refused with 413. */
#define VOX_AUTHORIZE_MAX_REQUEST 4096

typedef struct vox_authorize_req {
	vox_uuid call_id; /* lowercase; s[0] == '\0' when absent or nil */
	bool hold;        /* place a hold for call_id (required then) */
} vox_authorize_req;

/*
 * Read a request of len bytes by the rules of every request
 * (core/schema.h): an empty body is `{}`; otherwise one msgpack map with
 * string keys and nothing after it; `call_id`, when present and not nil,
 * is a UUID (any case, normalised) and may appear once; `hold`, when
 * present and not nil, is a boolean, and true needs a call_id (missing
 * otherwise: a hold is the call's); any other key is skipped. VOX_OK fills *out; on failure *out is untouched and *err says
 * why: VOX_E_TOO_LARGE (413) over VOX_AUTHORIZE_MAX_REQUEST bytes,
 * VOX_E_DECODE or VOX_E_INVALID (400) for anything else, naming the field
 * ("call_id: must be a UUID ...").
 */
vox_status vox_authorize_parse(vox_authorize_req *out, const void *data,
			       size_t len, vox_error *err) VOX_MUST_CHECK;

#endif
