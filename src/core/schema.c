/*
 * schema.c - the table-driven decoder of every input (schema.h), and the
 * value checks it is built from: UUIDs, E.164 numbers, timestamps, text.
 *
 * Decoding is a single left-to-right pass over the map: the first problem
 * found is the one reported.
 */
#include "core/schema.h"

#include "core/buf.h"
#include "core/codec.h"

#include <math.h>

/* Timestamps must fall in [2000-01-01, 2100-01-01). */
#define TS_MIN 946684800LL
#define TS_MAX 4102444800LL

#define fail vox_error_set

vox_status vox_mp_fail(vox_error *err, vox_mp_err e, const char *name)
{
	switch (e) {
	case VOX_MP_TRUNCATED:
		return fail(err, VOX_E_DECODE, "truncated", name,
			    "message ends in the middle of a value");
	case VOX_MP_MALFORMED:
		return fail(err, VOX_E_DECODE, "malformed", name,
			    "reserved byte 0xc1 is not msgpack");
	case VOX_MP_TOO_DEEP:
		return fail(err, VOX_E_DECODE, "too_deep", name,
			    "nested deeper than %d levels", VOX_MP_MAX_DEPTH);
	case VOX_MP_RANGE:
		return fail(err, VOX_E_INVALID, "out_of_range", name,
			    "integer does not fit in 64 bits");
	default:
		return fail(err, VOX_E_INVALID, "wrong_type", name,
			    "unexpected type");
	}
}

/* ---- value checks ------------------------------------------------------ */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

bool vox_uuid_parse(vox_uuid *out, const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!is_hex(c)) {
			return false;
		}
		out->s[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
	}
	out->s[36] = '\0';
	return true;
}

