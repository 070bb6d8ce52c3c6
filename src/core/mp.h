/*
 * mp.h - a bounds-checked MessagePack reader over one buffer. It never
 * allocates, never recurses, and checks every length prefix against the
 * bytes that remain before trusting it, so an attacker-chosen length can
 * neither read out of bounds nor make us reserve memory.
 */
#ifndef VOX_MP_H
#define VOX_MP_H

#include "core/common.h"

typedef struct vox_mp {
	const uint8_t *p;
	const uint8_t *end;
} vox_mp;

/* Why a read failed (the reader position is then unspecified). */
typedef enum vox_mp_err {
	VOX_MP_OK = 0,
	VOX_MP_TRUNCATED, /* a value runs past the end of the buffer */
	VOX_MP_MALFORMED, /* reserved byte 0xc1 */
	VOX_MP_TYPE,      /* a value of another type is here */
	VOX_MP_RANGE,     /* an integer that does not fit int64 */
	VOX_MP_TOO_DEEP,  /* nesting deeper than VOX_MP_MAX_DEPTH */
} vox_mp_err;

#define VOX_MP_MAX_DEPTH 32

typedef enum vox_mp_type {
	VOX_MP_NIL, VOX_MP_BOOL, VOX_MP_INT, VOX_MP_FLOAT, VOX_MP_STR,
	VOX_MP_BIN, VOX_MP_ARRAY, VOX_MP_MAP, VOX_MP_EXT, VOX_MP_INVALID
} vox_mp_type;

static inline void vox_mp_init(vox_mp *r, const void *data, size_t len)
{
	r->p = data;
	r->end = r->p + len;
}

static inline size_t vox_mp_left(const vox_mp *r)
{
	return (size_t)(r->end - r->p);
}

/* Type of the next value without consuming it; VOX_MP_INVALID at the end
 * or on 0xc1. */
vox_mp_type vox_mp_peek(const vox_mp *r);

vox_mp_err vox_mp_nil(vox_mp *r);
/* Map and array headers: *n is checked against the bytes left (every
 * entry needs at least one byte per key and value). */
vox_mp_err vox_mp_map(vox_mp *r, uint32_t *n);
vox_mp_err vox_mp_array(vox_mp *r, uint32_t *n);
/* str: *s points into the buffer, not NUL-terminated. */
vox_mp_err vox_mp_str(vox_mp *r, const char **s, uint32_t *len);
vox_mp_err vox_mp_bin(vox_mp *r, const uint8_t **b, uint32_t *len);
/* Any integer encoding; uint64 above INT64_MAX is VOX_MP_RANGE. */
vox_mp_err vox_mp_int(vox_mp *r, int64_t *v);
/* float32/float64, and integers (many encoders write 1.0 as 1). */
vox_mp_err vox_mp_double(vox_mp *r, double *v);
vox_mp_err vox_mp_bool(vox_mp *r, bool *v);
vox_mp_err vox_mp_ext(vox_mp *r, int8_t *type, const uint8_t **b,
		      uint32_t *len);
/* Skip one value of any type, nested up to VOX_MP_MAX_DEPTH, without
 * recursion. */
vox_mp_err vox_mp_skip(vox_mp *r);

#endif
