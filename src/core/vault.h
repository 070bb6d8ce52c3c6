/*
 * vault.h - the credential envelope of vox-vault and its key ring, pure
 * (libsodium, no I/O). A credential is sealed with XChaCha20-Poly1305
 * under one versioned master key; the additional data binds the
 * ciphertext to (org_id, provider, type, key_version), so a row copied to
 * another org, provider or type, or relabelled with another key version,
 * fails to open.
 *
 * Envelope (the bytes stored in org_credentials.encrypted_config):
 *   byte 0       format, VOX_VAULT_FORMAT (1)
 *   bytes 1..4   key version, big-endian
 *   bytes 5..28  random nonce (24 bytes)
 *   bytes 29..   ciphertext and its 16-byte tag
 *
 * Keys live in sodium_malloc'd memory (guard pages, mlock'd), read-only,
 * and are wiped when the ring is freed. Nothing here ever prints a key.
 */
#ifndef VOX_VAULT_H
#define VOX_VAULT_H

#include "core/common.h"

#define VOX_VAULT_FORMAT 1
#define VOX_VAULT_KEY_BYTES 32
#define VOX_VAULT_HEADER (1 + 4 + 24)
#define VOX_VAULT_TAG 16
#define VOX_VAULT_MAX_CONFIG (64 * 1024) /* largest credential accepted */
#define VOX_VAULT_MAX_KEYS 64

typedef struct vox_keyring vox_keyring;

/*
 * Parse a key ring from text: one key per line (or per comma, so that it
 * fits in one environment variable), "<version> <base64 key>"
 * (version 1..2^31-1, a 32-byte key in standard base64), blank lines and
 * '#' comments ignored, and optionally one line "active <version>"
 * (default: the highest version). On error *out is untouched and err says
 * which line is wrong, never what the key was. Free with vox_keyring_free.
 */
vox_status vox_keyring_parse(vox_keyring **out, const char *text, size_t len,
			     char *err, size_t errlen) VOX_MUST_CHECK;

/* Wipes and frees. Accepts NULL. */
void vox_keyring_free(vox_keyring *kr);

/* The version new envelopes are sealed with. */
uint32_t vox_keyring_active(const vox_keyring *kr);

/* Number of keys, and the i-th version (ascending). */
size_t vox_keyring_count(const vox_keyring *kr);
uint32_t vox_keyring_version_at(const vox_keyring *kr, size_t i);
bool vox_keyring_has(const vox_keyring *kr, uint32_t version);

/* What a credential is bound to. Strings are NUL-terminated. */
typedef struct vox_cred_ad {
	const char *org_id;   /* canonical lowercase UUID */
	const char *provider; /* e.g. "twilio" */
	const char *type;     /* "default", "inbound", "outbound" */
} vox_cred_ad;

/* Envelope size for a credential of plain_len bytes. */
size_t vox_vault_sealed_len(size_t plain_len);

/*
 * Seal plain (len <= VOX_VAULT_MAX_CONFIG) with the active key into out
 * (outlen >= vox_vault_sealed_len(len)); *version gets the key version.
 * VOX_E_TOO_LARGE over the limit.
 */
vox_status vox_vault_seal(uint8_t *out, size_t outlen,
			  uint32_t *version, const vox_keyring *kr, const vox_cred_ad *ad,
			  const uint8_t *plain, size_t len) VOX_MUST_CHECK;

/*
 * Open an envelope. On VOX_OK *plain is sodium_malloc'd (the caller wipes
 * and frees it with sodium_free) and *len its size. VOX_E_CRYPTO when the
 * envelope is malformed, tampered with, bound to something else, or its
 * key version is not in the ring (*err says which, without secrets).
 */
vox_status vox_vault_open(uint8_t **plain, size_t *len,
			  const vox_keyring *kr, const vox_cred_ad *ad, const uint8_t *blob,
			  size_t bloblen, char *err, size_t errlen) VOX_MUST_CHECK;

/* The key version an envelope names, 0 if it is not an envelope. */
uint32_t vox_vault_blob_version(const uint8_t *blob, size_t len);

/* Providers vox-vault stores credentials for (the check constraint of
 * org_credentials.provider), and types; NULL-terminated. */
extern const char *const vox_vault_providers[];
extern const char *const vox_vault_types[];
bool vox_vault_provider_ok(const char *s, size_t n);
bool vox_vault_type_ok(const char *s, size_t n);

/* A new random master key, base64 (45 bytes with the NUL) - for
 * `voxctl keys generate`. */
void vox_vault_new_key_b64(char out[64]);

#endif
