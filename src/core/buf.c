/*
 * buf.c - growable buffer and JSON string escaping.
 */
#include "core/buf.h"

void vox_buf_init(vox_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void vox_buf_release(vox_buf *b)
{
	free(b->data);
	vox_buf_init(b);
}

void vox_buf_reset(vox_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void vox_buf_reserve(vox_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = vox_realloc(b->data, cap);
	b->cap = cap;
}

void vox_buf_append(vox_buf *b, const void *p, size_t n)
{
	vox_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void vox_buf_puts(vox_buf *b, const char *s)
{
	vox_buf_append(b, s, strlen(s));
}

void vox_buf_putc(vox_buf *b, char c)
{
	vox_buf_append(b, &c, 1);
}

void vox_buf_printf(vox_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	vox_buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

size_t vox_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0) {
		len = 2;
		cp = c & 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3;
		cp = c & 0x0F;
		min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

void vox_buf_json_str(vox_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	vox_buf_putc(b, '"');
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c >= 0x80) {
			size_t k = vox_utf8_len(p + i, n - i);
			if (k == 0) {
				vox_buf_puts(b, "\\ufffd");
				i++;
			} else {
				vox_buf_append(b, p + i, k);
				i += k;
			}
			continue;
		}
		switch (c) {
		case '"': vox_buf_puts(b, "\\\""); break;
		case '\\': vox_buf_puts(b, "\\\\"); break;
		case '\n': vox_buf_puts(b, "\\n"); break;
		case '\r': vox_buf_puts(b, "\\r"); break;
		case '\t': vox_buf_puts(b, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				vox_buf_printf(b, "\\u%04x", c);
			else
				vox_buf_putc(b, (char)c);
		}
		i++;
	}
	vox_buf_putc(b, '"');
}

void vox_buf_hex(vox_buf *b, const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = p;
	vox_buf_reserve(b, n * 2);
	for (size_t i = 0; i < n; i++) {
		b->data[b->len++] = digits[s[i] >> 4];
		b->data[b->len++] = digits[s[i] & 15];
	}
	b->data[b->len] = '\0';
}

bool vox_parse_decimal(uint64_t *out, const char *s, size_t n)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int vox_choice_index(const char *const *list, const char *s, size_t n)
{
	for (int i = 0; list[i]; i++)
		if (strlen(list[i]) == n && memcmp(list[i], s, n) == 0)
			return i;
	return -1;
}

void vox_choice_join(char *out, size_t outlen, const char *const *list,
		     const char *sep)
{
	size_t used = 0;
	if (outlen == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; list[i] && used < outlen - 1; i++) {
		int k = snprintf(out + used, outlen - used, "%s%s", i ? sep : "",
				 list[i]);
		if (k < 0)
			break;
		used += (size_t)k;
	}
}
