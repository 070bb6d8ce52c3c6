/*
 * query.h - vox-query: read-only, tenant-scoped answers over request-reply.
 *
 * Three parts, one file each:
 *   qdb.c       the database side: a pool (io/pgpool.c) of connections
 *               made as a role that row-level security binds, and one pipelined
 *               round trip per request that sets app.org_id and runs the
 *               prepared statements inside one transaction;
 *   core/query_request.c  requests and cursors: pure, unit-tested;
 *   endpoints.c the six query.* endpoints: request in, rows out as msgpack.
 * main.c wires them to the actor shell.
 */
#ifndef VOX_ACTOR_QUERY_H
#define VOX_ACTOR_QUERY_H

#include "core/common.h"

#include <libpq-fe.h>

#include "core/query_request.h"
#include "io/pgpool.h"
#include "io/service.h"
#include "vox/event.h"

/* ---- the database side (qdb.c) ------------------------------------------- */

/* A statement every connection of a pool prepares when it opens. */
typedef struct vox_qstmt {
	const char *name; /* prepared statement name, unique in the table */
	const char *sql;
	int nparams;
} vox_qstmt;

/* One statement of a request: an index into the pool's table and its
 * text-format parameters (NULL for SQL NULL). */
typedef struct vox_qcall {
	size_t stmt;
	const char *const *params;
} vox_qcall;

#define VOX_QDB_MAX_CALLS 4

typedef struct vox_qdb {
	vox_pgpool *pool;          /* every connection bound by RLS, prepared */
	const vox_qstmt *stmts;
	size_t nstmts;
	int64_t statement_timeout; /* ms, set on every connection */
} vox_qdb;

/* A pool of nconns connections to dsn (opened on demand) preparing stmts
 * (borrowed; must outlive the pool); a request waits up to wait_ms for a
 * connection and each statement runs at most statement_timeout ms. */
void vox_qdb_init(vox_qdb *db, const char *dsn, size_t nconns, int64_t wait_ms,
		  int64_t statement_timeout, const vox_qstmt *stmts,
		  size_t nstmts);
void vox_qdb_release(vox_qdb *db);

/*
 * Whether the role c is connected as is bound by row-level security: not a
 * superuser, no BYPASSRLS, owner (or member of the owner) of no table that
 * has policies, and able to read the tables. VOX_E_FORBIDDEN with err
 * saying why and what to do; VOX_E_UNAVAILABLE if the check itself fails
 * for lack of a connection.
 */
vox_status vox_qdb_check_role(PGconn *c, char *err, size_t errlen)
	VOX_MUST_CHECK;

/* Open one connection now and check it (startup): VOX_OK, VOX_E_FORBIDDEN
 * (the role is not bound by RLS: never serve), or VOX_E_UNAVAILABLE. */
vox_status vox_qdb_probe(vox_qdb *db, char *err, size_t errlen)
	VOX_MUST_CHECK;

/*
 * Run calls[0..n) for org in one round trip: set_config('app.org_id', org,
 * true) and then each statement, pipelined up to one Sync, so all of them
 * run in one transaction that sees only org's rows whatever their WHERE
 * clauses say. results[i] gets statement i's rows in binary format (the
 * caller PQclears them) on VOX_OK; on failure all are NULL. Statuses:
 * VOX_E_UNAVAILABLE (no database, connection lost), VOX_E_TIMEOUT (no free
 * connection in wait_ms, or the statement timeout), VOX_E_FORBIDDEN (the
 * role is not bound by RLS), VOX_E_INTERNAL (an SQL error; err has it).
 */
vox_status vox_qdb_run(PGresult **results, vox_qdb *db, const char *org,
		       const vox_qcall *calls, size_t n, char *err,
		       size_t errlen) VOX_MUST_CHECK;

/* ---- the endpoints (endpoints.c) ----------------------------------------- */

typedef struct vox_query_config {
	int64_t rate_per_minute; /* VOX_RATE_PER_MINUTE: as vox-billing's */
	int64_t conns;           /* VOX_QUERY_CONNS */
	int64_t workers;         /* VOX_QUERY_WORKERS */
	int64_t timeout_ms;      /* VOX_QUERY_TIMEOUT_MS */
	const char *read_dsn;    /* VOX_PG_READ_DSN, "" when unset */
} vox_query_config;

typedef struct vox_query_ctx {
	vox_query_config cfg;
	vox_qdb db;
	size_t max_reply; /* bytes a reply may take (the server's max_payload) */
} vox_query_ctx;

/* The statements the endpoints run, for vox_qdb_init. */
extern const vox_qstmt vox_query_stmts[];
extern const size_t vox_query_nstmts;

void vox_query_wallet(vox_request *req, void *ctx);
void vox_query_transactions(vox_request *req, void *ctx);
void vox_query_calls(vox_request *req, void *ctx);
void vox_query_call(vox_request *req, void *ctx);
void vox_query_contact(vox_request *req, void *ctx);
void vox_query_hot_leads(vox_request *req, void *ctx);
void vox_query_holds(vox_request *req, void *ctx);

#endif
