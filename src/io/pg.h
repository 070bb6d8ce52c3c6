/*
 * pg.h - the Postgres adapter: connecting, classifying errors into
 * transient and permanent, and small helpers around libpq. SQL only ever
 * travels with parameters (PQexecParams / prepared statements).
 */
#ifndef VOX_PG_H
#define VOX_PG_H

#include "core/common.h"

#include <libpq-fe.h>

/* Connect to dsn. On success *out is owned by the caller (PQfinish).
 * VOX_E_UNAVAILABLE when the server cannot be reached; err gets a reason
 * that never contains the password. */
vox_status vox_pg_connect(PGconn **out, const char *dsn, char *err,
			  size_t errlen) VOX_MUST_CHECK;

/* Classify a result (NULL allowed, meaning the connection failed):
 * VOX_OK for COMMAND_OK/TUPLES_OK, VOX_E_RETRY for serialization failures
 * and deadlocks, VOX_E_UNAVAILABLE for connection loss and shutdown,
 * VOX_E_CONFLICT for unique violations, VOX_E_INTERNAL otherwise. */
vox_status vox_pg_status(const PGconn *c, const PGresult *r);

/* Run a parameterless command (BEGIN, COMMIT, DDL). err gets the server's
 * message on failure. */
vox_status vox_pg_exec(PGconn *c, const char *sql, char *err,
		       size_t errlen) VOX_MUST_CHECK;

#endif
