/*
 * cmd_admin.c - voxctl migrate and voxctl keys: the database's migrations
 * and vox-vault's master keys, for operators.
 */
#include "voxctl/voxctl.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/vault_rotate.h"
#include "core/vault.h"
#include "io/keyfile.h"
#include "io/log.h"
#include "io/migrate.h"
#include "io/pg.h"

static const char *require_env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "voxctl: %s is not set\n", name);
		return NULL;
	}
	return v;
}

/* migrate --status as JSON: the lines of vox_migrate_status ("<name>
 * applied <time>", "<name> pending", "<name> changed (applied <time>)")
 * as {"migrations":[{"name","state","applied_at"}],"pending":N}. */
static void print_status_json(const vox_buf *lines, int pending)
{
	vox_buf j;
	vox_buf_init(&j);
	vox_buf_puts(&j, "{\"migrations\":[");
	const char *p = lines->data ? lines->data : "";
	for (bool first = true; *p; first = false) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char line[512], name[256] = "", state[32] = "", when[128] = "";
		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		if (sscanf(line, "%255s %31s", name, state) == 2) {
			const char *at = strstr(line, state) + strlen(state);
			while (*at == ' ' || *at == '(')
				at++;
			if (strncmp(at, "applied ", 8) == 0)
				at += 8;
			snprintf(when, sizeof(when), "%s", at);
			size_t wl = strlen(when);
			if (wl && when[wl - 1] == ')')
				when[wl - 1] = 0;
			if (!first)
				vox_buf_putc(&j, ',');
			vox_buf_puts(&j, "{\"name\":");
			vox_buf_json_str(&j, name, strlen(name));
			vox_buf_puts(&j, ",\"state\":");
			vox_buf_json_str(&j, state, strlen(state));
			if (*when) {
				vox_buf_puts(&j, ",\"applied_at\":");
				vox_buf_json_str(&j, when, strlen(when));
			}
			vox_buf_putc(&j, '}');
		}
		p += n + (nl ? 1 : 0);
	}
	vox_buf_printf(&j, "],\"pending\":%d}", pending);
	voxctl_print_json(j.data, j.len);
	vox_buf_release(&j);
}

