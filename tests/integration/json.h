/*
 * json.h - a small strict JSON parser for tests (RFC 8259). A complete
 * document is parsed into a tree; anything else (a syntax error, invalid
 * UTF-8, a lone surrogate, a control character in a string, a duplicate
 * key, nesting deeper than TJ_MAX_DEPTH, trailing garbage) gives NULL.
 * Objects keep their key order. Numbers are split into integers (no
 * fraction, no exponent, fits in long long) and other numbers.
 */
#ifndef VOX_TEST_JSON_H
#define VOX_TEST_JSON_H

#include "core/common.h"

#define TJ_MAX_DEPTH 64

typedef enum tj_type {
	TJ_NULL,
	TJ_BOOL,
	TJ_INT,    /* an integer literal that fits in long long */
	TJ_NUMBER, /* any other number */
	TJ_STRING,
	TJ_ARRAY,
	TJ_OBJECT,
} tj_type;

typedef struct tj_value tj_value;

/* Parse len bytes; NULL on any error. Free with tj_free. */
tj_value *tj_parse(const char *text, size_t len);
void tj_free(tj_value *v);

/* The type; TJ_NULL for a NULL pointer too (use v != NULL to tell). */
tj_type tj_type_of(const tj_value *v);
const char *tj_type_name(tj_type t);

/* Members of an object, elements of an array (0 for other types). */
size_t tj_len(const tj_value *v);
/* The i-th element of an array or member value of an object, or NULL. */
const tj_value *tj_at(const tj_value *v, size_t i);
/* The i-th key of an object, or NULL. */
const char *tj_key_at(const tj_value *v, size_t i);
/* The member named key of an object, or NULL (also for non-objects). */
const tj_value *tj_get(const tj_value *obj, const char *key);

/* Scalars: NULL / 0 / false when the type does not match. A string may
 * hold NULs (from \u0000): tj_str_len gives its byte length. */
const char *tj_str(const tj_value *v);
size_t tj_str_len(const tj_value *v);
long long tj_int(const tj_value *v);
double tj_number(const tj_value *v); /* TJ_INT or TJ_NUMBER */
bool tj_bool(const tj_value *v);

#endif
