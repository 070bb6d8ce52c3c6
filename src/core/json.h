/*
 * json.h - a small strict JSON parser (RFC 8259), for voxctl's input and
 * the tests. A complete
 * document is parsed into a tree; anything else (a syntax error, invalid
 * UTF-8, a lone surrogate, a control character in a string, a duplicate
 * key, nesting deeper than VOX_JSON_MAX_DEPTH, trailing garbage) gives NULL.
 * Objects keep their key order. Numbers are split into integers (no
 * fraction, no exponent, fits in long long) and other numbers.
 */
#ifndef VOX_JSON_H
#define VOX_JSON_H

#include "core/common.h"

#define VOX_JSON_MAX_DEPTH 64

typedef enum vox_json_type {
	VOX_JSON_NULL,
	VOX_JSON_BOOL,
	VOX_JSON_INT,    /* an integer literal that fits in long long */
	VOX_JSON_NUMBER, /* any other number */
	VOX_JSON_STRING,
	VOX_JSON_ARRAY,
	VOX_JSON_OBJECT,
} vox_json_type;

typedef struct vox_json vox_json;

/* Parse len bytes; NULL on any error, with *err_at (when not NULL) the
 * byte offset where parsing stopped. Free with vox_json_free. */
vox_json *vox_json_parse(const char *text, size_t len, size_t *err_at);
void vox_json_free(vox_json *v);

/* The type; VOX_JSON_NULL for a NULL pointer too (use v != NULL to tell). */
vox_json_type vox_json_type_of(const vox_json *v);
const char *vox_json_type_name(vox_json_type t);

/* Members of an object, elements of an array (0 for other types). */
size_t vox_json_len(const vox_json *v);
/* The i-th element of an array or member value of an object, or NULL. */
const vox_json *vox_json_at(const vox_json *v, size_t i);
/* The i-th key of an object, or NULL. */
const char *vox_json_key_at(const vox_json *v, size_t i);
/* The member named key of an object, or NULL (also for non-objects). */
const vox_json *vox_json_get(const vox_json *obj, const char *key);

/* Scalars: NULL / 0 / false when the type does not match. A string may
 * hold NULs (from \u0000): vox_json_str_len gives its byte length. */
const char *vox_json_str(const vox_json *v);
size_t vox_json_str_len(const vox_json *v);
long long vox_json_int(const vox_json *v);
double vox_json_number(const vox_json *v); /* VOX_JSON_INT or VOX_JSON_NUMBER */
bool vox_json_bool(const vox_json *v);

#endif
