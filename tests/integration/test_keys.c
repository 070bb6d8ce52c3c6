/*
 * Integration: `voxctl keys generate|status|rotate` on real files and a real
 * database. The key file is created 0600 and grows one version at a time,
 * durably (written beside it, fsync'd, renamed, the directory fsync'd:
 * seen through an LD_PRELOAD spy), status never prints key material,
 * counts the credentials sealed with each version, and a key file others
 * can read is refused. `keys rotate` asks the running vox-vault
 * instances ($SRV.INFO, on a private nats-server) for their active key
 * version first and refuses while one seals with another.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "core/json.h"
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
	/* JSON by default, the sentence with --text */
	assert_int_equal(voxctl(env, "keys generate", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "{\"version\":1,\"file\":\""));
	assert_int_equal(voxctl(env, "keys generate --text", out, sizeof(out)), 0);
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
	assert_string_equal(out, "{\"active\":2,\"versions\":[1,2],\"sealed\":["
			    "{\"version\":1,\"credentials\":2,\"key_in_ring\":true},"
			    "{\"version\":9,\"credentials\":1,\"key_in_ring\":false}]}\n");
	assert_int_equal(voxctl(env, "keys status --text", out, sizeof(out)), 0);
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
	assert_int_equal(vox_vault_seal(blob, sizeof(blob), &v, old, &ad,
					(const uint8_t *)"tok-123", 7), VOX_OK);
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
	assert_non_null(strstr(out, "\"active\":2,\"rotated\":1}"));
	r = PQexec(c, "SELECT key_version, encrypted_config FROM org_credentials");
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), "2");
	size_t blen = 0;
	unsigned char *stored = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 1), &blen);
	uint8_t *plain = NULL;
	size_t plen = 0;
	assert_int_equal(vox_vault_open(&plain, &plen, kr, &ad, stored, blen, err,
					sizeof(err)), VOX_OK);
	assert_int_equal(plen, 7);
	assert_memory_equal(plain, "tok-123", 7);
	/* and the old key alone no longer opens it */
	uint8_t *p2 = NULL;
	assert_int_equal(vox_vault_open(&p2, &plen, old, &ad, stored, blen, err,
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

/* ---- generate is durable ------------------------------------------------ */

/* Line number (1-based) of the first line of text equal to want, 0 if none. */
static int line_of(const char *text, const char *want)
{
	int n = 0;
	size_t wl = strlen(want);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		n++;
		if (len == wl && memcmp(p, want, wl) == 0)
			return n;
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

static void read_text(const char *path, char *out, size_t outlen)
{
	FILE *fp = fopen(path, "r");
	size_t n = fp ? fread(out, 1, outlen - 1, fp) : 0;
	out[n] = '\0';
	if (fp)
		fclose(fp);
}

static void test_generate_is_durable(void **state)
{
	(void)state;
	char dir[512], file[600], spy[600], env[2400], out[4096], text[8192];
	char want[1400], key[64];
	snprintf(dir, sizeof(dir), "%s/keysdir-%ld", th_env("VOX_TEST_TMP"), (long)getpid());
	snprintf(file, sizeof(file), "%s/vault.keys", dir);
	snprintf(spy, sizeof(spy), "%s/spy-%ld.log", th_env("VOX_TEST_TMP"), (long)getpid());
	unlink(file);
	unlink(spy);
	rmdir(dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	/* an operator's file: a comment, no newline at the end, owned by
	 * the service's user */
	vox_vault_new_key_b64(key);
	th_secret(key);
	FILE *fp = fopen(file, "w");
	assert_non_null(fp);
	fprintf(fp, "# vault ring\n1 %s", key);
	fclose(fp);
	assert_int_equal(chmod(file, 0600), 0);
	assert_int_equal(chown(file, 65534, 65534), 0);

	snprintf(env, sizeof(env), "-u VOX_VAULT_KEYS -u VOX_PG_DSN LD_PRELOAD=%s"
		 " VOX_SPY_LOG=%s VOX_VAULT_KEY_FILE=%s", VOX_FSYNC_SPY, spy, file);
	assert_int_equal(voxctl(env, "keys generate --text", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "key version 2 added"));

	/* the order: the new file's data, its rename over the old one, the
	 * directory */
	read_text(spy, text, sizeof(text));
	const char *ren = strstr(text, "rename ");
	if (!ren)
		fprintf(stderr, "spy log:\n%s", text);
	assert_non_null(ren);
	char tmp[700];
	assert_int_equal(sscanf(ren, "rename %699s", tmp), 1);
	assert_true(strncmp(tmp, dir, strlen(dir)) == 0 && tmp[strlen(dir)] == '/');
	assert_string_not_equal(tmp, file);
	snprintf(want, sizeof(want), "rename %s %s", tmp, file);
	int at_rename = line_of(text, want);
	snprintf(want, sizeof(want), "fsync %s", tmp);
	int at_data = line_of(text, want);
	snprintf(want, sizeof(want), "fsync %s", dir);
	int at_dir = line_of(text, want);
	if (!(at_data && at_rename && at_dir && at_data < at_rename && at_rename < at_dir))
		fprintf(stderr, "spy log:\n%s", text);
	assert_true(at_data > 0 && at_data < at_rename);
	assert_true(at_rename > 0 && at_rename < at_dir);

	/* the file: owner-only, its owner kept, the old lines kept, one new
	 * key; nothing else left in the directory */
	struct stat sb;
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_uid, 65534);
	assert_int_equal(sb.st_gid, 65534);
	read_text(file, text, sizeof(text));
	snprintf(want, sizeof(want), "# vault ring\n1 %s\n2 ", key);
	assert_true(strncmp(text, want, strlen(want)) == 0);
	vox_keyring *kr = NULL;
	char err[256];
	assert_int_equal(vox_keyfile_load(&kr, file, err, sizeof(err)), VOX_OK);
	assert_int_equal(vox_keyring_count(kr), 2);
	assert_int_equal(vox_keyring_active(kr), 2);
	vox_keyring_free(kr);
	char *key2 = strstr(text, "\n2 ") + 3;
	key2[strcspn(key2, "\n")] = '\0';
	th_secret(key2);
	DIR *d = opendir(dir);
	assert_non_null(d);
	int entries = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
	closedir(d);
	assert_int_equal(entries, 1);
	assert_null(strstr(out, key));

	/* a first key in a directory with no file yet */
	unlink(file);
	snprintf(env, sizeof(env), "-u VOX_VAULT_KEYS -u VOX_PG_DSN VOX_VAULT_KEY_FILE=%s",
		 file);
	assert_int_equal(voxctl(env, "keys generate", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "{\"version\":1,"));
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	read_text(file, text, sizeof(text));
	text[2 + strcspn(text + 2, "\n")] = '\0'; /* "1 <key>" */
	th_secret(text + 2);
	unlink(file);
	unlink(spy);
	assert_int_equal(rmdir(dir), 0);
}

/* ---- rotate asks the running vaults first ------------------------------- */

#define ROT_ORG "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"

typedef struct rot_fixture {
	th_nats nats;
	pid_t vault;
	char dsn[512];
	char file[512];
	char log[600];
	natsConnection *nc;
} rot_fixture;

static int rot_setup(void **state)
{
	rot_fixture *f = vox_calloc(1, sizeof(*f));
	th_nats_start(&f->nats);
	th_pg_migrated_db("keysrot", f->dsn, sizeof(f->dsn));
	snprintf(f->file, sizeof(f->file), "%s/rot-keys-%ld", th_env("VOX_TEST_TMP"),
		 (long)getpid());
	snprintf(f->log, sizeof(f->log), "%s/keys-vault-%ld.log", th_env("VOX_TEST_TMP"),
		 (long)getpid());
	unlink(f->file);
	th_nats_connect(f->nats.url, &f->nc);
	*state = f;
	return 0;
}

/* Stops everything, also after a failed assertion. */
static int rot_teardown(void **state)
{
	rot_fixture *f = *state;
	if (!f)
		return 0;
	if (f->vault > 0)
		th_stop(f->vault, SIGKILL, 5000);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	unlink(f->file);
	free(f);
	return 0;
}

/* vault.active_key_version of the one vox-vault on the private server. */
static void active_version(rot_fixture *f, char *out, size_t outlen)
{
	natsMsg *m = NULL;
	out[0] = '\0';
	if (natsConnection_RequestString(&m, f->nc, "$SRV.INFO.vox-vault", "", 2000) !=
	    NATS_OK)
		return;
	vox_json *doc = vox_json_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
				       NULL);
	const vox_json *v = vox_json_get(vox_json_get(doc, "metadata"),
					 "vault.active_key_version");
	if (vox_json_type_of(v) == VOX_JSON_STRING)
		snprintf(out, outlen, "%s", vox_json_str(v));
	vox_json_free(doc);
	natsMsg_Destroy(m);
}

static void record_file_keys(const char *path)
{
	char line[128];
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		char *sp = strchr(line, ' ');
		if (!sp || strncmp(line, "active", 6) == 0)
			continue;
		sp[1 + strcspn(sp + 1, "\n")] = '\0';
		th_secret(sp + 1);
	}
	fclose(fp);
}

static void test_rotate_refuses_while_a_vault_has_another_version(void **state)
{
	rot_fixture *f = *state;
	char env[2000], out[4096], got[32], url[128], dsn[600], file[600];
	snprintf(env, sizeof(env), "-u VOX_VAULT_KEYS VOX_VAULT_KEY_FILE=%s 'VOX_PG_DSN=%s'"
		 " VOX_NATS_URL=%s", f->file, f->dsn, f->nats.url);
	assert_int_equal(voxctl(env, "keys generate", out, sizeof(out)), 0);
	record_file_keys(f->file);
	PGconn *c = th_pg_connect(f->dsn);
	th_pg_ok(c, "INSERT INTO organizations (id, name, email) VALUES"
		    " ('" ROT_ORG "', 'rot', 'rot@example.com')");

	/* a vault on key version 1, one credential sealed with it */
	snprintf(url, sizeof(url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(dsn, sizeof(dsn), "VOX_PG_DSN=%s", f->dsn);
	snprintf(file, sizeof(file), "VOX_VAULT_KEY_FILE=%s", f->file);
	char *venv[] = {url, dsn, file, NULL};
	f->vault = th_spawn("vox-vault", venv, f->log);
	th_wait_started(&f->vault, "vox-vault", f->log, 200);
	th_body b;
	th_reply r;
	th_secret("rot-secret-4b7e1f");
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "twilio");
	th_body_str(&b, "config", "rot-secret-4b7e1f");
	assert_int_equal(th_request_raw(f->nc, "credentials.put." ROT_ORG, b.sb.data,
					b.sb.size, NULL, NULL, &r), NATS_OK);
	msgpack_sbuffer_destroy(&b.sb);
	assert_string_equal(r.code, "");
	th_reply_free(&r);
	active_version(f, got, sizeof(got));
	assert_string_equal(got, "1");

	/* the file moves to version 2; the vault has not reloaded: refused,
	 * in one line, nothing re-sealed */
	assert_int_equal(voxctl(env, "keys generate", out, sizeof(out)), 0);
	record_file_keys(f->file);
	int rc = voxctl(env, "keys rotate", out, sizeof(out));
	if (rc != 1 || !strstr(out, "nothing rotated"))
		fprintf(stderr, "keys rotate said (exit %d):\n%s", rc, out);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "nothing rotated"));
	assert_non_null(strstr(out, "active key version 1"));
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n')[1], '\0'); /* one line */
	assert_null(strstr(out, "rotated 0"));
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM org_credentials"
				      " WHERE key_version = 1"), 1);

	/* after SIGHUP the vault seals with 2: rotate proceeds */
	assert_int_equal(kill(f->vault, SIGHUP), 0);
	for (int t = 0; t < 100; t++) {
		active_version(f, got, sizeof(got));
		if (strcmp(got, "2") == 0)
			break;
		th_sleep_ms(50);
	}
	assert_string_equal(got, "2");
	rc = voxctl(env, "keys rotate --text", out, sizeof(out));
	if (rc != 0)
		fprintf(stderr, "keys rotate said (exit %d):\n%s", rc, out);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "1 vox-vault instance on key version 2"));
	assert_non_null(strstr(out, "rotated 1 credential to key version 2"));
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM org_credentials"
				      " WHERE key_version = 2"), 1);

	/* no vault running: it proceeds and says so */
	int ws = th_stop(f->vault, SIGTERM, 10000);
	f->vault = 0;
	assert_true(WIFEXITED(ws));
	assert_int_equal(voxctl(env, "keys rotate --text", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "no vox-vault instance answered"));
	assert_non_null(strstr(out, "rotated 0 credentials to key version 2"));
	assert_int_equal(voxctl(env, "keys rotate", out, sizeof(out)), 0);
	assert_string_equal(out, "{\"vault_instances\":0,\"active\":2,\"rotated\":0}\n");
	/* and NATS unreachable: it does not guess */
	th_nats_stop(&f->nats);
	assert_int_not_equal(voxctl(env, "keys rotate", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "nothing rotated"));
	PQfinish(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_and_status),
		cmocka_unit_test(test_generate_is_durable),
		cmocka_unit_test_setup_teardown(
			test_rotate_refuses_while_a_vault_has_another_version,
			rot_setup, rot_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
