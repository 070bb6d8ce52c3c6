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
vox_status vox_pg_status(const PGconn *c, const PGresult *r) VOX_MUST_CHECK;

/* A named statement, prepared once per connection. */
typedef struct vox_pg_stmt {
	const char *name;
	const char *sql;
} vox_pg_stmt;

/* Prepare n statements on c, one generic plan each (plan_cache_mode =
 * force_generic_plan for the session); the status of the first that
 * fails. The runtime prepares them again as the tables grow
 * (vox_replan_due). */
vox_status vox_pg_prepare_all(PGconn *c, const vox_pg_stmt *stmts, size_t n) VOX_MUST_CHECK;

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
 * Set-based statements take a whole column as one array parameter
 * (unnest($1::uuid[], $2::text[], ...)), sent in PostgreSQL's binary array
 * format: no quoting, no array_in parse on the server, and any bytes are
 * safe in a text element. The element type is the array's, fixed at init,
 * and must be the one the statement casts to ($n::uuid[] -> VOX_PG_UUID).
 */
typedef enum vox_pg_type {
	VOX_PG_BOOL = 16,
	VOX_PG_NAME = 19, /* read only (vox-query's binary results) */
	VOX_PG_INT8 = 20,
	VOX_PG_INT2 = 21, /* read only */
	VOX_PG_INT4 = 23,
	VOX_PG_TEXT = 25,
	VOX_PG_FLOAT8 = 701,   /* read only */
	VOX_PG_VARCHAR = 1043, /* read only */
	VOX_PG_TIMESTAMPTZ = 1184,
	VOX_PG_UUID = 2950,
	VOX_PG_JSONB = 3802,
} vox_pg_type;

typedef struct vox_pg_array {
	vox_buf b; /* VOX_PG_ARRAY_HEADER bytes, then the elements */
	vox_pg_type type;
	size_t n;
	bool nulls;
} vox_pg_array;

/* ndim, flags, element type, length and lower bound of the one dimension */
#define VOX_PG_ARRAY_HEADER 20

void vox_pg_array_init(vox_pg_array *a, vox_pg_type type);
void vox_pg_array_release(vox_pg_array *a);
void vox_pg_array_null(vox_pg_array *a);
/* TEXT or JSONB: len bytes, any bytes; PostgreSQL checks the encoding. */
void vox_pg_array_str(vox_pg_array *a, const char *s, size_t len);
/* TEXT or JSONB: a view; one with a NULL ptr is a NULL element. */
void vox_pg_array_view(vox_pg_array *a, vox_str s);
/* UUID: an empty vox_uuid (s[0] == 0) is a NULL element. */
void vox_pg_array_uuid(vox_pg_array *a, const vox_uuid *u);
/* INT4 or INT8; a value outside INT4's range aborts (callers pass
 * decoded, bounded values: that is a bug, not input). */
void vox_pg_array_int(vox_pg_array *a, int64_t v);
void vox_pg_array_bool(vox_pg_array *a, bool v);
/* TIMESTAMPTZ, in microseconds as PostgreSQL keeps them (nanoseconds
 * rounded half to even, as its text input does); unset is NULL. */
void vox_pg_array_time(vox_pg_array *a, const vox_time *t);
/* The parameter's bytes (header completed), valid until the next append
 * or release. */
const char *vox_pg_array_bytes(vox_pg_array *a, int *len);

/*
 * The parameters of one statement: array columns (binary) and text
 * scalars, in order. Columns are owned and released with the set; text
 * values are the caller's and must outlive the run.
 */
#define VOX_PG_MAX_PARAMS 24

typedef struct vox_pg_params {
	vox_pg_array col[VOX_PG_MAX_PARAMS];
	const char *val[VOX_PG_MAX_PARAMS];
	int len[VOX_PG_MAX_PARAMS];
	int fmt[VOX_PG_MAX_PARAMS];
	uint32_t arrays; /* bit i: parameter i is col[i] (owned) */
	int n;
	int result_format; /* 0 text (the default), 1 binary */
} vox_pg_params;

void vox_pg_params_init(vox_pg_params *p);
void vox_pg_params_release(vox_pg_params *p);
/* The next parameter, an array of type; the pointer stays valid until
 * release. More than VOX_PG_MAX_PARAMS aborts. */
vox_pg_array *vox_pg_params_array(vox_pg_params *p, vox_pg_type type);
/* Start p with one array column per types[i], in order; cols[i] is
 * column i (valid until release). */
void vox_pg_params_columns(vox_pg_params *p, vox_pg_array **cols,
			   const vox_pg_type *types, size_t n);
/* The next parameter, a text value (NULL: SQL NULL). */
void vox_pg_params_text(vox_pg_params *p, const char *s);
/* The next parameter, len bytes in binary format (a bytea); the caller's. */
void vox_pg_params_bytes(vox_pg_params *p, const void *data, size_t len);

/* Run the prepared statement stmt (or, with vox_pg_run_sql, the SQL
 * text) with p; results in p->result_format. On VOX_OK *res (if not NULL)
 * receives the result, the caller's to PQclear. */
vox_status vox_pg_run(PGconn *c, const char *stmt, vox_pg_params *p,
		      PGresult **res) VOX_MUST_CHECK;
vox_status vox_pg_run_sql(PGconn *c, const char *sql, vox_pg_params *p,
			  PGresult **res) VOX_MUST_CHECK;

#endif
