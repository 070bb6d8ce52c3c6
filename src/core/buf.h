/*
 * buf.h - a growable byte buffer, and the small JSON writer built on it that
 * the services protocol and voxctl use. Appends never fail (out of memory
 * aborts), so callers build output without checking every step.
 */
#ifndef VOX_BUF_H
#define VOX_BUF_H

#include "core/common.h"

typedef struct vox_buf {
	char *data; /* NUL-terminated after every append, owned */
	size_t len;
	size_t cap;
} vox_buf;

/* Embedded-struct lifecycle: _init zeroes, _release frees the bytes. */
void vox_buf_init(vox_buf *b);
void vox_buf_release(vox_buf *b);
void vox_buf_reset(vox_buf *b);
void vox_buf_reserve(vox_buf *b, size_t extra);
void vox_buf_append(vox_buf *b, const void *p, size_t n);
void vox_buf_puts(vox_buf *b, const char *s);
void vox_buf_putc(vox_buf *b, char c);
void vox_buf_printf(vox_buf *b, const char *fmt, ...) VOX_PRINTF(2, 3);

/* Append s (n bytes) as a JSON string literal, quotes included. Bytes that
 * are not valid UTF-8 are written as U+FFFD so the output is always JSON. */
void vox_buf_json_str(vox_buf *b, const char *s, size_t n);

/* Length of the valid UTF-8 sequence starting at s (n bytes available):
 * 1..4, or 0 when it is not valid UTF-8 (overlong, surrogate, truncated,
 * above U+10FFFF). */
size_t vox_utf8_len(const unsigned char *s, size_t n);

/* The n bytes at s as a decimal number: 1 to 20 ASCII digits, no sign or
 * blank, at most UINT64_MAX. False (and *out untouched) otherwise. */
bool vox_parse_decimal(uint64_t *out, const char *s, size_t n) VOX_MUST_CHECK;

/* The index of the n bytes at s in list (NULL-terminated), or -1: how the
 * decoders read an enumeration. */
int vox_choice_index(const char *const *list, const char *s, size_t n);

/* The choices of list joined by sep into out ("low|medium|high"), cut to
 * fit outlen (always NUL-terminated): the "must be one of" of a refusal. */
void vox_choice_join(char *out, size_t outlen, const char *const *list,
		     const char *sep);

/* The n (1..8) bytes at p as a big-endian unsigned integer: every
 * network and database binary format vox reads (msgpack, PostgreSQL's
 * binary results, cursors, envelopes). Byte by byte, so p may be
 * unaligned. */
static inline uint64_t vox_be_get(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | b[i];
	return v;
}

/* Write the low n (1..8) bytes of v at p, big-endian. */
static inline void vox_be_put(void *p, uint64_t v, size_t n)
{
	unsigned char *b = p;
	for (size_t i = n; i-- > 0; v >>= 8)
		b[i] = (unsigned char)v;
}

/* Lowercase hex of n bytes. */
void vox_buf_hex(vox_buf *b, const void *p, size_t n);

#endif
