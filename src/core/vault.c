/*
 * vault.c - the credential envelope and key ring (see vault.h).
 */
#include "core/buf.h"
#include "core/vault.h"

#include <sodium.h>

typedef struct key_slot {
	uint32_t version;
	unsigned char *key; /* sodium_malloc'd, read-only when idle */
} key_slot;

struct vox_keyring {
	key_slot keys[VOX_VAULT_MAX_KEYS];
	size_t n;
	uint32_t active;
};

const char *const vox_vault_providers[] = {
	"vapi", "twilio", "google_calendar", "resend", "elevenlabs", "openai",
	"deepgram", "cartesia", "outlook_calendar", "hubspot", "salesforce",
	"stripe", NULL,
};
const char *const vox_vault_types[] = {"default", "inbound", "outbound", NULL};

static bool in_list(const char *const *list, const char *s, size_t n)
{
	return vox_choice_index(list, s, n) >= 0;
}

bool vox_vault_provider_ok(const char *s, size_t n)
{
	return in_list(vox_vault_providers, s, n);
}

bool vox_vault_type_ok(const char *s, size_t n)
{
	return in_list(vox_vault_types, s, n);
}

void vox_keyring_free(vox_keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->n; i++)
		sodium_free(kr->keys[i].key); /* wipes before freeing */
	sodium_memzero(kr, sizeof(*kr));
	free(kr);
}

uint32_t vox_keyring_active(const vox_keyring *kr)
{
	return kr->active;
}

size_t vox_keyring_count(const vox_keyring *kr)
{
	return kr->n;
}

uint32_t vox_keyring_version_at(const vox_keyring *kr, size_t i)
{
	return i < kr->n ? kr->keys[i].version : 0;
}

static const key_slot *find_key(const vox_keyring *kr, uint32_t version)
{
	for (size_t i = 0; i < kr->n; i++)
		if (kr->keys[i].version == version)
			return &kr->keys[i];
	return NULL;
}

bool vox_keyring_has(const vox_keyring *kr, uint32_t version)
{
	return find_key(kr, version) != NULL;
}

