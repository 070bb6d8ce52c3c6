/*
 * credentials_request.h - the request body of credentials.put, .get, .list
 * and .delete (subjects/credentials.md), decoded and limited the way every
 * request is: a msgpack map, the keys the vault reads checked, a key given
 * twice refused, others skipped. Pure: the endpoints are
 * src/actors/vault/store.c.
 */
#ifndef VOX_CREDENTIALS_REQUEST_H
#define VOX_CREDENTIALS_REQUEST_H

#include "core/common.h"

#include "core/buf.h"
#include "core/vault.h"

/* The largest body: the biggest config plus room for the other keys. */
#define VOX_CRED_MAX_REQUEST (VOX_VAULT_MAX_CONFIG + 32 * 1024)
/* The largest metadata, as the JSON object stored. */
#define VOX_CRED_MAX_METADATA 4096

/* A decoded request: views into the body, valid while it is. */
typedef struct vox_cred_req {
	char provider[32];
	char type[16]; /* "default" when absent */
	bool has_provider, has_type;
	bool complete; /* decoded to the end: type is what was asked */
	const uint8_t *config;
	uint32_t config_len;
	bool has_config;
	const uint8_t *reply_key; /* 32 bytes (an X25519 public key) */
	bool has_reply_key;
	vox_buf metadata; /* JSON object, empty when absent; owned */
} vox_cred_req;

/*
 * Decode body by the rules of every request (core/schema.h; an empty body
 * counts as {}). VOX_E_TOO_LARGE over VOX_CRED_MAX_REQUEST bytes or
 * VOX_CRED_MAX_METADATA of metadata, VOX_E_DECODE or VOX_E_INVALID
 * otherwise; err names the field ("type: must be one of
 * default|inbound|outbound") and never quotes the input. *q is always
 * initialised: release it with vox_cred_req_release whatever the result.
 */
vox_status vox_cred_req_parse(vox_cred_req *q, const void *data, size_t len,
			      vox_error *err) VOX_MUST_CHECK;

void vox_cred_req_release(vox_cred_req *q);

#endif
