/*
 * schema.h - the one decoder of everything vox reads from the network:
 * events, alerts and the bodies of query.*, credentials.* and
 * billing.authorize requests. A schema is a table of fields (key, kind,
 * required, range, where the value goes); vox_schema_decode walks a
 * msgpack map once, left to right, with the bounded reader (core/mp.h),
 * so every input is limited and refused the same way, with the same
 * stable reasons (subjects/README.md, "Why a message is refused").
 *
 * The rules every schema shares: the top level is a map with string keys
 * and nothing after it; a key of the schema given twice is refused even if
 * one of the two is nil; nil means absent; keys the schema does not read
 * are skipped (nested up to VOX_MP_MAX_DEPTH), even when repeated.
 */
#ifndef VOX_SCHEMA_H
#define VOX_SCHEMA_H

#include "core/common.h"

#include "core/mp.h"
#include "vox/event.h"

/* What a field holds and the C type it is written as at its offset. */
typedef enum vox_fkind {
	VOX_F_EVENT_ID, /* vox_str: 1..128 printable ASCII */
	VOX_F_ID,       /* vox_str: an outside system's key, 1..255 ASCII, no spaces */
	VOX_F_TEXT,     /* vox_str: UTF-8, no NUL, up to max bytes */
	VOX_F_UUID,     /* vox_uuid, lowercased */
	VOX_F_E164,     /* vox_str */
	VOX_F_TS,       /* vox_time */
	VOX_F_INT,      /* int64_t in [min, max] */
	VOX_F_FLOAT,    /* double in [min, max]; a bool at has_off says present */
	VOX_F_ENUM,     /* int: the index in choices + 1 */
	VOX_F_BOOL,     /* bool (requests: no message has one) */
	VOX_F_BYTES,    /* vox_bytes: a str or a bin of min..max bytes */
	VOX_F_BIN,      /* vox_bytes: a bin of min..max bytes */
	VOX_F_CUSTOM,   /* read by the field's read function */
} vox_fkind;

/* A view of bytes inside the decoded input. */
typedef struct vox_bytes {
	const uint8_t *ptr;
	uint32_t len;
} vox_bytes;

typedef struct vox_field vox_field;

/* Read the value of f (not nil) into out + f->off; ctx is the caller's
 * (vox_schema_decode's ctx). Fails through vox_error_set with f->key. */
typedef vox_status (*vox_field_read_fn)(vox_mp *r, const vox_field *f,
					void *out, void *ctx, vox_error *err);

struct vox_field {
	const char *key;
	vox_fkind kind;
	bool required;
	int64_t min, max;            /* VOX_F_INT, FLOAT, TEXT (max), BYTES, BIN */
	const char *const *choices;  /* VOX_F_ENUM: NULL-terminated */
	size_t off;
	size_t has_off;              /* VOX_F_FLOAT only */
	vox_field_read_fn read;      /* VOX_F_CUSTOM only */
};

/* The most fields a schema has: presence is a 32-bit mask. */
#define VOX_SCHEMA_MAX_FIELDS 32
typedef struct vox_schema {
	const vox_field *fields;
	size_t nfields;
	size_t max_len;    /* bytes; a longer input is too_large */
	uint32_t max_keys; /* a map of more entries is too_large; 0: only
			      max_len bounds them */
	bool empty_is_map; /* requests: no bytes at all are taken as {} */
	const char *what;  /* "message" or "request", for the texts */
} vox_schema;

/* Every field of the schema: the `only` of vox_schema_decode. */
#define VOX_SCHEMA_ALL UINT32_MAX

/*
 * Decode data (len bytes) by schema s into out, reading only the fields
 * whose bit (1u << index) is set in `only` and skipping the others as
 * unknown keys. *present (when not NULL) gets the bits of the fields given
 * and not nil. Required fields must be present. On failure err says why
 * (status, reason, field, message) and out may be partly written; a caller
 * that promises otherwise decodes into a copy. Never allocates (a
 * VOX_F_CUSTOM reader may), never reads outside [data, data + len), never
 * recurses.
 */
vox_status vox_schema_decode(void *out, uint32_t *present,
			     const vox_schema *s, uint32_t only,
			     const void *data, size_t len, void *ctx,
			     vox_error *err) VOX_MUST_CHECK;

/* ---- the value checks the field kinds are made of ---- */

/* A UUID in the 8-4-4-4-12 form, any case; out gets it lowercased. */
bool vox_uuid_parse(vox_uuid *out, const char *s, size_t n);

/* "+" then 8..15 digits, the first not 0. */
bool vox_e164_ok(const char *s, size_t n);

/* Read a timestamp (ext -1 of 4, 8 or 12 bytes, or integer milliseconds)
 * in the contract's range [2000-01-01, 2100-01-01). name is the field the
 * error names. */
/* The body of a timestamp extension (ext -1) of len bytes: 4 (seconds),
 * 8 (30-bit nanoseconds, 34-bit seconds) or 12 (32-bit nanoseconds,
 * 64-bit seconds, taken as signed). False for another length; the ranges
 * are the caller's to check (nanoseconds below 10^9 among them). */
bool vox_time_ext_body(int64_t *sec, int64_t *nsec, const uint8_t *b,
		       size_t len) VOX_MUST_CHECK;

vox_status vox_time_read(vox_time *out, vox_mp *r, const char *name,
			 vox_error *err) VOX_MUST_CHECK;

/* The rules of a string field (VOX_F_EVENT_ID, ID, TEXT, E164) on n bytes
 * at p; err may be NULL. What an actor checks before it puts a value it
 * did not decode into a message it emits. */
vox_status vox_field_check_str(const vox_field *f, const char *p, size_t n,
			       vox_error *err) VOX_MUST_CHECK;

/* A msgpack-level failure (truncated, malformed, too deep, ...) of the
 * value of field (NULL for the top level), as a vox_error. */
vox_status vox_mp_fail(vox_error *err, vox_mp_err e, const char *field);

#endif
