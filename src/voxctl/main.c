/*
 * voxctl - the operator's command line for vox. Git-style subcommands kept
 * in one table; each reads VOX_* variables like the actors do.
 * Exit codes: 0 ok, 1 failure reported by a server, 2 usage or invalid
 * input, 3 a server could not be reached.
 */
#include "core/common.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/vault/vault_actor.h"
#include "core/vault.h"
#include "io/keyfile.h"
#include "io/log.h"
#include "io/migrate.h"
#include "io/pg.h"

enum { EXIT_OK = 0, EXIT_SERVER = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

typedef struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	const char *usage;
} command;

static int exit_for(vox_status st)
{
	if (st == VOX_OK)
		return EXIT_OK;
	if (vox_status_is_transient(st))
		return EXIT_UNREACHABLE;
	return EXIT_SERVER;
}

static const char *require_env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "voxctl: %s is not set\n", name);
		return NULL;
	}
	return v;
}

static int cmd_migrate(int argc, char **argv)
{
	bool status_only = false;
	PGconn *c = NULL;
	vox_buf out, err;
	char msg[512];
	int code = EXIT_SERVER;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--status") == 0) {
			status_only = true;
		} else {
			fprintf(stderr, "voxctl migrate: unknown argument '%s'\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	const char *dsn = require_env("VOX_PG_DSN");
	if (!dsn)
		return EXIT_USAGE;
	vox_status st = vox_pg_connect(&c, dsn, msg, sizeof(msg));
	if (st != VOX_OK) {
		fprintf(stderr, "voxctl migrate: %s\n", msg);
		return exit_for(st);
	}
	vox_buf_init(&out);
	vox_buf_init(&err);
	if (status_only) {
		int pending = 0;
		st = vox_migrate_status(c, vox_migrations, vox_migrations_count,
					&out, &pending, &err);
		if (st == VOX_OK) {
			fputs(out.data ? out.data : "", stdout);
			printf("%d pending\n", pending);
		}
	} else {
		int applied = 0;
		st = vox_migrate_apply(c, vox_migrations, vox_migrations_count,
				       &applied, &err);
		if (st == VOX_OK)
			printf("applied %d migration%s (%zu known)\n", applied,
			       applied == 1 ? "" : "s", vox_migrations_count);
	}
	if (st != VOX_OK)
		fprintf(stderr, "voxctl migrate: %s\n", err.data ? err.data : "failed");
	code = exit_for(st);
	vox_buf_release(&out);
	vox_buf_release(&err);
	PQfinish(c);
	return code;
}

/* The key ring from VOX_VAULT_KEY_FILE or VOX_VAULT_KEYS (one of them). */
static vox_status load_ring(vox_keyring **kr, char *err, size_t errlen)
{
	const char *file = getenv("VOX_VAULT_KEY_FILE");
	const char *text = getenv("VOX_VAULT_KEYS");
	if (file && *file)
		return vox_keyfile_load(kr, file, err, errlen);
	if (text && *text)
		return vox_keyring_parse(kr, text, strlen(text), err, errlen);
	snprintf(err, errlen, "set VOX_VAULT_KEY_FILE or VOX_VAULT_KEYS");
	return VOX_E_USAGE;
}

/*
 * keys generate: a new key, one version above the highest known. With
 * VOX_VAULT_KEY_FILE set it is appended to that file (created 0600);
 * otherwise the new "<version> <key>" line is printed for the operator to
 * store. The new key becomes active (the highest version) unless the file
 * names another with "active".
 */
static int keys_generate(void)
{
	char err[256], key[64], line[96];
	vox_keyring *kr = NULL;
	uint32_t version = 1;
	const char *file = getenv("VOX_VAULT_KEY_FILE");
	const char *text = getenv("VOX_VAULT_KEYS");
	bool have = (file && *file && access(file, F_OK) == 0) || (text && *text);
	if (have) {
		vox_status st = load_ring(&kr, err, sizeof(err));
		if (st != VOX_OK) {
			fprintf(stderr, "voxctl keys: %s\n", err);
			return EXIT_USAGE;
		}
		version = vox_keyring_version_at(kr, vox_keyring_count(kr) - 1) + 1;
		vox_keyring_free(kr);
	}
	vox_vault_new_key_b64(key);
	int n = snprintf(line, sizeof(line), "%u %s\n", version, key);
	sodium_memzero(key, sizeof(key));
	if (!(file && *file)) {
		fputs(line, stdout);
		sodium_memzero(line, sizeof(line));
		return EXIT_OK;
	}
	int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, line, (size_t)n) == n;
	sodium_memzero(line, sizeof(line));
	if (fd >= 0)
		close(fd);
	if (!ok) {
		fprintf(stderr, "voxctl keys: cannot write %s: %s\n", file, strerror(errno));
		return EXIT_SERVER;
	}
	printf("key version %u added to %s\n", version, file);
	return EXIT_OK;
}

/* keys status: the ring's versions and, with VOX_PG_DSN, how many
 * credentials each version seals. Never prints a key. */