int voxctl_cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"status", no_argument, NULL, 's'},
		{"text", no_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	bool status_only = false, text = false;
	PGconn *c = NULL;
	vox_buf out, err;
	char msg[512];
	int code = EXIT_SERVER, o;

	voxctl_getopt_reset();
	while ((o = voxctl_getopt("migrate", argc, argv, "", opts)) != -1) {
		if (o == 's')
			status_only = true;
		else if (o == 't')
			text = true;
		else
			return EXIT_USAGE;
	}
	if (optind < argc) {
		voxctl_usage_err("migrate", "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	const char *dsn = require_env("VOX_PG_DSN");
	if (!dsn)
		return EXIT_USAGE;
	vox_status st = vox_pg_connect(&c, dsn, msg, sizeof(msg));
	if (st != VOX_OK) {
		fprintf(stderr, "voxctl migrate: %s\n", msg);
		return voxctl_exit_for(st);
	}
	vox_buf_init(&out);
	vox_buf_init(&err);
	if (status_only) {
		int pending = 0;
		st = vox_migrate_status(c, vox_migrations, vox_migrations_count,
					&out, &pending, &err);
		if (st == VOX_OK && text) {
			fputs(out.data ? out.data : "", stdout);
			printf("%d pending\n", pending);
		} else if (st == VOX_OK) {
			print_status_json(&out, pending);
		}
	} else {
		int applied = 0;
		st = vox_migrate_apply(c, vox_migrations, vox_migrations_count,
				       &applied, &err);
		if (st == VOX_OK && text)
			printf("applied %d migration%s (%zu known)\n", applied,
			       applied == 1 ? "" : "s", vox_migrations_count);
		else if (st == VOX_OK)
			printf("{\"applied\":%d,\"known\":%zu}\n", applied,
			       vox_migrations_count); /* one line: read by scripts */
	}
	if (st != VOX_OK)
		fprintf(stderr, "voxctl migrate: %s\n", err.data ? err.data : "failed");
	code = voxctl_exit_for(st);
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
 * VOX_VAULT_KEY_FILE set it is appended to that file (created 0600;
 * vox_keyfile_append: written beside it, fsync'd, renamed, the directory
 * fsync'd); otherwise the new "<version> <key>" line is printed for the
 * operator to store. The new key becomes active (the highest version)
 * unless the file names another with "active".
 */
static int keys_generate(bool text)
{
	char err[512], key[64], line[96];
	vox_keyring *kr = NULL;
	uint32_t version = 1;
	const char *file = getenv("VOX_VAULT_KEY_FILE");
	const char *ring = getenv("VOX_VAULT_KEYS");
	bool have = (file && *file && access(file, F_OK) == 0) || (ring && *ring);
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
		/* the ring's own line, for VOX_VAULT_KEYS: text on request */
		if (text) {
			fputs(line, stdout);
		} else {
			line[n - 1] = '\0';
			printf("{\"version\":%u,\"file\":null,\"key_line\":\"%s\"}\n",
			       version, line);
		}
		fflush(stdout);
		sodium_memzero(line, sizeof(line));
		return EXIT_OK;
	}
	vox_status st = vox_keyfile_append(file, line, (size_t)n, err, sizeof(err));
	sodium_memzero(line, sizeof(line));
	if (st != VOX_OK) {
		fprintf(stderr, "voxctl keys: %s\n", err);
		return st == VOX_E_INTERNAL ? EXIT_SERVER : EXIT_USAGE;
	}
	if (text) {
		printf("key version %u added to %s\n", version, file);
	} else {
		/* one line, like migrate's and streams apply's */
		vox_buf j;
		vox_buf_init(&j);
		vox_buf_printf(&j, "{\"version\":%u,\"file\":", version);
		vox_buf_json_str(&j, file, strlen(file));
		vox_buf_puts(&j, "}\n");
		fputs(j.data, stdout);
		vox_buf_release(&j);
	}
	return EXIT_OK;
}

/* keys status: the ring's versions and, with VOX_PG_DSN, how many
 * credentials each version seals. Never prints a key. */
static int keys_status(bool text)
{
	char err[512];
	vox_keyring *kr = NULL;
	if (load_ring(&kr, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "voxctl keys: %s\n", err);
		return EXIT_USAGE;
	}
	vox_buf j;
	vox_buf_init(&j);
	vox_buf_printf(&j, "{\"active\":%u,\"versions\":[", vox_keyring_active(kr));
	if (text)
		printf("active key version: %u\n", vox_keyring_active(kr));
	for (size_t i = 0; i < vox_keyring_count(kr); i++) {
		if (text)
			printf("key version %u\n", vox_keyring_version_at(kr, i));
		vox_buf_printf(&j, "%s%u", i ? "," : "", vox_keyring_version_at(kr, i));
	}
	vox_buf_puts(&j, "]");
	int code = EXIT_OK;
	const char *dsn = getenv("VOX_PG_DSN");
	if (dsn && *dsn) {
		PGconn *c = NULL;
		vox_status st = vox_pg_connect(&c, dsn, err, sizeof(err));
		if (st != VOX_OK) {
			fprintf(stderr, "voxctl keys: %s\n", err);
			code = voxctl_exit_for(st);
		} else {
			PGresult *r = PQexec(c, "SELECT key_version, count(*) FROM"
					     " org_credentials GROUP BY 1 ORDER BY 1");
			if (vox_pg_status(c, r) == VOX_OK) {
				vox_buf_puts(&j, ",\"sealed\":[");
				for (int i = 0; i < PQntuples(r); i++) {
					uint32_t v = (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
					bool have = vox_keyring_has(kr, v);
					if (text)
						printf("credentials sealed with version %u: %s%s\n",
						       v, PQgetvalue(r, i, 1),
						       have ? "" : " (key missing!)");
					vox_buf_printf(&j, "%s{\"version\":%u,\"credentials\":%s,"
						       "\"key_in_ring\":%s}", i ? "," : "", v,
						       PQgetvalue(r, i, 1), have ? "true" : "false");
				}
				vox_buf_puts(&j, "]");
			} else {
				code = EXIT_SERVER;
			}
			PQclear(r);
			PQfinish(c);
		}
	}
	vox_buf_putc(&j, '}');
	if (!text && code == EXIT_OK) {
		bool ok = voxctl_print_json(j.data, j.len);
		VOX_UNUSED(ok);
	}
	vox_buf_release(&j);
	vox_keyring_free(kr);
	return code;
}

/* How long `keys rotate` listens for vox-vault instances. */
#define VAULT_CENSUS_MS 1000

/* What the running vox-vault instances answered to $SRV.INFO.vox-vault. */
typedef struct vault_census {
	int answered;     /* instances that answered */
	int other;        /* of them, those not on the wanted version */
	char id[32];      /* the first of those: its instance id */
	char version[16]; /* and its active version ("unknown" if unsaid) */
} vault_census;

/*
 * Ask every running vox-vault for its active key version (the
 * vault.active_key_version member of its INFO metadata) and count those
 * that differ from want, listening VAULT_CENSUS_MS. EXIT_OK, or the exit
 * code of a NATS failure (printed).
 */
static int vault_census_take(uint32_t want, vault_census *c)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsInbox *inbox = NULL;
	char wanted[16];
	memset(c, 0, sizeof(*c));
	snprintf(wanted, sizeof(wanted), "%" PRIu32, want);
	int rc = voxctl_connect(&nc);
	if (rc != EXIT_OK)
		return rc;
	natsStatus s = natsInbox_Create(&inbox);
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&sub, nc, inbox);
	if (s == NATS_OK)
		s = natsConnection_PublishRequest(nc, "$SRV.INFO.vox-vault", inbox, "", 0);
	if (s == NATS_OK)
		s = natsConnection_Flush(nc);
	/* every instance that hears it answers: listen for the whole time */
	int64_t deadline = nats_Now() + VAULT_CENSUS_MS;
	while (s == NATS_OK) {
		int64_t left = deadline - nats_Now();
		natsMsg *m = NULL;
		if (left <= 0)
			break;
		s = natsSubscription_NextMsg(&m, sub, left);
		if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS) {
			s = NATS_OK;
			break;
		}
		if (s != NATS_OK)
			break;
		vox_json *doc = vox_json_parse(natsMsg_GetData(m),
					       (size_t)natsMsg_GetDataLength(m), NULL);
		const vox_json *id = vox_json_get(doc, "id");
		const vox_json *v = vox_json_get(vox_json_get(doc, "metadata"),
						 "vault.active_key_version");
		/* an instance too old to say is not on the wanted version */
		const char *have = vox_json_type_of(v) == VOX_JSON_STRING
					   ? vox_json_str(v) : "unknown";
		c->answered++;
		if (strcmp(have, wanted) != 0 && c->other++ == 0) {
			snprintf(c->id, sizeof(c->id), "%s",
				 vox_json_type_of(id) == VOX_JSON_STRING ? vox_json_str(id)
									 : "?");
			snprintf(c->version, sizeof(c->version), "%s", have);
		}
		vox_json_free(doc);
		natsMsg_Destroy(m);
	}
	if (s != NATS_OK) {
		voxctl_err("$SRV.INFO.vox-vault: %s", natsStatus_GetText(s));
		rc = EXIT_UNREACHABLE;
	}
	natsSubscription_Destroy(sub);
	natsInbox_Destroy(inbox);
	natsConnection_Destroy(nc);
	return rc;
}

/*
 * keys rotate: re-seal every credential with the active key, in small
 * transactions, while vox-vault keeps serving. First every running
 * vox-vault must seal with that same key: one still on another would go
 * on writing rows with it (and one whose ring lacks it could not open the
 * re-sealed rows), so rotate refuses until they have reloaded (SIGHUP)
 * or restarted. With no instance answering there is nothing to wait for.
 */
static void rotate_progress(int rotated, void *ctx)
{
	voxctl_progress("keys rotate", (uint64_t)rotated, *(uint64_t *)ctx);
}

/* How many credentials are sealed with another key than active. */
static uint64_t to_rotate(PGconn *c, uint32_t active)
{
	char q[128];
	snprintf(q, sizeof(q), "SELECT count(*) FROM org_credentials WHERE"
		 " key_version <> %" PRIu32, active);
	PGresult *r = PQexec(c, q);
	uint64_t n = vox_pg_status(c, r) == VOX_OK
			     ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	PQclear(r);
	return n;
}

static int keys_rotate(bool text)
{
	char err[512];
	vox_keyring *kr = NULL;
	PGconn *c = NULL;
	int rotated = 0;
	vault_census census;
	if (load_ring(&kr, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "voxctl keys: %s\n", err);
		return EXIT_USAGE;
	}
	const char *dsn = require_env("VOX_PG_DSN");
	if (!dsn) {
		vox_keyring_free(kr);
		return EXIT_USAGE;
	}
	uint32_t active = vox_keyring_active(kr);
	int code = vault_census_take(active, &census);
	if (code != EXIT_OK) {
		fprintf(stderr, "voxctl keys: cannot ask the running vox-vault instances"
			" for their key version; nothing rotated\n");
		vox_keyring_free(kr);
		return code;
	}
	if (census.other) {
		fprintf(stderr, "voxctl keys: %d of %d running vox-vault instance%s"
			" seal%s with another key (instance %s: active key version %s;"
			" this key ring: %" PRIu32 "): reload them (SIGHUP) or restart"
			" them first; nothing rotated\n", census.other, census.answered,
			census.answered == 1 ? "" : "s", census.other == 1 ? "s" : "",
			census.id, census.version, active);
		vox_keyring_free(kr);
		return EXIT_SERVER;
	}
	if (text && census.answered == 0)
		printf("no vox-vault instance answered $SRV.INFO.vox-vault in %d ms:"
		       " none to wait for\n", VAULT_CENSUS_MS);
	else if (text)
		printf("%d vox-vault instance%s on key version %" PRIu32 "\n",
		       census.answered, census.answered == 1 ? "" : "s", active);
	fflush(stdout);
	vox_status st = vox_pg_connect(&c, dsn, err, sizeof(err));
	uint64_t total = st == VOX_OK && voxctl_progress_on() ? to_rotate(c, active) : 0;
	if (st == VOX_OK)
		st = vox_vault_rotate(&rotated, c, kr, 100,
				      total ? rotate_progress : NULL, &total,
				      err, sizeof(err));
	if (total)
		voxctl_progress_end();
	if (text)
		printf("rotated %d credential%s to key version %u\n", rotated,
		       rotated == 1 ? "" : "s", active);
	else
		printf("{\"vault_instances\":%d,\"active\":%" PRIu32
		       ",\"rotated\":%d}\n", census.answered, active, rotated);
	if (st != VOX_OK)
		fprintf(stderr, "voxctl keys: %s\n", err);
	PQfinish(c);
	vox_keyring_free(kr);
	return voxctl_exit_for(st);
}

int voxctl_cmd_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		{"text", no_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	bool text = false;
	int o;
	voxctl_getopt_reset();
	while ((o = voxctl_getopt("keys", argc, argv, "", opts)) != -1) {
		if (o != 't')
			return EXIT_USAGE;
		text = true;
	}
	const char *verb = optind < argc ? argv[optind++] : "";
	if (optind < argc) {
		voxctl_usage_err("keys", "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "generate") == 0)
		return keys_generate(text);
	if (strcmp(verb, "status") == 0)
		return keys_status(text);
	if (strcmp(verb, "rotate") == 0)
		return keys_rotate(text);
	voxctl_usage_err("keys", "generate, status or rotate%s%s%s",
			 *verb ? ", not '" : "", verb, *verb ? "'" : "");
	return EXIT_USAGE;
}

