/*
 * pg.c - Postgres connection and error classification.
 */
#include "io/pg.h"

#include "io/log.h"

vox_status vox_pg_connect(PGconn **out, const char *dsn, char *err,
			  size_t errlen)
{
	PGconn *c = PQconnectdb(dsn);
	if (c == NULL) {
		snprintf(err, errlen, "postgres: out of memory");
		return VOX_E_INTERNAL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		const char *m = PQerrorMessage(c);
		snprintf(err, errlen, "postgres connect: %.*s",
			 (int)strcspn(m, "\n"), m);
		PQfinish(c);
		return VOX_E_UNAVAILABLE;
	}
	*out = c;
	return VOX_OK;
}

vox_status vox_pg_status(const PGconn *c, const PGresult *r)
{
	if (r == NULL)
		return VOX_E_UNAVAILABLE;
	switch (PQresultStatus(r)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_SINGLE_TUPLE:
	case PGRES_PIPELINE_SYNC:
		return VOX_OK;
	default:
		break;
	}
	if (c && PQstatus(c) != CONNECTION_OK)
		return VOX_E_UNAVAILABLE;
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state == NULL)
		return VOX_E_UNAVAILABLE;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return VOX_E_RETRY;
	if (strcmp(state, "23505") == 0)
		return VOX_E_CONFLICT;
	/* 08: connection exception, 57P0x: admin/crash shutdown, cannot
	 * connect now; 53: insufficient resources */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "53", 2) == 0)
		return VOX_E_UNAVAILABLE;
	return VOX_E_INTERNAL;
}

vox_status vox_pg_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	vox_status st = vox_pg_status(c, r);
	if (st != VOX_OK) {
		const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
		snprintf(err, errlen, "%.*s", (int)strcspn(m, "\n"), m);
	}
	PQclear(r);
	return st;
}
