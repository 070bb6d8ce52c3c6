/*
 * Integration: `voxctl keys generate|status|rotate` on real files and a real
 * database. The key file is created 0600 and grows one version at a time,
 * status never prints key material, counts the credentials sealed with
 * each version, and a key file others can read is refused.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "core/vault.h"
#include "harness.h"
#include "io/keyfile.h"
#include "io/migrate.h"

/* Run voxctl with env prefix; output (stdout+stderr) into out. */
static int voxctl(const char *env, const char *args, char *out, size_t outlen)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "env %s %s %s 2>&1", env, th_bin("voxctl"), args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	int ws = pclose(p);
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static void test_generate_and_status(void **state)
{
	(void)state;
	char file[512], env[1200], out[4096], dsn[512];
	snprintf(file, sizeof(file), "%s/keys-%ld", th_env("VOX_TEST_TMP"), (long)getpid());
	unlink(file);
	snprintf(env, sizeof(env), "-u VOX_VAULT_KEYS -u VOX_PG_DSN VOX_VAULT_KEY_FILE=%s", file);
	assert_int_equal(voxctl(env, "keys generate", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "key version 1 added"));
	assert_int_equal(voxctl(env, "keys generate", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "key version 2 added"));
	struct stat sb;
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* the file is a valid ring whose newest key is active */
	vox_keyring *kr = NULL;
	char err[256];
	assert_int_equal(vox_keyfile_load(&kr, file, err, sizeof(err)), VOX_OK);
	assert_int_equal(vox_keyring_count(kr), 2);
	assert_int_equal(vox_keyring_active(kr), 2);

	/* status counts credentials per version and prints no key */
	th_pg_create_db("keys", dsn, sizeof(dsn));
	PGconn *c = th_pg_connect(dsn);
	vox_buf merr;
	vox_buf_init(&merr);
	int applied = 0;
	assert_int_equal(vox_migrate_apply(c, vox_migrations, vox_migrations_count,
					   &applied, &merr), VOX_OK);
	vox_buf_release(&merr);
	th_pg_ok(c, "INSERT INTO organizations (id, name, email) VALUES"
		    " ('5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b', 'a', 'a@x')");
	th_pg_ok(c, "INSERT INTO org_credentials (org_id, provider, encrypted_config,"
		    " key_version) VALUES"
		    " ('5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b', 'twilio', '\\x00', 1),"
		    " ('5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b', 'vapi', '\\x00', 1),"
		    " ('5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b', 'stripe', '\\x00', 9)");
	PQfinish(c);
	snprintf(env, sizeof(env), "-u VOX_VAULT_KEYS VOX_VAULT_KEY_FILE=%s 'VOX_PG_DSN=%s'",
		 file, dsn);
	assert_int_equal(voxctl(env, "keys status", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "active key version: 2"));
	assert_non_null(strstr(out, "credentials sealed with version 1: 2\n"));
	assert_non_null(strstr(out, "credentials sealed with version 9: 1 (key missing!)"));
	/* no key material in the output: no base64 of the file's keys */
	FILE *fp = fopen(file, "r");
	char line[128];
	while (fgets(line, sizeof(line), fp)) {
		char *key = strchr(line, ' ') + 1;
		key[strcspn(key, "\n")] = '\0';
		assert_null(strstr(out, key));
		th_secret(key);
	}
	fclose(fp);

	/* rotate: a credential sealed with key 1 ends sealed with key 2 */
	c = th_pg_connect(dsn);
	th_pg_ok(c, "DELETE FROM org_credentials");
	fp = fopen(file, "r");
	assert_non_null(fgets(line, sizeof(line), fp)); /* "1 <key1>" */
	fclose(fp);
	vox_keyring *old = NULL;
	assert_int_equal(vox_keyring_parse(&old, line, strlen(line), err, sizeof(err)),
			 VOX_OK);
	vox_cred_ad ad = {"5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b", "twilio", "default"};
	uint8_t blob[128];
	uint32_t v = 0;
	assert_int_equal(vox_vault_seal(old, &ad, (const uint8_t *)"tok-123", 7, blob,
					sizeof(blob), &v), VOX_OK);
	assert_int_equal(v, 1);
	char hex[300];
	for (size_t i = 0; i < vox_vault_sealed_len(7); i++)
		snprintf(hex + 2 * i, 3, "%02x", blob[i]);
	const char *params[1] = {hex};
	PGresult *r = PQexecParams(c, "INSERT INTO org_credentials (org_id, provider,"
		" encrypted_config, key_version) VALUES"
		" ('5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b', 'twilio', decode($1, 'hex'), 1)",
		1, NULL, params, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	assert_int_equal(voxctl(env, "keys rotate", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "rotated 1 credential to key version 2"));
	r = PQexec(c, "SELECT key_version, encrypted_config FROM org_credentials");
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), "2");
	size_t blen = 0;
	unsigned char *stored = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 1), &blen);
	uint8_t *plain = NULL;
	size_t plen = 0;
	assert_int_equal(vox_vault_open(kr, &ad, stored, blen, &plain, &plen, err,
					sizeof(err)), VOX_OK);
	assert_int_equal(plen, 7);
	assert_memory_equal(plain, "tok-123", 7);
	/* and the old key alone no longer opens it */
	uint8_t *p2 = NULL;
	assert_int_equal(vox_vault_open(old, &ad, stored, blen, &p2, &plen, err,
					sizeof(err)), VOX_E_CRYPTO);
	sodium_free(plain);
	PQfreemem(stored);
	PQclear(r);
	PQfinish(c);
	vox_keyring_free(old);
	vox_keyring_free(kr);

	/* a key file others can read is refused */
	assert_int_equal(chmod(file, 0640), 0);
	snprintf(env, sizeof(env), "-u VOX_VAULT_KEYS -u VOX_PG_DSN VOX_VAULT_KEY_FILE=%s", file);
	assert_int_equal(voxctl(env, "keys status", out, sizeof(out)), 2);
	assert_non_null(strstr(out, "chmod 600"));
	unlink(file);
	/* bad usage */
	assert_int_equal(voxctl(env, "keys spin", out, sizeof(out)), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_and_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
