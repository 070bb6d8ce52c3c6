/*
 * qdb.c - vox-query's database side.
 *
 * Tenant safety does not rest on WHERE clauses. Every connection is made as
 * a role that row-level security binds (checked when it opens: no
 * superuser, no BYPASSRLS, no ownership of a table with policies), and every
 * request sets app.org_id with set_config(..., true) in the same
 * transaction as its statements. The policies compare each row's org with
 * app_org_id(); a statement that forgot its org filter still sees one org.
 *
 * One round trip per request: libpq's pipeline mode sends set_config and
 * the prepared statements back to back, then one Sync. Everything before a
 * Sync is one implicit transaction, so the setting ends with it and never
 * leaks into the next request on the connection.
 */
#include "actors/query/query.h"

#include "io/log.h"
#include "io/pg.h"

#define SET_ORG_STMT "vox_set_org"

static vox_status conn_open(PGconn *c, void *ctx, char *err, size_t errlen);

void vox_qdb_init(vox_qdb *db, const char *dsn, size_t nconns, int64_t wait_ms,
		  int64_t statement_timeout, const vox_qstmt *stmts,
		  size_t nstmts)
{
	memset(db, 0, sizeof(*db));
	db->stmts = stmts;
	db->nstmts = nstmts;
	db->statement_timeout = statement_timeout;
	db->pool = vox_pgpool_new(dsn, nconns, wait_ms, conn_open, db);
}

void vox_qdb_release(vox_qdb *db)
{
	vox_pgpool_free(db->pool);
	memset(db, 0, sizeof(*db));
}

/* ---- opening a connection ------------------------------------------------ */

vox_status vox_qdb_check_role(PGconn *c, char *err, size_t errlen)
{
	PGresult *r = PQexec(c,
		"SELECT current_user, r.rolsuper, r.rolbypassrls,"
		" (SELECT string_agg(t.relname, ', ' ORDER BY t.relname)"
		"    FROM pg_class t"
		"   WHERE t.relnamespace = 'public'::regnamespace"
		"     AND t.relrowsecurity"
		"     AND pg_has_role(current_user, t.relowner, 'MEMBER')),"
		" to_regclass('public.calls') IS NOT NULL"
		"  AND to_regclass('public.organizations') IS NOT NULL,"
		" CASE WHEN to_regclass('public.calls') IS NOT NULL"
		"  AND to_regclass('public.organizations') IS NOT NULL THEN"
		"  has_table_privilege('public.calls', 'SELECT')"
		"  AND has_table_privilege('public.organizations', 'SELECT') END"
		" FROM pg_roles r WHERE r.rolname = current_user");
	vox_status st = vox_pg_status(c, r);
	if (st != VOX_OK || PQntuples(r) != 1) {
		const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
		snprintf(err, errlen, "cannot check the database role: %.*s",
			 (int)strcspn(m, "\n"), m);
		PQclear(r);
		return st == VOX_E_UNAVAILABLE ? st : VOX_E_INTERNAL;
	}
	const char *user = PQgetvalue(r, 0, 0);
	bool super = PQgetvalue(r, 0, 1)[0] == 't';
	bool bypass = PQgetvalue(r, 0, 2)[0] == 't';
	bool owns = !PQgetisnull(r, 0, 3);
	bool migrated = PQgetvalue(r, 0, 4)[0] == 't';
	bool reads = PQgetvalue(r, 0, 5)[0] == 't';
	st = VOX_E_FORBIDDEN;
	if (super)
		snprintf(err, errlen,
			 "role %s is a superuser, which row-level security does not"
			 " bind; connect as a member of vox_reader", user);
	else if (bypass)
		snprintf(err, errlen,
			 "role %s has BYPASSRLS; connect as a member of vox_reader"
			 " without it", user);
	else if (owns)
		snprintf(err, errlen,
			 "role %s owns tables with row-level security (%.80s), and"
			 " owners are not bound by it; connect as a member of"
			 " vox_reader", user, PQgetvalue(r, 0, 3));
	else if (!migrated) {
		snprintf(err, errlen, "the schema is not there yet (voxctl migrate)");
		st = VOX_E_UNAVAILABLE;
	} else if (!reads)
		snprintf(err, errlen,
			 "role %s cannot read the tables; GRANT vox_reader TO %s",
			 user, user);
	else
		st = VOX_OK;
	PQclear(r);
	return st;
}

/* The pool's open function: check the role, set the timeout, prepare the
 * statements and enter pipeline mode. */
static vox_status conn_open(PGconn *c, void *ctx, char *err, size_t errlen)
{
	const vox_qdb *db = ctx;
	char sql[96];
	vox_status st;
	if ((st = vox_qdb_check_role(c, err, errlen)) != VOX_OK)
		return st;
	snprintf(sql, sizeof(sql), "SET statement_timeout = %" PRId64,
		 db->statement_timeout);
	if ((st = vox_pg_exec(c, sql, err, errlen)) != VOX_OK)
		return st;
	PGresult *r = PQprepare(c, SET_ORG_STMT,
				"SELECT set_config('app.org_id', $1, true)", 1, NULL);
	st = vox_pg_status(c, r);
	PQclear(r);
	for (size_t i = 0; st == VOX_OK && i < db->nstmts; i++) {
		r = PQprepare(c, db->stmts[i].name, db->stmts[i].sql,
			      db->stmts[i].nparams, NULL);
		st = vox_pg_status(c, r);
		if (st != VOX_OK) {
			const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
			snprintf(err, errlen, "prepare %s: %.*s", db->stmts[i].name,
				 (int)strcspn(m, "\n"), m);
		}
		PQclear(r);
	}
	if (st != VOX_OK)
		return st;
	if (!PQenterPipelineMode(c)) {
		snprintf(err, errlen, "libpq cannot enter pipeline mode");
		return VOX_E_INTERNAL;
	}
	return VOX_OK;
}

