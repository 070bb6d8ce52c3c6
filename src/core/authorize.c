/*
 * authorize.c - billing.authorize's request (authorize.h). It replaced a
 * parse with msgpack-c's allocating unpacker: the same limits as the
 * event and query decoders now hold here too (bounded depth, no
 * allocation whatever the length prefixes claim).
 */
#include "core/authorize.h"

#include "core/codec.h"
#include "core/mp.h"

static vox_status refuse(char *err, size_t errlen, vox_status st,
			 const char *fmt, ...) VOX_PRINTF(4, 5);

static vox_status refuse(char *err, size_t errlen, vox_status st,
			 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return st;
}

vox_status vox_authorize_parse(vox_authorize_req *out, const void *data,
			       size_t len, char *err, size_t errlen)
{
	vox_authorize_req req;
	vox_mp r;
	uint32_t n = 0;
	bool seen = false;
	memset(&req, 0, sizeof(req));
	if (len > VOX_AUTHORIZE_MAX_REQUEST)
		return refuse(err, errlen, VOX_E_TOO_LARGE,
			      "request: larger than %d bytes",
			      VOX_AUTHORIZE_MAX_REQUEST);
	if (len == 0)
		goto done; /* an empty body is taken as {} */
	vox_mp_init(&r, data, len);
	if (vox_mp_peek(&r) != VOX_MP_MAP)
		return refuse(err, errlen, VOX_E_INVALID,
			      "request: must be a msgpack map");
	if (vox_mp_map(&r, &n) != VOX_MP_OK)
		return refuse(
			err, errlen, VOX_E_INVALID,
			"request: not valid msgpack (the map is cut short)");
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *v = NULL;
		uint32_t kl, vl = 0;
		if (vox_mp_peek(&r) != VOX_MP_STR)
			return refuse(err, errlen, VOX_E_INVALID,
				      "request: keys must be strings");
		if (vox_mp_str(&r, &k, &kl) != VOX_MP_OK)
			return refuse(err, errlen, VOX_E_INVALID,
				      "request: not valid msgpack (a key is "
				      "cut short)");
		bool is_call = kl == 7 && memcmp(k, "call_id", 7) == 0;
		if (is_call && seen)
			return refuse(err, errlen, VOX_E_INVALID,
				      "call_id: appears twice");
		seen |= is_call;
		if (!is_call || vox_mp_peek(&r) == VOX_MP_NIL) {
			/* unknown keys are ignored, nil is absent */
			vox_mp_err e = vox_mp_skip(&r);
			if (e == VOX_MP_TOO_DEEP)
				return refuse(
					err, errlen, VOX_E_INVALID,
					"request: nested deeper than %d levels",
					VOX_MP_MAX_DEPTH);
			if (e != VOX_MP_OK)
				return refuse(err, errlen, VOX_E_INVALID,
					      "request: not valid msgpack");
			continue;
		}
		vox_mp_type t = vox_mp_peek(&r);
		vox_mp_err e =
			t == VOX_MP_STR ? vox_mp_str(&r, &v, &vl) : VOX_MP_TYPE;
		if (e == VOX_MP_TRUNCATED)
			return refuse(err, errlen, VOX_E_INVALID,
				      "request: not valid msgpack (call_id is "
				      "cut short)");
		if (e != VOX_MP_OK || !vox_uuid_parse(v, vl, &req.call_id))
			return refuse(err, errlen, VOX_E_INVALID,
				      "call_id: must be a UUID (36 characters, "
				      "8-4-4-4-12 hex)");
	}
	if (vox_mp_left(&r) != 0)
		return refuse(err, errlen, VOX_E_INVALID,
			      "request: %zu bytes after the map",
			      vox_mp_left(&r));
done:
	*out = req;
	return VOX_OK;
}
