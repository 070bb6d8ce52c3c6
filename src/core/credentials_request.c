/*
 * credentials_request.c - the credentials.* request decoder (see
 * credentials_request.h).
 */
#include "core/credentials_request.h"

#include "core/mp.h"

#include <sodium.h>

enum {
	K_PROVIDER = 1u << 0,
	K_TYPE = 1u << 1,
	K_CONFIG = 1u << 2,
	K_REPLY_KEY = 1u << 3,
	K_METADATA = 1u << 4,
};

static const struct {
	const char *name;
	unsigned bit;
} keys[] = {
	{"provider", K_PROVIDER}, {"type", K_TYPE}, {"config", K_CONFIG},
	{"reply_key", K_REPLY_KEY}, {"metadata", K_METADATA},
};

static unsigned key_bit(const char *k, uint32_t kl, const char **name)
{
	for (size_t i = 0; i < VOX_NELEM(keys); i++)
		if (kl == strlen(keys[i].name) && memcmp(k, keys[i].name, kl) == 0) {
			*name = keys[i].name;
			return keys[i].bit;
		}
	return 0;
}

static vox_status refuse(char *err, size_t errlen, vox_status st,
			 const char *text)
{
	snprintf(err, errlen, "%s", text);
	return st;
}

/* A string or binary value. */
static bool read_bytes(vox_mp *r, const uint8_t **p, uint32_t *n)
{
	vox_mp_type t = vox_mp_peek(r);
	if (t == VOX_MP_STR) {
		const char *s;
		if (vox_mp_str(r, &s, n) != VOX_MP_OK)
			return false;
		*p = (const uint8_t *)s;
		return true;
	}
	if (t == VOX_MP_BIN)
		return vox_mp_bin(r, p, n) == VOX_MP_OK;
	return false;
}

/* UTF-8 text without a NUL byte (what a jsonb string can hold as is). */
static bool text_ok(const char *s, uint32_t n)
{
	for (uint32_t i = 0; i < n;) {
		if (s[i] == '\0')
			return false;
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = vox_utf8_len((const unsigned char *)s + i, n - i);
		if (k == 0)
			return false;
		i += (uint32_t)k;
	}
	return true;
}

/* metadata: a map of strings to strings, written as a JSON object; text
 * that JSON cannot hold byte for byte is refused, never altered. */
static vox_status read_metadata(vox_mp *r, vox_buf *out, char *err,
				size_t errlen)
{
	uint32_t n;
	if (vox_mp_peek(r) == VOX_MP_NIL)
		return vox_mp_nil(r) == VOX_MP_OK
			? VOX_OK
			: refuse(err, errlen, VOX_E_INVALID, "metadata: must be a map of strings");
	if (vox_mp_map(r, &n) != VOX_MP_OK)
		return refuse(err, errlen, VOX_E_INVALID, "metadata: must be a map of strings");
	vox_buf_putc(out, '{');
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *v;
		uint32_t kl, vl;
		if (vox_mp_str(r, &k, &kl) != VOX_MP_OK ||
		    vox_mp_str(r, &v, &vl) != VOX_MP_OK)
			return refuse(err, errlen, VOX_E_INVALID,
				      "metadata: must be a map of strings");
		if (!text_ok(k, kl) || !text_ok(v, vl))
			return refuse(err, errlen, VOX_E_INVALID,
				      "metadata: must be UTF-8 text without NUL bytes");
		if (i)
			vox_buf_putc(out, ',');
		vox_buf_json_str(out, k, kl);
		vox_buf_putc(out, ':');
		vox_buf_json_str(out, v, vl);
		if (out->len > VOX_CRED_MAX_METADATA)
			return refuse(err, errlen, VOX_E_TOO_LARGE,
				      "metadata: larger than 4096 bytes");
	}
	vox_buf_putc(out, '}');
	return VOX_OK;
}