bool vox_e164_ok(const char *s, size_t n)
{
	if (n < 9 || n > 16 || s[0] != '+' || s[1] == '0')
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool vox_time_ext_body(int64_t *sec, int64_t *nsec, const uint8_t *b,
		       size_t len)
{
	uint64_t v;
	switch (len) {
	case 4:
		*sec = (int64_t)vox_be_get(b, 4);
		*nsec = 0;
		return true;
	case 8:
		v = vox_be_get(b, 8);
		*nsec = (int64_t)(v >> 34);
		*sec = (int64_t)(v & 0x3FFFFFFFFULL);
		return true;
	case 12:
		*nsec = (int64_t)vox_be_get(b, 4);
		*sec = (int64_t)vox_be_get(b + 4, 8);
		return true;
	default:
		return false;
	}
}

/* Read a timestamp: ext -1 (4, 8 or 12 bytes) or integer milliseconds. */
vox_status vox_time_read(vox_time *out, vox_mp *r, const char *name,
			 vox_error *err)
{
	int64_t sec;
	int64_t nsec;
	vox_mp_type t = vox_mp_peek(r);
	if (t == VOX_MP_INT) {
		int64_t ms;
		vox_mp_err e = vox_mp_int(r, &ms);
		if (e != VOX_MP_OK)
			return vox_mp_fail(err, e, name);
		/* Range first: converting an extreme value would overflow. */
		if (ms < TS_MIN * 1000 || ms >= TS_MAX * 1000)
			return fail(err, VOX_E_INVALID, "out_of_range", name,
				    "must be between 2000-01-01 and 2100-01-01");
		sec = ms / 1000;
		nsec = (ms % 1000) * 1000000;
	} else if (t == VOX_MP_EXT) {
		int8_t type;
		const uint8_t *b;
		uint32_t len;
		vox_mp_err e = vox_mp_ext(r, &type, &b, &len);
		if (e != VOX_MP_OK)
			return vox_mp_fail(err, e, name);
		if (type != -1)
			return fail(err, VOX_E_INVALID, "wrong_type", name,
				    "must be a timestamp (ext -1 or integer"
				    " milliseconds), got ext %d", type);
		if (!vox_time_ext_body(&sec, &nsec, b, len)) {
			return fail(err, VOX_E_INVALID, "bad_timestamp", name,
				    "timestamp extension of %u bytes (4, 8 or 12)",
				    len);
		}
		if (nsec > 999999999)
			return fail(err, VOX_E_INVALID, "bad_timestamp", name,
				    "nanoseconds above 999999999");
	} else {
		if (t == VOX_MP_INVALID)
			return vox_mp_fail(err, vox_mp_skip(r), name);
		return fail(err, VOX_E_INVALID, "wrong_type", name,
			    "must be a timestamp (ext -1 or integer milliseconds)");
	}
	if (sec < TS_MIN || sec >= TS_MAX)
		return fail(err, VOX_E_INVALID, "out_of_range", name,
			    "must be between 2000-01-01 and 2100-01-01");
	out->sec = sec;
	out->nsec = (int32_t)nsec;
	out->set = true;
	return VOX_OK;
}

/* Read the string value of field f, reporting a type mismatch by name. */
static vox_status read_str(vox_mp *r, const vox_field *f, const char **s,
			   uint32_t *n, vox_error *err)
{
	vox_mp_err e = vox_mp_str(r, s, n);
	if (e == VOX_MP_TYPE)
		return fail(err, VOX_E_INVALID, "wrong_type", f->key,
			    "must be a string");
	if (e != VOX_MP_OK)
		return vox_mp_fail(err, e, f->key);
	return VOX_OK;
}

vox_status vox_field_check_str(const vox_field *f, const char *s, size_t n,
			    vox_error *err)
{
	switch (f->kind) {
	case VOX_F_EVENT_ID:
	case VOX_F_ID: {
		size_t maxlen = f->kind == VOX_F_EVENT_ID ? 128 : 255;
		char lo = f->kind == VOX_F_EVENT_ID ? 0x20 : 0x21;
		bool ok = n >= 1 && n <= maxlen;
		for (size_t i = 0; ok && i < n; i++)
			ok = s[i] >= lo && s[i] <= 0x7e;
		if (!ok)
			return fail(err, VOX_E_INVALID,
				    f->kind == VOX_F_EVENT_ID ? "bad_event_id" : "bad_id",
				    f->key,
				    "must be 1..%zu printable ASCII characters%s",
				    maxlen, f->kind == VOX_F_ID ? " without spaces" : "");
		return VOX_OK;
	}
	case VOX_F_TEXT:
		if (n > (size_t)f->max)
			return fail(err, VOX_E_INVALID, "too_long", f->key,
				    "longer than %" PRId64 " bytes", f->max);
		for (size_t i = 0; i < n;) {
			if (s[i] == '\0')
				return fail(err, VOX_E_INVALID, "bad_string", f->key,
					    "contains a NUL byte");
			if ((unsigned char)s[i] < 0x80) { /* ASCII: the common case */
				i++;
				continue;
			}
			size_t k = vox_utf8_len((const unsigned char *)s + i, n - i);
			if (k == 0)
				return fail(err, VOX_E_INVALID, "bad_utf8", f->key,
					    "not valid UTF-8");
			i += k;
		}
		return VOX_OK;
	case VOX_F_E164:
		if (!vox_e164_ok(s, n))
			return fail(err, VOX_E_INVALID, "bad_phone", f->key,
				    "must be E.164 (+ then 8 to 15 digits, not"
				    " starting with 0)");
		return VOX_OK;
	default:
		return fail(err, VOX_E_INVALID, "wrong_type", f->key,
			    "not a string field");
	}
}

/* A str or bin value (VOX_F_BYTES), or a bin only (VOX_F_BIN), of
 * f->min..f->max bytes. */
static vox_status read_bytes(vox_mp *r, const vox_field *f, vox_bytes *out,
			     vox_error *err)
{
	vox_mp_type t = vox_mp_peek(r);
	vox_mp_err e;
	const uint8_t *p = NULL;
	uint32_t n = 0;
	bool any = f->kind == VOX_F_BYTES;
	if (t == VOX_MP_BIN) {
		e = vox_mp_bin(r, &p, &n);
	} else if (t == VOX_MP_STR && any) {
		const char *sp;
		e = vox_mp_str(r, &sp, &n);
		p = (const uint8_t *)sp;
	} else if (t == VOX_MP_INVALID) {
		return vox_mp_fail(err, vox_mp_skip(r), f->key);
	} else {
		return fail(err, VOX_E_INVALID, "wrong_type", f->key,
			    any ? "must be a bin or a str" : "must be a bin");
	}
	if (e != VOX_MP_OK)
		return vox_mp_fail(err, e, f->key);
	if ((int64_t)n < f->min || (int64_t)n > f->max) {
		if (f->min == f->max)
			return fail(err, VOX_E_INVALID, "bad_length", f->key,
				    "must be %" PRId64 " bytes", f->min);
		return fail(err, VOX_E_INVALID, "bad_length", f->key,
			    "must be %" PRId64 "..%" PRId64 " bytes", f->min,
			    f->max);
	}
	*out = (vox_bytes){p, n};
	return VOX_OK;
}

static vox_status read_field(vox_mp *r, const vox_field *f, char *base,
			     void *ctx, vox_error *err)
{
	const char *s = NULL;
	uint32_t n = 0;
	vox_status st;
	void *dst = base + f->off;

	switch (f->kind) {
	case VOX_F_EVENT_ID:
	case VOX_F_ID:
	case VOX_F_TEXT:
	case VOX_F_E164:
		if ((st = read_str(r, f, &s, &n, err)) != VOX_OK)
			return st;
		if ((st = vox_field_check_str(f, s, n, err)) != VOX_OK)
			return st;
		*(vox_str *)dst = (vox_str){s, n};
		return VOX_OK;
	case VOX_F_UUID:
		if ((st = read_str(r, f, &s, &n, err)) != VOX_OK)
			return st;
		if (!vox_uuid_parse(dst, s, n))
			return fail(err, VOX_E_INVALID, "bad_uuid", f->key,
				    "must be a UUID (36 characters, 8-4-4-4-12 hex)");
		return VOX_OK;
	case VOX_F_TS:
		return vox_time_read(dst, r, f->key, err);
	case VOX_F_INT: {
		int64_t v;
		vox_mp_err e = vox_mp_int(r, &v);
		if (e == VOX_MP_TYPE)
			return fail(err, VOX_E_INVALID, "wrong_type", f->key,
				    "must be an integer");
		if (e == VOX_MP_RANGE || (e == VOX_MP_OK && (v < f->min || v > f->max)))
			return fail(err, VOX_E_INVALID, "out_of_range", f->key,
				    "must be %" PRId64 "..%" PRId64, f->min, f->max);
		if (e != VOX_MP_OK)
			return vox_mp_fail(err, e, f->key);
		*(int64_t *)dst = v;
		return VOX_OK;
	}
	case VOX_F_FLOAT: {
		double v;
		vox_mp_err e = vox_mp_double(r, &v);
		if (e == VOX_MP_TYPE)
			return fail(err, VOX_E_INVALID, "wrong_type", f->key,
				    "must be a number");
		if (e != VOX_MP_OK && e != VOX_MP_RANGE)
			return vox_mp_fail(err, e, f->key);
		if (e == VOX_MP_RANGE || isnan(v) || v < (double)f->min ||
		    v > (double)f->max)
			return fail(err, VOX_E_INVALID, "out_of_range", f->key,
				    "must be %" PRId64 ".0..%" PRId64 ".0",
				    f->min, f->max);
		*(double *)dst = v;
		*(bool *)(void *)(base + f->has_off) = true;
		return VOX_OK;
	}
	case VOX_F_ENUM:
		if ((st = read_str(r, f, &s, &n, err)) != VOX_OK)
			return st;
		{
			int i = vox_choice_index(f->choices, s, n);
			if (i >= 0) {
				*(int *)dst = i + 1;
				return VOX_OK;
			}
			char list[160];
			vox_choice_join(list, sizeof(list), f->choices, "|");
			return fail(err, VOX_E_INVALID, "bad_enum", f->key,
				    "must be one of %s", list);
		}
	case VOX_F_BOOL: {
		bool v;
		vox_mp_err e = vox_mp_bool(r, &v);
		if (e == VOX_MP_TYPE)
			return fail(err, VOX_E_INVALID, "wrong_type", f->key,
				    "must be a boolean");
		if (e != VOX_MP_OK)
			return vox_mp_fail(err, e, f->key);
		*(bool *)dst = v;
		return VOX_OK;
	}
	case VOX_F_BYTES:
	case VOX_F_BIN:
		return read_bytes(r, f, dst, err);
	case VOX_F_CUSTOM:
		return f->read(r, f, base, ctx, err);
	}
	return fail(err, VOX_E_INTERNAL, "internal", f->key, "bad field table");
}


/* ---- decode ------------------------------------------------------------ */

static const vox_field *find_field(const vox_schema *s, const char *key,
				   uint32_t n, size_t *index)
{
	for (size_t i = 0; i < s->nfields; i++) {
		const char *name = s->fields[i].key;
		if (name[0] == key[0] && strlen(name) == n &&
		    memcmp(name, key, n) == 0) {
			*index = i;
			return &s->fields[i];
		}
	}
	return NULL;
}

vox_status vox_schema_decode(void *out, uint32_t *present,
			     const vox_schema *s, uint32_t only,
			     const void *data, size_t len, void *ctx,
			     vox_error *err)
{
	const char *what = s->what;
	char *base = out;
	uint32_t seen = 0, given = 0;
	uint32_t n = 0;
	vox_mp r;
	vox_status st;

	if (s->nfields > VOX_SCHEMA_MAX_FIELDS)
		return fail(err, VOX_E_INTERNAL, "internal", NULL,
			    "schema of %zu fields", s->nfields);
	if (present)
		*present = 0;
	if (len > s->max_len)
		return fail(err, VOX_E_TOO_LARGE, "too_large", NULL,
			    "%s of %zu bytes is over the %zu byte limit", what,
			    len, s->max_len);
	vox_mp_init(&r, data, len);
	if (len == 0 && s->empty_is_map)
		goto required;
	vox_mp_err e = vox_mp_map(&r, &n);
	if (e == VOX_MP_TYPE || e == VOX_MP_MALFORMED)
		return fail(err, VOX_E_DECODE, "not_a_map", NULL,
			    "%s must be a msgpack map with string keys", what);
	if (e != VOX_MP_OK)
		return vox_mp_fail(err, e, NULL);
	if (s->max_keys && n > s->max_keys)
		return fail(err, VOX_E_TOO_LARGE, "too_large", NULL,
			    "map of %u entries is over the %u entry limit", n,
			    s->max_keys);

	for (uint32_t i = 0; i < n; i++) {
		const char *key;
		uint32_t klen;
		e = vox_mp_str(&r, &key, &klen);
		if (e == VOX_MP_TYPE)
			return fail(err, VOX_E_DECODE, "bad_key", NULL,
				    "map key %u is not a string", i);
		if (e != VOX_MP_OK)
			return vox_mp_fail(err, e, NULL);
		size_t idx = 0;
		const vox_field *f = klen ? find_field(s, key, klen, &idx) : NULL;
		if (f == NULL || !(only & (1u << idx))) {
			/* not read here: skipped, for forward compatibility */
			e = vox_mp_skip(&r);
			if (e != VOX_MP_OK)
				return vox_mp_fail(err, e, NULL);
			continue;
		}
		if (seen & (1u << idx))
			return fail(err, VOX_E_DECODE, "duplicate_key", f->key,
				    "appears twice");
		seen |= 1u << idx;
		if (vox_mp_peek(&r) == VOX_MP_NIL) {
			/* nil means "absent" for an optional field */
			if (f->required)
				return fail(err, VOX_E_INVALID, "missing", f->key,
					    "required, got nil");
			r.p++;
			continue;
		}
		if ((st = read_field(&r, f, base, ctx, err)) != VOX_OK)
			return st;
		given |= 1u << idx;
	}
	if (r.p != r.end)
		return fail(err, VOX_E_DECODE, "trailing_bytes", NULL,
			    "%zu bytes after the map", vox_mp_left(&r));
required:
	for (size_t i = 0; i < s->nfields; i++)
		if (s->fields[i].required && (only & (1u << i)) &&
		    !(seen & (1u << i)))
			return fail(err, VOX_E_INVALID, "missing",
				    s->fields[i].key, "required");
	if (present)
		*present = given;
	return VOX_OK;
}