static bool parse_version(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	if (!vox_parse_decimal(&v, s, n) || v == 0 || v > INT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

vox_status vox_keyring_parse(vox_keyring **out, const char *text, size_t len,
			     char *err, size_t errlen)
{
	vox_keyring *kr = vox_calloc(1, sizeof(*kr));
	uint32_t active = 0;
	size_t lineno = 0;
	vox_status st = VOX_OK;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium did not initialise");
		st = VOX_E_INTERNAL;
		goto out;
	}
	for (size_t pos = 0; pos < len;) {
		size_t end = pos;
		while (end < len && text[end] != '\n' && text[end] != ',')
			end++;
		const char *line = text + pos;
		size_t n = end - pos;
		pos = end + 1;
		lineno++;
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
			n--;
		while (n && line[0] == ' ') {
			line++;
			n--;
		}
		if (n == 0 || line[0] == '#')
			continue;
		const char *sp = memchr(line, ' ', n);
		if (!sp) {
			snprintf(err, errlen, "key ring entry %zu: expected"
				 " \"<version> <base64 key>\"", lineno);
			st = VOX_E_CONFIG;
			goto out;
		}
		size_t first = (size_t)(sp - line);
		const char *rest = sp + 1;
		size_t restn = n - first - 1;
		while (restn && rest[0] == ' ') {
			rest++;
			restn--;
		}
		if (first == 6 && memcmp(line, "active", 6) == 0) {
			if (!parse_version(rest, restn, &active)) {
				snprintf(err, errlen, "key ring entry %zu: bad active version",
					 lineno);
				st = VOX_E_CONFIG;
				goto out;
			}
			continue;
		}
		uint32_t version;
		if (!parse_version(line, first, &version)) {
			snprintf(err, errlen, "key ring entry %zu: bad version", lineno);
			st = VOX_E_CONFIG;
			goto out;
		}
		if (find_key(kr, version)) {
			snprintf(err, errlen, "key ring entry %zu: version %u twice",
				 lineno, version);
			st = VOX_E_CONFIG;
			goto out;
		}
		if (kr->n == VOX_VAULT_MAX_KEYS) {
			snprintf(err, errlen, "key ring: more than %d keys",
				 VOX_VAULT_MAX_KEYS);
			st = VOX_E_CONFIG;
			goto out;
		}
		unsigned char *key = sodium_malloc(VOX_VAULT_KEY_BYTES);
		if (!key)
			abort();
		size_t keylen = 0;
		const char *b64end = NULL;
		if (sodium_base642bin(key, VOX_VAULT_KEY_BYTES, rest, restn, NULL,
				      &keylen, &b64end,
				      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    keylen != VOX_VAULT_KEY_BYTES || b64end != rest + restn) {
			sodium_free(key);
			snprintf(err, errlen, "key ring entry %zu (version %u): not a"
				 " base64 key of %d bytes", lineno, version,
				 VOX_VAULT_KEY_BYTES);
			st = VOX_E_CONFIG;
			goto out;
		}
		sodium_mprotect_readonly(key);
		/* keep versions ascending */
		size_t at = kr->n;
		while (at > 0 && kr->keys[at - 1].version > version) {
			kr->keys[at] = kr->keys[at - 1];
			at--;
		}
		kr->keys[at] = (key_slot){version, key};
		kr->n++;
	}
	if (kr->n == 0) {
		snprintf(err, errlen, "key ring: no key");
		st = VOX_E_CONFIG;
		goto out;
	}
	kr->active = active ? active : kr->keys[kr->n - 1].version;
	if (!find_key(kr, kr->active)) {
		snprintf(err, errlen, "key ring: active version %u has no key", kr->active);
		st = VOX_E_CONFIG;
	}
out:
	if (st != VOX_OK) {
		vox_keyring_free(kr);
		return st;
	}
	*out = kr;
	return VOX_OK;
}

size_t vox_vault_sealed_len(size_t plain_len)
{
	return VOX_VAULT_HEADER + plain_len + VOX_VAULT_TAG;
}

/* AD: "vox-credential|<format>|<org>|<provider>|<type>|<version>". The
 * fields cannot contain '|' (a UUID and two checked enumerations). */
static size_t make_ad(const vox_cred_ad *ad, uint32_t version, char *out,
		      size_t outlen)
{
	int n = snprintf(out, outlen, "vox-credential|%d|%s|%s|%s|%u",
			 VOX_VAULT_FORMAT, ad->org_id, ad->provider, ad->type,
			 version);
	return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

vox_status vox_vault_seal(uint8_t *out, size_t outlen,
			  uint32_t *version, const vox_keyring *kr, const vox_cred_ad *ad,
			  const uint8_t *plain, size_t len)
{
	char adbuf[256];
	if (len > VOX_VAULT_MAX_CONFIG)
		return VOX_E_TOO_LARGE;
	if (outlen < vox_vault_sealed_len(len))
		return VOX_E_INVALID;
	const key_slot *k = find_key(kr, kr->active);
	size_t adlen = make_ad(ad, kr->active, adbuf, sizeof(adbuf));
	if (!k || adlen == 0)
		return VOX_E_INVALID;
	out[0] = VOX_VAULT_FORMAT;
	out[1] = (uint8_t)(kr->active >> 24);
	out[2] = (uint8_t)(kr->active >> 16);
	out[3] = (uint8_t)(kr->active >> 8);
	out[4] = (uint8_t)kr->active;
	randombytes_buf(out + 5, 24);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		out + VOX_VAULT_HEADER, &clen, plain, len,
		(const unsigned char *)adbuf, adlen, NULL, out + 5, k->key);
	*version = kr->active;
	return VOX_OK;
}

uint32_t vox_vault_blob_version(const uint8_t *blob, size_t len)
{
	if (len < VOX_VAULT_HEADER + VOX_VAULT_TAG || blob[0] != VOX_VAULT_FORMAT)
		return 0;
	return (uint32_t)vox_be_get(blob + 1, 4);
}

vox_status vox_vault_open(uint8_t **plain, size_t *len,
			  const vox_keyring *kr, const vox_cred_ad *ad, const uint8_t *blob,
			  size_t bloblen, char *err, size_t errlen)
{
	char adbuf[256];
	uint32_t version = vox_vault_blob_version(blob, bloblen);
	if (version == 0) {
		snprintf(err, errlen, "not a vox credential envelope");
		return VOX_E_CRYPTO;
	}
	const key_slot *k = find_key(kr, version);
	if (!k) {
		snprintf(err, errlen, "key version %u is not in the key ring", version);
		return VOX_E_CRYPTO;
	}
	size_t adlen = make_ad(ad, version, adbuf, sizeof(adbuf));
	size_t plen = bloblen - VOX_VAULT_HEADER - VOX_VAULT_TAG;
	uint8_t *p = sodium_malloc(plen ? plen : 1);
	if (!p)
		abort();
	unsigned long long out_len = 0;
	if (adlen == 0 ||
	    crypto_aead_xchacha20poly1305_ietf_decrypt(
		    p, &out_len, NULL, blob + VOX_VAULT_HEADER,
		    bloblen - VOX_VAULT_HEADER, (const unsigned char *)adbuf,
		    adlen, blob + 5, k->key) != 0) {
		sodium_free(p);
		snprintf(err, errlen, "authentication failed (tampered, or bound"
			 " to another org, provider, type or key version)");
		return VOX_E_CRYPTO;
	}
	*plain = p;
	*len = (size_t)out_len;
	return VOX_OK;
}

void vox_vault_new_key_b64(char out[64])
{
	unsigned char key[VOX_VAULT_KEY_BYTES];
	if (sodium_init() < 0)
		abort();
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(out, 64, key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(key, sizeof(key));
}
