/*
 * credentials_request.c - the credentials.* request decoder (see
 * credentials_request.h).
 */
#include "core/credentials_request.h"

#include "core/contract.h"
#include "core/schema.h"

#include <sodium.h>

/* What the schema decoder writes; vox_cred_req_parse turns it into a
 * vox_cred_req. */
typedef struct raw {
	int provider, type; /* index in the choices + 1 */
	vox_bytes config;
	vox_bytes reply_key;
} raw;

/* A key or value of metadata: UTF-8 text without a NUL byte (what a jsonb
 * string can hold as is), checked by the rules of a text field. */
static const vox_field metadata_text = {"metadata", VOX_F_TEXT, false, 0,
					VOX_CRED_MAX_REQUEST, NULL, 0, 0, NULL};

static bool text_ok(const char *s, uint32_t n)
{
	return vox_field_check_str(&metadata_text, s, n, NULL) == VOX_OK;
}

/* metadata: a map of strings to strings, written as a JSON object; text
 * that JSON cannot hold byte for byte is refused, never altered. */
static vox_status read_metadata(vox_mp *r, const vox_field *f, void *raw_out,
				void *ctx, vox_error *err)
{
	vox_buf *out = ctx;
	uint32_t n;
	VOX_UNUSED(raw_out);
	if (vox_mp_map(r, &n) != VOX_MP_OK)
		return vox_error_set(err, VOX_E_INVALID, "wrong_type", f->key,
				     "must be a map of strings");
	vox_buf_putc(out, '{');
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *v;
		uint32_t kl, vl;
		if (vox_mp_str(r, &k, &kl) != VOX_MP_OK ||
		    vox_mp_str(r, &v, &vl) != VOX_MP_OK)
			return vox_error_set(err, VOX_E_INVALID, "wrong_type",
					     f->key, "must be a map of strings");
		if (!text_ok(k, kl) || !text_ok(v, vl))
			return vox_error_set(err, VOX_E_INVALID, "bad_string",
					     f->key, "must be UTF-8 text without"
					     " NUL bytes");
		if (i)
			vox_buf_putc(out, ',');
		vox_buf_json_str(out, k, kl);
		vox_buf_putc(out, ':');
		vox_buf_json_str(out, v, vl);
		if (out->len > VOX_CRED_MAX_METADATA)
			return vox_error_set(err, VOX_E_TOO_LARGE, "too_large",
					     f->key, "larger than %d bytes",
					     VOX_CRED_MAX_METADATA);
	}
	vox_buf_putc(out, '}');
	return VOX_OK;
}

#define R(f) offsetof(raw, f)
static const vox_field fields[] = {
	{"provider", VOX_F_ENUM, false, 0, 0, vox_vault_providers, R(provider), 0, NULL},
	{"type", VOX_F_ENUM, false, 0, 0, vox_vault_types, R(type), 0, NULL},
	{"config", VOX_F_BYTES, false, 0, UINT32_MAX, NULL, R(config), 0, NULL},
	{"reply_key", VOX_F_BIN, false, crypto_box_PUBLICKEYBYTES,
	 crypto_box_PUBLICKEYBYTES, NULL, R(reply_key), 0, NULL},
	{"metadata", VOX_F_CUSTOM, false, 0, 0, NULL, 0, 0, read_metadata},
};
#undef R

static const vox_schema schema = {fields, VOX_NELEM(fields),
				  VOX_CRED_MAX_REQUEST, 0, true,
				  "request"};

const vox_schema *vox_cred_req_schema(void)
{
	return &schema;
}

vox_status vox_cred_req_parse(vox_cred_req *q, const void *data, size_t len,
			      vox_error *err)
{
	raw v;
	memset(q, 0, sizeof(*q));
	memset(&v, 0, sizeof(v));
	vox_buf_init(&q->metadata);
	snprintf(q->type, sizeof(q->type), "default");
	/* keys not the vault's (an org_id included: the org is the
	 * subject's) are skipped, even when repeated */
	vox_status st = vox_schema_decode(&v, NULL, &schema, VOX_SCHEMA_ALL,
					  data, len, &q->metadata, err);
	if (st != VOX_OK)
		return st;
	q->has_provider = v.provider > 0;
	q->has_type = v.type > 0;
	if (q->has_provider)
		snprintf(q->provider, sizeof(q->provider), "%s",
			 vox_vault_providers[v.provider - 1]);
	if (q->has_type)
		snprintf(q->type, sizeof(q->type), "%s",
			 vox_vault_types[v.type - 1]);
	q->has_config = v.config.ptr != NULL;
	q->config = v.config.ptr;
	q->config_len = v.config.len;
	q->has_reply_key = v.reply_key.ptr != NULL;
	q->reply_key = v.reply_key.ptr;
	q->complete = true;
	return VOX_OK;
}

void vox_cred_req_release(vox_cred_req *q)
{
	vox_buf_release(&q->metadata);
}
