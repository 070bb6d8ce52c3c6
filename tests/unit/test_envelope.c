/*
 * The credential envelope and key ring of vox-vault (core/vault.c,
 * io/keyfile.c): round trip, binding to (org, provider, type, version),
 * tamper detection on every byte, key ring parsing and its errors (which
 * never echo key material), and the key file's permission check.
 */
#include "core/common.h"

#include <fcntl.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/vault.h"
#include "io/keyfile.h"

#define ORG "4d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a"
#define ORG2 "4d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1b"
/* two fixed test keys (base64 of 32 bytes) */
#define K1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define K2 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

static vox_keyring *ring(const char *text)
{
	vox_keyring *kr = NULL;
	char err[256];
	if (vox_keyring_parse(&kr, text, strlen(text), err, sizeof(err)) != VOX_OK)
		fail_msg("key ring: %s", err);
	return kr;
}

static const char secret[] = "{\"account_sid\":\"AC123\",\"auth_token\":\"s3cr3t-t0ken\"}";

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return true;
	return false;
}

static size_t seal(vox_keyring *kr, const vox_cred_ad *ad, uint8_t *blob,
		   uint32_t *version)
{
	size_t n = vox_vault_sealed_len(sizeof(secret) - 1);
	assert_int_equal(vox_vault_seal(blob, n, version,
					kr, ad, (const uint8_t *)secret, sizeof(secret) - 1), VOX_OK);
	return n;
}

static vox_status open_blob(vox_keyring *kr, const vox_cred_ad *ad,
			    const uint8_t *blob, size_t n)
{
	uint8_t *plain = NULL;
	size_t len = 0;
	char err[256];
	vox_status st = vox_vault_open(&plain, &len, kr, ad, blob, n, err, sizeof(err));
	if (st == VOX_OK) {
		assert_int_equal(len, sizeof(secret) - 1);
		assert_memory_equal(plain, secret, len);
		sodium_free(plain);
	} else {
		assert_null(strstr(err, "s3cr3t"));
	}
	return st;
}

static void test_round_trip_and_fresh_nonces(void **state)
{
	(void)state;
	vox_keyring *kr = ring("1 " K1);
	vox_cred_ad ad = {ORG, "twilio", "default"};
	uint8_t a[256], b[256];
	uint32_t v = 0;
	size_t n = seal(kr, &ad, a, &v);
	assert_int_equal(v, 1);
	assert_int_equal(vox_vault_blob_version(a, n), 1);
	assert_int_equal(open_blob(kr, &ad, a, n), VOX_OK);
	/* the plaintext is nowhere in the envelope */
	assert_false(contains(a, n, "s3cr3t"));
	/* a new nonce each time: same input, different envelopes */
	seal(kr, &ad, b, &v);
	assert_memory_not_equal(a + 5, b + 5, 24);
	vox_keyring_free(kr);
}

static void test_bound_to_org_provider_type_and_version(void **state)
{
	(void)state;
	vox_keyring *kr = ring("1 " K1 "\n2 " K2 "\nactive 1\n");
	vox_cred_ad ad = {ORG, "twilio", "default"};
	uint8_t blob[256];
	uint32_t v;
	size_t n = seal(kr, &ad, blob, &v);
	vox_cred_ad other_org = {ORG2, "twilio", "default"};
	vox_cred_ad other_provider = {ORG, "vapi", "default"};
	vox_cred_ad other_type = {ORG, "twilio", "inbound"};
	assert_int_equal(open_blob(kr, &other_org, blob, n), VOX_E_CRYPTO);
	assert_int_equal(open_blob(kr, &other_provider, blob, n), VOX_E_CRYPTO);
	assert_int_equal(open_blob(kr, &other_type, blob, n), VOX_E_CRYPTO);
	/* relabelled as sealed by key 2: refused */
	blob[4] = 2;
	assert_int_equal(open_blob(kr, &ad, blob, n), VOX_E_CRYPTO);
	blob[4] = 1;
	assert_int_equal(open_blob(kr, &ad, blob, n), VOX_OK);
	vox_keyring_free(kr);
}