/* provider or type: a string from its fixed list. */
static vox_status read_name(vox_mp *r, bool provider, char *out, size_t outlen,
			    char *err, size_t errlen)
{
	const char *s;
	uint32_t sl;
	if (vox_mp_peek(r) != VOX_MP_STR || vox_mp_str(r, &s, &sl) != VOX_MP_OK)
		return refuse(err, errlen, VOX_E_INVALID, provider
			      ? "provider: must be a string" : "type: must be a string");
	bool ok = provider ? vox_vault_provider_ok(s, sl) : vox_vault_type_ok(s, sl);
	if (!ok || sl >= outlen)
		return refuse(err, errlen, VOX_E_INVALID, provider
			      ? "provider: unknown provider"
			      : "type: must be default, inbound or outbound");
	memcpy(out, s, sl);
	out[sl] = '\0';
	return VOX_OK;
}

static vox_status read_value(vox_mp *r, unsigned bit, vox_cred_req *q,
			     char *err, size_t errlen)
{
	const uint8_t *b;
	uint32_t bl;
	switch (bit) {
	case K_PROVIDER:
		if (read_name(r, true, q->provider, sizeof(q->provider), err, errlen) != VOX_OK)
			return VOX_E_INVALID;
		q->has_provider = true;
		return VOX_OK;
	case K_TYPE:
		if (read_name(r, false, q->type, sizeof(q->type), err, errlen) != VOX_OK)
			return VOX_E_INVALID;
		q->has_type = true;
		return VOX_OK;
	case K_CONFIG:
		if (!read_bytes(r, &q->config, &q->config_len))
			return refuse(err, errlen, VOX_E_INVALID, "config: must be bin or str");
		q->has_config = true;
		return VOX_OK;
	case K_REPLY_KEY:
		if (vox_mp_peek(r) != VOX_MP_BIN || vox_mp_bin(r, &b, &bl) != VOX_MP_OK ||
		    bl != crypto_box_PUBLICKEYBYTES)
			return refuse(err, errlen, VOX_E_INVALID,
				      "reply_key: must be a 32-byte bin");
		q->reply_key = b;
		q->has_reply_key = true;
		return VOX_OK;
	default:
		return read_metadata(r, &q->metadata, err, errlen);
	}
}

vox_status vox_cred_req_parse(vox_cred_req *q, const void *data, size_t len,
			      char *err, size_t errlen)
{
	vox_mp r;
	uint32_t n = 0;
	unsigned seen = 0;
	memset(q, 0, sizeof(*q));
	vox_buf_init(&q->metadata);
	snprintf(q->type, sizeof(q->type), "default");
	if (len > VOX_CRED_MAX_REQUEST) {
		snprintf(err, errlen, "request of %zu bytes is over the %d byte limit",
			 len, VOX_CRED_MAX_REQUEST);
		return VOX_E_TOO_LARGE;
	}
	if (len > 0) {
		vox_mp_init(&r, data, len);
		if (vox_mp_peek(&r) != VOX_MP_MAP || vox_mp_map(&r, &n) != VOX_MP_OK)
			return refuse(err, errlen, VOX_E_INVALID,
				      "request must be a msgpack map");
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *name = NULL;
		uint32_t kl;
		if (vox_mp_peek(&r) != VOX_MP_STR || vox_mp_str(&r, &k, &kl) != VOX_MP_OK)
			return refuse(err, errlen, VOX_E_INVALID, "request keys must be strings");
		unsigned bit = key_bit(k, kl, &name);
		if (bit == 0) {
			/* not the vault's (an org_id included: the org is the
			 * subject's): skipped, even when repeated */
			if (vox_mp_skip(&r) != VOX_MP_OK)
				return refuse(err, errlen, VOX_E_INVALID,
					      "request must be a msgpack map");
			continue;
		}
		if (seen & bit) {
			snprintf(err, errlen, "%s: given twice", name);
			return VOX_E_INVALID;
		}
		seen |= bit;
		vox_status st = read_value(&r, bit, q, err, errlen);
		if (st != VOX_OK)
			return st;
	}
	if (len > 0 && vox_mp_left(&r) != 0) /* trailing bytes: not one map */
		return refuse(err, errlen, VOX_E_INVALID, "request must be a msgpack map");
	q->complete = true;
	return VOX_OK;
}

void vox_cred_req_release(vox_cred_req *q)
{
	vox_buf_release(&q->metadata);
}
