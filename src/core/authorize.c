/*
 * authorize.c - billing.authorize's request (authorize.h): two fields of
 * the schema decoder (core/schema.h), so the limits of every other input
 * hold here too (bounded depth, no allocation whatever the length
 * prefixes claim).
 */
#include "core/authorize.h"

#include "core/contract.h"
#include "core/schema.h"

static const vox_field fields[] = {
	{"call_id", VOX_F_UUID, false, 0, 0, NULL,
	 offsetof(vox_authorize_req, call_id), 0, NULL},
	{"hold", VOX_F_BOOL, false, 0, 0, NULL,
	 offsetof(vox_authorize_req, hold), 0, NULL},
};

static const vox_schema schema = {fields, VOX_NELEM(fields),
				  VOX_AUTHORIZE_MAX_REQUEST, 0, true,
				  "request"};

const vox_schema *vox_authorize_schema(void)
{
	return &schema;
}

vox_status vox_authorize_parse(vox_authorize_req *out, const void *data,
			       size_t len, vox_error *err)
{
	vox_authorize_req req;
	memset(&req, 0, sizeof(req));
	vox_status st = vox_schema_decode(&req, NULL, &schema, VOX_SCHEMA_ALL,
					  data, len, NULL, err);
	if (st == VOX_OK && req.hold && !req.call_id.s[0])
		st = vox_error_set(err, VOX_E_INVALID, "missing", "call_id",
				   "required with hold: a hold is the call's");
	if (st == VOX_OK)
		*out = req;
	return st;
}
