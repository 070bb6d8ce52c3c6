/*
 * voxctl - the operator's command line for vox. Git-style subcommands kept
 * in one table; each reads VOX_* variables like the actors do.
 * Exit codes: 0 ok, 1 failure reported by a server, 2 usage or invalid
 * input, 3 a server could not be reached.
 */
#include "core/common.h"

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

static const command commands[] = {
	{"migrate", cmd_migrate, "apply the database migrations",
	 "voxctl migrate [--status]\n\n"
	 "Applies every migration not yet recorded in schema_migrations, each in\n"
	 "its own transaction; safe to run concurrently and to re-run.\n"
	 "--status lists each migration as applied, pending or changed.\n\n"
	 "Environment:\n  VOX_PG_DSN  PostgreSQL connection string (required)\n"},
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
