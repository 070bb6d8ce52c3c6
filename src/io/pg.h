/*
 * pg.h - the Postgres adapter: connecting, classifying errors into
 * transient and permanent, and small helpers around libpq. SQL only ever
 * travels with parameters (PQexecParams / prepared statements).
 */
#ifndef VOX_PG_H
#define VOX_PG_H

#include "core/buf.h"
#include "core/common.h"
#include "vox/event.h"

#include <libpq-fe.h>

/* Connect to dsn. On success *out is owned by the caller (PQfinish).
 * VOX_E_UNAVAILABLE when the server cannot be reached; err gets a reason
 * that never contains the password. */
vox_status vox_pg_connect(PGconn **out, const char *dsn, char *err,
			  size_t errlen) VOX_MUST_CHECK;

/* Classify a result (NULL allowed, meaning the connection failed):
 * VOX_OK for COMMAND_OK/TUPLES_OK, VOX_E_RETRY for serialization failures
 * and deadlocks, VOX_E_TIMEOUT for statement and lock timeouts,
 * VOX_E_UNAVAILABLE for connection loss, shutdown, a read-only server, I/O
 * and resources, VOX_E_CONFLICT for unique violations, VOX_E_INTERNAL
 * otherwise. The consume loop decides by SQLSTATE (core/dispose.h), not
 * by this status. */
vox_status vox_pg_status(const PGconn *c, const PGresult *r);

/* A named statement, prepared once per connection. */
typedef struct vox_pg_stmt {
	const char *name;
	const char *sql;
} vox_pg_stmt;

/* Prepare n statements on c, one generic plan each (plan_cache_mode =
 * force_generic_plan for the session); the status of the first that
 * fails. The runtime prepares them again as the tables grow
 * (vox_replan_due). */
vox_status vox_pg_prepare_all(PGconn *c, const vox_pg_stmt *stmts, size_t n);

/*
 * The first error a connection met: its status (vox_pg_status), the
 * SQLSTATE the server sent ("" when none, as when the connection broke)
 * and the primary message. Handlers only return a status; the runtime
 * reads the rest from the connection it lent them.
 */
typedef struct vox_pg_error {
	vox_status status; /* VOX_OK: no error since the last reset */
	char sqlstate[6];
	char message[256];
} vox_pg_error;

/* Make c remember its first error (libpq's event hook sees every result
 * created on it). Once per connection; VOX_E_INTERNAL if libpq refuses. */
vox_status vox_pg_track_errors(PGconn *c) VOX_MUST_CHECK;

/* The first error since the last reset; status VOX_OK if none, or if c
 * is not tracked. */
void vox_pg_first_error(vox_pg_error *out, const PGconn *c);

/* Forget the remembered error (at the start of a transaction). */
void vox_pg_reset_error(PGconn *c);

/* Run a parameterless command (BEGIN, COMMIT, DDL). err gets the server's
 * message on failure. */
vox_status vox_pg_exec(PGconn *c, const char *sql, char *err,
		       size_t errlen) VOX_MUST_CHECK;

/*
 * Text-format array literals for set-based statements: one parameter
 * carries a whole column ("{\"a\",NULL,\"b\"}") to unnest($1::text[]).
 * Every element is quoted and escaped, so any bytes are safe.
 */
typedef struct vox_pg_array {
	vox_buf b;
	size_t n;
} vox_pg_array;

void vox_pg_array_init(vox_pg_array *a);
void vox_pg_array_str(vox_pg_array *a, const char *s, size_t len);
void vox_pg_array_null(vox_pg_array *a);
void vox_pg_array_int(vox_pg_array *a, int64_t v);
void vox_pg_array_bool(vox_pg_array *a, bool v);
/* The literal, valid until the next append or release. */
const char *vox_pg_array_text(vox_pg_array *a);
void vox_pg_array_release(vox_pg_array *a);

/* Append the literal of n string views to out in one go; a view with a
 * NULL ptr becomes an unquoted NULL element. */
void vox_pg_text_array(vox_buf *out, const vox_str *vals, size_t n);

#endif