static void test_every_flipped_byte_is_detected(void **state)
{
	(void)state;
	vox_keyring *kr = ring("1 " K1);
	vox_cred_ad ad = {ORG, "twilio", "default"};
	uint8_t blob[256];
	uint32_t v;
	size_t n = seal(kr, &ad, blob, &v);
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			blob[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(open_blob(kr, &ad, blob, n), VOX_E_CRYPTO);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* truncated envelopes too */
	for (size_t cut = 0; cut < n; cut += 7)
		assert_int_equal(open_blob(kr, &ad, blob, cut), VOX_E_CRYPTO);
	assert_int_equal(open_blob(kr, &ad, blob, n), VOX_OK);
	vox_keyring_free(kr);
}

static void test_wrong_key_or_missing_version(void **state)
{
	(void)state;
	vox_keyring *kr = ring("1 " K1);
	vox_keyring *other = ring("1 " K2);
	vox_keyring *later = ring("2 " K2);
	vox_cred_ad ad = {ORG, "stripe", "default"};
	uint8_t blob[256];
	uint32_t v;
	size_t n = seal(kr, &ad, blob, &v);
	assert_int_equal(open_blob(other, &ad, blob, n), VOX_E_CRYPTO);
	assert_int_equal(open_blob(later, &ad, blob, n), VOX_E_CRYPTO);
	/* rotation: a ring holding both opens old envelopes, seals with 2 */
	vox_keyring *both = ring("1 " K1 ", 2 " K2);
	assert_int_equal(vox_keyring_active(both), 2);
	assert_int_equal(open_blob(both, &ad, blob, n), VOX_OK);
	uint8_t again[256];
	seal(both, &ad, again, &v);
	assert_int_equal(v, 2);
	assert_int_equal(open_blob(later, &ad, again, n), VOX_OK);
	vox_keyring_free(kr);
	vox_keyring_free(other);
	vox_keyring_free(later);
	vox_keyring_free(both);
}

static void test_size_limit(void **state)
{
	(void)state;
	vox_keyring *kr = ring("1 " K1);
	vox_cred_ad ad = {ORG, "twilio", "default"};
	size_t big = VOX_VAULT_MAX_CONFIG + 1;
	uint8_t *plain = vox_calloc(1, big);
	uint8_t *out = vox_malloc(vox_vault_sealed_len(big));
	uint32_t v = 0;
	assert_int_equal(vox_vault_seal(out, vox_vault_sealed_len(big), &v, kr, &ad,
					plain, big), VOX_E_TOO_LARGE);
	assert_int_equal(vox_vault_seal(out, vox_vault_sealed_len(big), &v, kr, &ad,
					plain, big - 1), VOX_OK);
	free(plain);
	free(out);
	vox_keyring_free(kr);
}

static void parse_fails(const char *text, const char *needle)
{
	vox_keyring *kr = NULL;
	char err[256] = "";
	assert_int_equal(vox_keyring_parse(&kr, text, strlen(text), err, sizeof(err)),
			 VOX_E_CONFIG);
	assert_null(kr);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
	/* never echo key material */
	assert_null(strstr(err, "AAECAwQF"));
	assert_null(strstr(err, "ICEiIyQl"));
}

static void test_key_ring_parsing(void **state)
{
	(void)state;
	vox_keyring *kr = ring("# vox keys\n\n3 " K2 "\n1 " K1 "\r\nactive 1\n");
	assert_int_equal(vox_keyring_count(kr), 2);
	assert_int_equal(vox_keyring_version_at(kr, 0), 1);
	assert_int_equal(vox_keyring_version_at(kr, 1), 3);
	assert_int_equal(vox_keyring_active(kr), 1);
	assert_true(vox_keyring_has(kr, 3));
	assert_false(vox_keyring_has(kr, 2));
	vox_keyring_free(kr);

	parse_fails("", "no key");
	parse_fails("# only a comment\n", "no key");
	parse_fails("1 AAECAwQF", "entry 1 (version 1): not a base64 key");
	parse_fails("1 " K1 "\n1 " K2, "version 1 twice");
	parse_fails("0 " K1, "bad version");
	parse_fails("x " K1, "bad version");
	parse_fails("1 " K1 "\nactive 2", "active version 2 has no key");
	parse_fails("1 " K1 "\nactive two", "bad active version");
	parse_fails(K1, "expected");
	parse_fails("1 " K1 "AA", "not a base64 key");
}

static void test_key_file_must_be_private(void **state)
{
	(void)state;
	char path[] = "/tmp/vox-keyfile-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char text[] = "1 " K1 "\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	vox_keyring *kr = NULL;
	char err[256];
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(vox_keyfile_load(&kr, path, err, sizeof(err)), VOX_E_FORBIDDEN);
	assert_non_null(strstr(err, "chmod 600"));
	assert_null(kr);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(vox_keyfile_load(&kr, path, err, sizeof(err)), VOX_OK);
	assert_int_equal(vox_keyring_active(kr), 1);
	vox_keyring_free(kr);
	unlink(path);
	assert_int_equal(vox_keyfile_load(&kr, path, err, sizeof(err)), VOX_E_CONFIG);
}

static void test_providers_and_new_keys(void **state)
{
	(void)state;
	assert_true(vox_vault_provider_ok("twilio", 6));
	assert_true(vox_vault_provider_ok("google_calendar", 15));
	assert_false(vox_vault_provider_ok("twilioX", 7));
	assert_false(vox_vault_provider_ok("", 0));
	assert_true(vox_vault_type_ok("inbound", 7));
	assert_false(vox_vault_type_ok("sideways", 8));
	char a[64], b[64], text[128];
	vox_vault_new_key_b64(a);
	vox_vault_new_key_b64(b);
	assert_string_not_equal(a, b);
	snprintf(text, sizeof(text), "7 %s", a);
	vox_keyring *kr = ring(text);
	assert_int_equal(vox_keyring_active(kr), 7);
	vox_keyring_free(kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_fresh_nonces),
		cmocka_unit_test(test_bound_to_org_provider_type_and_version),
		cmocka_unit_test(test_every_flipped_byte_is_detected),
		cmocka_unit_test(test_wrong_key_or_missing_version),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_key_ring_parsing),
		cmocka_unit_test(test_key_file_must_be_private),
		cmocka_unit_test(test_providers_and_new_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
