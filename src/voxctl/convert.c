/*
 * convert.c - JSON text for people, msgpack on the wire: the two
 * directions voxctl needs, with timestamps as RFC 3339 text on the JSON
 * side and ext -1 on the msgpack side.
 */
#include "voxctl/voxctl.h"

#include <math.h>
#include <sodium.h>
#include <unistd.h>

#include "core/codec.h"

#define MAX_DEPTH 64

bool voxctl_request_time_key(const char *key, size_t n, void *ctx)
{
	VOX_UNUSED(ctx);
	return key && ((n == 5 && memcmp(key, "since", 5) == 0) ||
		       (n == 5 && memcmp(key, "until", 5) == 0));
}

static void to_mp(const vox_json *v, const char *key, voxctl_time_key_fn is_time,
		  void *ctx, msgpack_packer *pk)
{
	switch (vox_json_type_of(v)) {
	case VOX_JSON_NULL:
		msgpack_pack_nil(pk);
		break;
	case VOX_JSON_BOOL:
		if (vox_json_bool(v))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case VOX_JSON_INT:
		msgpack_pack_int64(pk, vox_json_int(v));
		break;
	case VOX_JSON_NUMBER:
		msgpack_pack_double(pk, vox_json_number(v));
		break;
	case VOX_JSON_STRING: {
		const char *s = vox_json_str(v);
		size_t n = vox_json_str_len(v);
		vox_time t;
		if (key && is_time && is_time(key, strlen(key), ctx) &&
		    vox_time_parse_rfc3339(&t, s, n)) {
			vox_time_pack(pk, &t);
		} else {
			msgpack_pack_str(pk, n);
			msgpack_pack_str_body(pk, s, n);
		}
		break;
	}
	case VOX_JSON_ARRAY:
		msgpack_pack_array(pk, vox_json_len(v));
		for (size_t i = 0; i < vox_json_len(v); i++)
			to_mp(vox_json_at(v, i), NULL, is_time, ctx, pk);
		break;
	case VOX_JSON_OBJECT:
		msgpack_pack_map(pk, vox_json_len(v));
		for (size_t i = 0; i < vox_json_len(v); i++) {
			const char *k = vox_json_key_at(v, i);
			msgpack_pack_str(pk, strlen(k));
			msgpack_pack_str_body(pk, k, strlen(k));
			to_mp(vox_json_at(v, i), k, is_time, ctx, pk);
		}
		break;
	}
}

void voxctl_json_to_mp(vox_buf *out, const vox_json *v,
		       voxctl_time_key_fn is_time, void *ctx)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, out, vox_mp_buf_write);
	to_mp(v, NULL, is_time, ctx, &pk);
}

/* ---- msgpack to JSON ----------------------------------------------------- */

static void newline(vox_buf *out, bool pretty, int depth)
{
	if (!pretty)
		return;
	vox_buf_putc(out, '\n');
	for (int i = 0; i < depth; i++)
		vox_buf_puts(out, "  ");
}

static void base64(vox_buf *out, const void *p, size_t n)
{
	size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	char *s = vox_malloc(cap);
	sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
	vox_buf_json_str(out, s, strlen(s));
	free(s);
}

/* A timestamp extension as a time; false for a malformed one. */
static bool ext_time(const msgpack_object_ext *e, vox_time *t)
{
	int64_t sec, nsec;
	if (!vox_time_ext_body(&sec, &nsec, (const uint8_t *)e->ptr, e->size) ||
	    nsec > 999999999)
		return false;
	t->sec = sec;
	t->nsec = (int32_t)nsec;
	t->set = true;
	return true;
}

static bool to_json(const msgpack_object *o, bool pretty, int depth, vox_buf *out)
{
	if (depth > MAX_DEPTH)
		return false;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		vox_buf_puts(out, "null");
		return true;
	case MSGPACK_OBJECT_BOOLEAN:
		vox_buf_puts(out, o->via.boolean ? "true" : "false");
		return true;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		vox_buf_printf(out, "%" PRIu64, o->via.u64);
		return true;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		vox_buf_printf(out, "%" PRId64, o->via.i64);
		return true;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (isfinite(o->via.f64))
			vox_buf_printf(out, "%.17g", o->via.f64);
		else
			vox_buf_puts(out, "null");
		return true;
	case MSGPACK_OBJECT_STR:
		vox_buf_json_str(out, o->via.str.ptr, o->via.str.size);
		return true;
	case MSGPACK_OBJECT_BIN:
		base64(out, o->via.bin.ptr, o->via.bin.size);
		return true;
	case MSGPACK_OBJECT_EXT: {
		vox_time t;
		if (o->via.ext.type == -1 && ext_time(&o->via.ext, &t)) {
			char s[64];
			vox_time_rfc3339(s, &t);
			vox_buf_json_str(out, s, strlen(s));
		} else {
			vox_buf_printf(out, "{\"ext\":%d,\"base64\":", o->via.ext.type);
			base64(out, o->via.ext.ptr, o->via.ext.size);
			vox_buf_putc(out, '}');
		}
		return true;
	}
	case MSGPACK_OBJECT_ARRAY:
		vox_buf_putc(out, '[');
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				vox_buf_putc(out, ',');
			newline(out, pretty, depth + 1);
			if (!to_json(&o->via.array.ptr[i], pretty, depth + 1, out))
				return false;
		}
		if (o->via.array.size)
			newline(out, pretty, depth);
		vox_buf_putc(out, ']');
		return true;
	case MSGPACK_OBJECT_MAP:
		vox_buf_putc(out, '{');
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (i)
				vox_buf_putc(out, ',');
			newline(out, pretty, depth + 1);
			if (kv->key.type == MSGPACK_OBJECT_STR) {
				vox_buf_json_str(out, kv->key.via.str.ptr, kv->key.via.str.size);
			} else {
				/* JSON keys are strings: a key's own JSON, quoted */
				vox_buf k;
				vox_buf_init(&k);
				bool ok = to_json(&kv->key, false, depth + 1, &k);
				if (ok)
					vox_buf_json_str(out, k.data, k.len);
				vox_buf_release(&k);
				if (!ok)
					return false;
			}
			vox_buf_puts(out, pretty ? ": " : ":");
			if (!to_json(&kv->val, pretty, depth + 1, out))
				return false;
		}
		if (o->via.map.size)
			newline(out, pretty, depth);
		vox_buf_putc(out, '}');
		return true;
	}
	return false;
}

bool voxctl_mp_to_json(vox_buf *out, const void *data, size_t len, bool pretty)
{
	msgpack_unpacked u;
	size_t off = 0;
	msgpack_unpacked_init(&u);
	bool ok = msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS &&
		  off == len && to_json(&u.data, pretty, 0, out);
	msgpack_unpacked_destroy(&u);
	return ok;
}

bool voxctl_print_mp(const void *data, size_t len)
{
	vox_buf out;
	vox_buf_init(&out);
	bool pretty = !voxctl_compact && isatty(STDOUT_FILENO);
	bool ok = voxctl_mp_to_json(&out, data, len, pretty);
	if (ok) {
		vox_buf_putc(&out, '\n');
		fwrite(out.data, 1, out.len, stdout);
		fflush(stdout);
	}
	vox_buf_release(&out);
	return ok;
}
