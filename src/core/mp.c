/*
 * mp.c - the MessagePack reader (see mp.h). Big-endian loads are done byte
 * by byte so unaligned input is fine.
 */
#include "core/mp.h"

#include "core/buf.h"

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)vox_be_get(p, 2);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)vox_be_get(p, 4);
}

static uint64_t be64(const uint8_t *p)
{
	return vox_be_get(p, 8);
}

vox_mp_type vox_mp_peek(const vox_mp *r)
{
	if (r->p >= r->end)
		return VOX_MP_INVALID;
	uint8_t b = *r->p;
	if (b <= 0x7f || b >= 0xe0)
		return VOX_MP_INT;
	if (b <= 0x8f)
		return VOX_MP_MAP;
	if (b <= 0x9f)
		return VOX_MP_ARRAY;
	if (b <= 0xbf)
		return VOX_MP_STR;
	switch (b) {
	case 0xc0: return VOX_MP_NIL;
	case 0xc2: case 0xc3: return VOX_MP_BOOL;
	case 0xc4: case 0xc5: case 0xc6: return VOX_MP_BIN;
	case 0xc7: case 0xc8: case 0xc9: return VOX_MP_EXT;
	case 0xca: case 0xcb: return VOX_MP_FLOAT;
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: return VOX_MP_INT;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return VOX_MP_EXT;
	case 0xd9: case 0xda: case 0xdb: return VOX_MP_STR;
	case 0xdc: case 0xdd: return VOX_MP_ARRAY;
	case 0xde: case 0xdf: return VOX_MP_MAP;
	default: return VOX_MP_INVALID; /* 0xc1 */
	}
}

/* Error for "the next value is not what was asked": distinguishes the end
 * of the buffer and 0xc1 from a plain type mismatch. */
static vox_mp_err mismatch(const vox_mp *r)
{
	if (r->p >= r->end)
		return VOX_MP_TRUNCATED;
	if (*r->p == 0xc1)
		return VOX_MP_MALFORMED;
	return VOX_MP_TYPE;
}

/* Read an n-byte big-endian length after the tag byte. */
static bool read_len(vox_mp *r, int width, uint32_t *len)
{
	if (vox_mp_left(r) < (size_t)width + 1)
		return false;
	const uint8_t *q = r->p + 1;
	*len = width == 1 ? q[0] : width == 2 ? be16(q) : be32(q);
	r->p += 1 + width;
	return true;
}

vox_mp_err vox_mp_nil(vox_mp *r)
{
	if (r->p < r->end && *r->p == 0xc0) {
		r->p++;
		return VOX_MP_OK;
	}
	return mismatch(r);
}

static vox_mp_err container(vox_mp *r, bool map, uint32_t *n)
{
	if (r->p >= r->end)
		return VOX_MP_TRUNCATED;
	uint8_t b = *r->p;
	uint32_t count;
	if (map && b >= 0x80 && b <= 0x8f) {
		count = b & 0x0f;
		r->p++;
	} else if (!map && b >= 0x90 && b <= 0x9f) {
		count = b & 0x0f;
		r->p++;
	} else if (b == (map ? 0xde : 0xdc)) {
		if (!read_len(r, 2, &count))
			return VOX_MP_TRUNCATED;
	} else if (b == (map ? 0xdf : 0xdd)) {
		if (!read_len(r, 4, &count))
			return VOX_MP_TRUNCATED;
	} else {
		return mismatch(r);
	}
	/* Each element is at least one byte (two for a map entry). */
	uint64_t need = (uint64_t)count * (map ? 2 : 1);
	if (need > vox_mp_left(r))
		return VOX_MP_TRUNCATED;
	*n = count;
	return VOX_MP_OK;
}

vox_mp_err vox_mp_map(vox_mp *r, uint32_t *n)
{
	return container(r, true, n);
}

vox_mp_err vox_mp_array(vox_mp *r, uint32_t *n)
{
	return container(r, false, n);
}

/* Body of len bytes at the reader: bounds-checked. */
static vox_mp_err body(vox_mp *r, uint32_t len, const uint8_t **b)
{
	if (len > vox_mp_left(r))
		return VOX_MP_TRUNCATED;
	*b = r->p;
	r->p += len;
	return VOX_MP_OK;
}

vox_mp_err vox_mp_str(vox_mp *r, const char **s, uint32_t *len)
{
	if (r->p >= r->end)
		return VOX_MP_TRUNCATED;
	uint8_t b = *r->p;
	uint32_t n;
	if (b >= 0xa0 && b <= 0xbf) {
		n = b & 0x1f;
		r->p++;
	} else if (b == 0xd9 || b == 0xda || b == 0xdb) {
		if (!read_len(r, b == 0xd9 ? 1 : b == 0xda ? 2 : 4, &n))
			return VOX_MP_TRUNCATED;
	} else {
		return mismatch(r);
	}
	const uint8_t *p;
	vox_mp_err e = body(r, n, &p);
	if (e == VOX_MP_OK) {
		*s = (const char *)p;
		*len = n;
	}
	return e;
}

vox_mp_err vox_mp_bin(vox_mp *r, const uint8_t **out, uint32_t *len)
{
	if (r->p >= r->end)
		return VOX_MP_TRUNCATED;
	uint8_t b = *r->p;
	uint32_t n;
	if (b < 0xc4 || b > 0xc6)
		return mismatch(r);
	if (!read_len(r, b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4, &n))
		return VOX_MP_TRUNCATED;
	vox_mp_err e = body(r, n, out);
	if (e == VOX_MP_OK)
		*len = n;
	return e;
}