static int keys_status(void)
{
	char err[512];
	vox_keyring *kr = NULL;
	if (load_ring(&kr, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "voxctl keys: %s\n", err);
		return EXIT_USAGE;
	}
	printf("active key version: %u\n", vox_keyring_active(kr));
	for (size_t i = 0; i < vox_keyring_count(kr); i++)
		printf("key version %u\n", vox_keyring_version_at(kr, i));
	int code = EXIT_OK;
	const char *dsn = getenv("VOX_PG_DSN");
	if (dsn && *dsn) {
		PGconn *c = NULL;
		vox_status st = vox_pg_connect(&c, dsn, err, sizeof(err));
		if (st != VOX_OK) {
			fprintf(stderr, "voxctl keys: %s\n", err);
			code = exit_for(st);
		} else {
			PGresult *r = PQexec(c, "SELECT key_version, count(*) FROM"
					     " org_credentials GROUP BY 1 ORDER BY 1");
			if (vox_pg_status(c, r) == VOX_OK) {
				for (int i = 0; i < PQntuples(r); i++) {
					uint32_t v = (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
					printf("credentials sealed with version %u: %s%s\n", v,
					       PQgetvalue(r, i, 1),
					       vox_keyring_has(kr, v) ? "" : " (key missing!)");
				}
			} else {
				code = EXIT_SERVER;
			}
			PQclear(r);
			PQfinish(c);
		}
	}
	vox_keyring_free(kr);
	return code;
}

/* keys rotate: re-seal every credential with the active key, in small
 * transactions, while vox-vault keeps serving. */
static int keys_rotate(void)
{
	char err[512];
	vox_keyring *kr = NULL;
	PGconn *c = NULL;
	int rotated = 0;
	if (load_ring(&kr, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "voxctl keys: %s\n", err);
		return EXIT_USAGE;
	}
	const char *dsn = require_env("VOX_PG_DSN");
	if (!dsn) {
		vox_keyring_free(kr);
		return EXIT_USAGE;
	}
	vox_status st = vox_pg_connect(&c, dsn, err, sizeof(err));
	if (st == VOX_OK)
		st = vox_vault_rotate(c, kr, 100, &rotated, err, sizeof(err));
	printf("rotated %d credential%s to key version %u\n", rotated,
	       rotated == 1 ? "" : "s", vox_keyring_active(kr));
	if (st != VOX_OK)
		fprintf(stderr, "voxctl keys: %s\n", err);
	PQfinish(c);
	vox_keyring_free(kr);
	return exit_for(st);
}

static int cmd_keys(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "generate") == 0)
		return keys_generate();
	if (argc == 2 && strcmp(argv[1], "status") == 0)
		return keys_status();
	if (argc == 2 && strcmp(argv[1], "rotate") == 0)
		return keys_rotate();
	fprintf(stderr, "usage: voxctl keys generate|status|rotate\n");
	return EXIT_USAGE;
}

static const command commands[] = {
	{"migrate", cmd_migrate, "apply the database migrations",
	 "voxctl migrate [--status]\n\n"
	 "Applies every migration not yet recorded in schema_migrations, each in\n"
	 "its own transaction; safe to run concurrently and to re-run.\n"
	 "--status lists each migration as applied, pending or changed.\n\n"
	 "Environment:\n  VOX_PG_DSN  PostgreSQL connection string (required)\n"},
	{"keys", cmd_keys, "manage vox-vault's master keys",
	 "voxctl keys generate|status|rotate\n\n"
	 "generate  add a new key, one version above the highest, to\n"
	 "          VOX_VAULT_KEY_FILE (created 0600), or print its line when\n"
	 "          no file is set; the highest version is the active one\n"
	 "status    list the key versions, the active one, and (with\n"
	 "          VOX_PG_DSN) how many credentials each version seals\n"
	 "rotate    re-seal every credential with the active key, 100 per\n"
	 "          transaction, while vox-vault keeps serving; then the old\n"
	 "          keys can be removed from the ring\n\n"
	 "Environment:\n  VOX_VAULT_KEY_FILE  key file (mode 0600)\n"
	 "  VOX_VAULT_KEYS      the key ring itself, if no file\n"
	 "  VOX_PG_DSN          PostgreSQL connection string (status, rotate)\n"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: voxctl <command> [args] [--help]\n\ncommands:\n");
	for (size_t i = 0; i < VOX_NELEM(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("voxctl %s\n", VOX_VERSION);
		return EXIT_OK;
	}
	vox_log_setup("voxctl", getenv("VOX_LOG_LEVEL"));
	for (size_t i = 0; i < VOX_NELEM(commands); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		for (int j = 2; j < argc; j++) {
			if (strcmp(argv[j], "--help") == 0 ||
			    strcmp(argv[j], "-h") == 0) {
				fputs(commands[i].usage, stdout);
				return EXIT_OK;
			}
		}
		return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "voxctl: unknown command '%s' (try voxctl --help)\n",
		argv[1]);
	return EXIT_USAGE;
}
