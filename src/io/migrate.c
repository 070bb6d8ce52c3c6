/*
 * migrate.c - the migration runner behind `voxctl migrate`.
 */
#include "io/migrate.h"

#include "io/pg.h"

#include <sodium.h>

/* Any constant works; it only has to be the same for every runner. */
#define MIGRATE_LOCK_KEY "7366923001"

/* Created under the advisory lock, so no IF NOT EXISTS race; the DO block
 * keeps the server from printing a notice on every re-run. */
static const char create_table_sql[] =
	"DO $$ BEGIN IF to_regclass('schema_migrations') IS NULL THEN "
	"CREATE TABLE schema_migrations ("
	" version text PRIMARY KEY,"
	" name text NOT NULL,"
	" checksum text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now()); END IF; END $$";

static void checksum(const vox_migration *m, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)m->sql, m->len);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

static void version_of(const vox_migration *m, char out[16])
{
	size_t n = strcspn(m->name, "_");
	if (n > 15)
		n = 15;
	memcpy(out, m->name, n);
	out[n] = '\0';
}

static void pg_err(vox_buf *err, const char *what, PGconn *c, PGresult *r)
{
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
	vox_buf_printf(err, "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
}

/* Session-level lock: held across the per-migration transactions. */
static vox_status lock_runner(PGconn *c, bool lock, vox_buf *err)
{
	PGresult *r = PQexec(c, lock ? "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")"
				     : "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
	vox_status st = vox_pg_status(c, r);
	if (st != VOX_OK)
		pg_err(err, "advisory lock", c, r);
	PQclear(r);
	return st;
}

/* Look up the recorded checksum of a version; *found false if absent. */
static vox_status recorded(PGconn *c, const char *version, char sum[65],
			   char when[64], bool *found, vox_buf *err)
{
	const char *params[1] = {version};
	PGresult *r = PQexecParams(c,
				   "SELECT checksum, to_char(applied_at AT TIME ZONE 'UTC',"
				   " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
				   " FROM schema_migrations WHERE version = $1",
				   1, NULL, params, NULL, NULL, 0);
	vox_status st = vox_pg_status(c, r);
	if (st != VOX_OK) {
		pg_err(err, "schema_migrations", c, r);
	} else {
		*found = PQntuples(r) == 1;
		if (*found) {
			snprintf(sum, 65, "%s", PQgetvalue(r, 0, 0));
			snprintf(when, 64, "%s", PQgetvalue(r, 0, 1));
		}
	}
	PQclear(r);
	return st;
}

static vox_status apply_one(PGconn *c, const vox_migration *m,
			    const char *version, const char *sum, vox_buf *err)
{
	PGresult *r = NULL;
	vox_status st;
	char msg[512];

	st = vox_pg_exec(c, "BEGIN", msg, sizeof(msg));
	if (st != VOX_OK) {
		vox_buf_printf(err, "%s: begin: %s", m->name, msg);
		return st;
	}
	r = PQexec(c, m->sql);
	st = vox_pg_status(c, r);
	if (st != VOX_OK) {
		pg_err(err, m->name, c, r);
		goto out;
	}
	PQclear(r);
	const char *params[3] = {version, m->name, sum};
	r = PQexecParams(c,
			 "INSERT INTO schema_migrations (version, name, checksum)"
			 " VALUES ($1, $2, $3)",
			 3, NULL, params, NULL, NULL, 0);
	st = vox_pg_status(c, r);
	if (st != VOX_OK) {
		pg_err(err, m->name, c, r);
		goto out;
	}
	st = vox_pg_exec(c, "COMMIT", msg, sizeof(msg));
	if (st != VOX_OK)
		vox_buf_printf(err, "%s: commit: %s", m->name, msg);
out:
	PQclear(r);
	if (st != VOX_OK) {
		/* The migration already failed; a failed rollback adds nothing. */
		vox_status rb = vox_pg_exec(c, "ROLLBACK", msg, sizeof(msg));
		VOX_UNUSED(rb);
	}
	return st;
}

vox_status vox_migrate_apply(PGconn *c, const vox_migration *m, size_t n,
			     int *applied, vox_buf *err)
{
	char msg[512];
	int count = 0;
	vox_status st;

	if (sodium_init() < 0)
		return VOX_E_INTERNAL;
	st = lock_runner(c, true, err);
	if (st != VOX_OK)
		return st;
	st = vox_pg_exec(c, create_table_sql, msg, sizeof(msg));
	if (st != VOX_OK) {
		vox_buf_printf(err, "schema_migrations: %s", msg);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char version[16], sum[65], have[65], when[64];
		bool found = false;
		version_of(&m[i], version);
		checksum(&m[i], sum);
		st = recorded(c, version, have, when, &found, err);
		if (st != VOX_OK)
			goto out;
		if (found) {
			if (strcmp(have, sum) != 0) {
				vox_buf_printf(err,
					       "%s: changed after it was applied"
					       " (write a new migration instead)",
					       m[i].name);
				st = VOX_E_CONFLICT;
				goto out;
			}
			continue;
		}
		st = apply_one(c, &m[i], version, sum, err);
		if (st != VOX_OK)
			goto out;
		count++;
	}
out:
	if (lock_runner(c, false, err) != VOX_OK && st == VOX_OK)
		st = VOX_E_UNAVAILABLE;
	if (st == VOX_OK)
		*applied = count;
	return st;
}

vox_status vox_migrate_status(PGconn *c, const vox_migration *m, size_t n,
			      vox_buf *out, int *pending, vox_buf *err)
{
	int npending = 0;
	vox_status st = VOX_OK;
	PGresult *r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	st = vox_pg_status(c, r);
	if (st != VOX_OK) {
		pg_err(err, "schema_migrations", c, r);
		PQclear(r);
		return st;
	}
	bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	for (size_t i = 0; i < n; i++) {
		char version[16], sum[65], have[65], when[64];
		bool found = false;
		version_of(&m[i], version);
		checksum(&m[i], sum);
		if (exists) {
			st = recorded(c, version, have, when, &found, err);
			if (st != VOX_OK)
				return st;
		}
		if (!found) {
			npending++;
			vox_buf_printf(out, "%s pending\n", m[i].name);
		} else if (strcmp(have, sum) != 0) {
			vox_buf_printf(out, "%s changed (applied %s)\n",
				       m[i].name, when);
		} else {
			vox_buf_printf(out, "%s applied %s\n", m[i].name, when);
		}
	}
	*pending = npending;
	return VOX_OK;
}