vox_mp_err vox_mp_int(vox_mp *r, int64_t *v)
{
	if (r->p >= r->end)
		return VOX_MP_TRUNCATED;
	uint8_t b = *r->p;
	size_t left = vox_mp_left(r);
	if (b <= 0x7f) {
		*v = b;
		r->p++;
		return VOX_MP_OK;
	}
	if (b >= 0xe0) {
		*v = (int8_t)b;
		r->p++;
		return VOX_MP_OK;
	}
	size_t width;
	switch (b) {
	case 0xcc: case 0xd0: width = 1; break;
	case 0xcd: case 0xd1: width = 2; break;
	case 0xce: case 0xd2: width = 4; break;
	case 0xcf: case 0xd3: width = 8; break;
	default: return mismatch(r);
	}
	if (left < width + 1)
		return VOX_MP_TRUNCATED;
	const uint8_t *q = r->p + 1;
	switch (b) {
	case 0xcc: *v = q[0]; break;
	case 0xcd: *v = be16(q); break;
	case 0xce: *v = be32(q); break;
	case 0xcf: {
		uint64_t u = be64(q);
		if (u > INT64_MAX)
			return VOX_MP_RANGE;
		*v = (int64_t)u;
		break;
	}
	case 0xd0: *v = (int8_t)q[0]; break;
	case 0xd1: *v = (int16_t)be16(q); break;
	case 0xd2: *v = (int32_t)be32(q); break;
	default: *v = (int64_t)be64(q); break;
	}
	r->p += width + 1;
	return VOX_MP_OK;
}

vox_mp_err vox_mp_double(vox_mp *r, double *v)
{
	if (r->p >= r->end)
		return VOX_MP_TRUNCATED;
	uint8_t b = *r->p;
	if (b == 0xca) {
		if (vox_mp_left(r) < 5)
			return VOX_MP_TRUNCATED;
		uint32_t u = be32(r->p + 1);
		float f;
		memcpy(&f, &u, sizeof(f));
		*v = f;
		r->p += 5;
		return VOX_MP_OK;
	}
	if (b == 0xcb) {
		if (vox_mp_left(r) < 9)
			return VOX_MP_TRUNCATED;
		uint64_t u = be64(r->p + 1);
		memcpy(v, &u, sizeof(*v));
		r->p += 9;
		return VOX_MP_OK;
	}
	int64_t i;
	vox_mp_err e = vox_mp_int(r, &i);
	if (e == VOX_MP_OK)
		*v = (double)i;
	return e;
}

vox_mp_err vox_mp_bool(vox_mp *r, bool *v)
{
	if (r->p < r->end && (*r->p == 0xc2 || *r->p == 0xc3)) {
		*v = *r->p == 0xc3;
		r->p++;
		return VOX_MP_OK;
	}
	return mismatch(r);
}

vox_mp_err vox_mp_ext(vox_mp *r, int8_t *type, const uint8_t **b,
		      uint32_t *len)
{
	if (r->p >= r->end)
		return VOX_MP_TRUNCATED;
	uint8_t tag = *r->p;
	uint32_t n;
	if (tag >= 0xd4 && tag <= 0xd8) {
		n = 1u << (tag - 0xd4);
		r->p++;
	} else if (tag >= 0xc7 && tag <= 0xc9) {
		if (!read_len(r, tag == 0xc7 ? 1 : tag == 0xc8 ? 2 : 4, &n))
			return VOX_MP_TRUNCATED;
	} else {
		return mismatch(r);
	}
	if (r->p >= r->end)
		return VOX_MP_TRUNCATED;
	int8_t t = (int8_t)*r->p++;
	vox_mp_err e = body(r, n, b);
	if (e == VOX_MP_OK) {
		*type = t;
		*len = n;
	}
	return e;
}

vox_mp_err vox_mp_skip(vox_mp *r)
{
	/* remaining[d] = values still to skip at depth d. */
	uint64_t remaining[VOX_MP_MAX_DEPTH + 1];
	int depth = 0;
	remaining[0] = 1;
	while (depth >= 0) {
		if (remaining[depth] == 0) {
			depth--;
			continue;
		}
		remaining[depth]--;
		uint32_t n, len;
		const uint8_t *b;
		const char *s;
		int8_t t;
		int64_t i;
		double d;
		bool flag;
		vox_mp_err e;
		switch (vox_mp_peek(r)) {
		case VOX_MP_NIL: e = vox_mp_nil(r); break;
		case VOX_MP_BOOL: e = vox_mp_bool(r, &flag); break;
		case VOX_MP_INT:
			e = vox_mp_int(r, &i);
			if (e == VOX_MP_RANGE) /* a big uint64 is still well-formed */
				e = (r->p += 9, VOX_MP_OK);
			break;
		case VOX_MP_FLOAT: e = vox_mp_double(r, &d); break;
		case VOX_MP_STR: e = vox_mp_str(r, &s, &len); break;
		case VOX_MP_BIN: e = vox_mp_bin(r, &b, &len); break;
		case VOX_MP_EXT: e = vox_mp_ext(r, &t, &b, &len); break;
		case VOX_MP_ARRAY:
		case VOX_MP_MAP: {
			bool map = vox_mp_peek(r) == VOX_MP_MAP;
			e = map ? vox_mp_map(r, &n) : vox_mp_array(r, &n);
			if (e != VOX_MP_OK)
				return e;
			if (n == 0)
				break;
			if (depth == VOX_MP_MAX_DEPTH)
				return VOX_MP_TOO_DEEP;
			remaining[++depth] = (uint64_t)n * (map ? 2 : 1);
			break;
		}
		default:
			return mismatch(r);
		}
		if (e != VOX_MP_OK)
			return e;
	}
	return VOX_MP_OK;
}