vox_status vox_qdb_probe(vox_qdb *db, char *err, size_t errlen)
{
	return vox_pgpool_probe(db->pool, err, errlen);
}

/* ---- one request --------------------------------------------------------- */

/* Classify a failed result, with the server's message in err. */
static vox_status result_error(PGconn *c, PGresult *r, char *err, size_t errlen)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *m = PQresultErrorMessage(r);
	snprintf(err, errlen, "%.*s", (int)strcspn(m, "\n"), m);
	if (state && strcmp(state, "57014") == 0)
		return VOX_E_TIMEOUT; /* statement_timeout */
	vox_status st = vox_pg_status(c, r);
	return st == VOX_E_RETRY || st == VOX_E_CONFLICT ? VOX_E_INTERNAL : st;
}

/*
 * Send the pipeline and read it back: per statement its results then a
 * NULL, then the Sync. *broken is set when the connection can no longer be
 * trusted to be at a Sync boundary.
 */
static vox_status pipeline(PGconn *c, const char *org, const vox_qdb *db,
			   const vox_qcall *calls, size_t n, PGresult **results,
			   bool *broken, char *err, size_t errlen)
{
	const char *org_param[1] = {org};
	vox_status st = VOX_OK;
	*broken = true;
	if (!PQsendQueryPrepared(c, SET_ORG_STMT, 1, org_param, NULL, NULL, 0))
		goto send_failed;
	for (size_t i = 0; i < n; i++) {
		const vox_qstmt *s = &db->stmts[calls[i].stmt];
		if (!PQsendQueryPrepared(c, s->name, s->nparams, calls[i].params,
					 NULL, NULL, 1))
			goto send_failed;
	}
	if (!PQpipelineSync(c))
		goto send_failed;

	/* statement 0 is set_config, 1..n the caller's */
	size_t at = 0;
	bool synced = false;
	for (int guard = 0; guard < 4 * (int)(n + 2) && !synced; guard++) {
		PGresult *r = PQgetResult(c);
		if (!r) {
			if (PQstatus(c) != CONNECTION_OK)
				break;
			at++; /* the end of one statement's results */
			continue;
		}
		switch (PQresultStatus(r)) {
		case PGRES_PIPELINE_SYNC:
			synced = true;
			PQclear(r);
			break;
		case PGRES_TUPLES_OK:
			if (at >= 1 && at <= n && !results[at - 1]) {
				results[at - 1] = r;
			} else {
				PQclear(r);
			}
			break;
		case PGRES_PIPELINE_ABORTED:
			PQclear(r);
			break;
		case PGRES_FATAL_ERROR:
			if (st == VOX_OK)
				st = result_error(c, r, err, errlen);
			PQclear(r);
			break;
		default:
			if (st == VOX_OK) {
				snprintf(err, errlen, "unexpected result %s",
					 PQresStatus(PQresultStatus(r)));
				st = VOX_E_INTERNAL;
			}
			PQclear(r);
			break;
		}
	}
	if (synced && PQstatus(c) == CONNECTION_OK) {
		*broken = false;
		if (st == VOX_OK && at != n + 1) {
			snprintf(err, errlen, "pipeline: %zu results for %zu statements",
				 at, n + 1);
			st = VOX_E_INTERNAL;
		}
		return st;
	}
	if (st == VOX_OK || PQstatus(c) != CONNECTION_OK) {
		const char *m = PQerrorMessage(c);
		snprintf(err, errlen, "connection lost: %.*s", (int)strcspn(m, "\n"), m);
		st = VOX_E_UNAVAILABLE;
	}
	return st;
send_failed: {
	const char *m = PQerrorMessage(c);
	snprintf(err, errlen, "send: %.*s", (int)strcspn(m, "\n"), m);
	return VOX_E_UNAVAILABLE;
}
}

vox_status vox_qdb_run(PGresult **results, vox_qdb *db, const char *org,
		       const vox_qcall *calls, size_t n, char *err, size_t errlen)
{
	vox_status st;
	bool broken = false;
	for (size_t i = 0; i < n; i++)
		results[i] = NULL;
	if (n == 0 || n > VOX_QDB_MAX_CALLS) {
		snprintf(err, errlen, "vox_qdb_run: %zu statements", n);
		return VOX_E_INTERNAL;
	}
	PGconn *c = NULL;
	if ((st = vox_pgpool_get(&c, db->pool, err, errlen)) != VOX_OK)
		return st;
	st = pipeline(c, org, db, calls, n, results, &broken, err, errlen);
	if (broken)
		vox_pgpool_discard(db->pool, c);
	else
		vox_pgpool_put(db->pool, c, st);
	if (st != VOX_OK) {
		for (size_t i = 0; i < n; i++) {
			PQclear(results[i]);
			results[i] = NULL;
		}
	}
	return st;
}
