/*
 * pg.c - Postgres connection and error classification.
 */
#include "io/pg.h"

#include "io/log.h"

#include <libpq-events.h>

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

vox_status vox_pg_prepare_all(PGconn *c, const vox_pg_stmt *stmts, size_t n)
{
	/* one plan per statement, made at its first execution: the runtime
	 * prepares again as the tables grow (vox_replan_due), and each new
	 * plan costs one planning, not the five custom plans of "auto" */
	PGresult *r = PQexec(c, "SET plan_cache_mode = force_generic_plan");
	vox_status st = vox_pg_status(c, r);
	PQclear(r);
	if (st != VOX_OK)
		return st;
	for (size_t i = 0; i < n; i++) {
		r = PQprepare(c, stmts[i].name, stmts[i].sql, 0, NULL);
		st = vox_pg_status(c, r);
		PQclear(r);
		if (st != VOX_OK)
			return st;
	}
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
	/* 57014: statement timeout or cancel; 55P03: lock timeout */
	if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)
		return VOX_E_TIMEOUT;
	/* 08: connection exception, 57P0x: admin/crash shutdown, cannot
	 * connect now; 53: insufficient resources; 58: I/O; 25006: a
	 * read-only transaction (a standby, or a failover in progress) */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0 ||
	    strcmp(state, "25006") == 0)
		return VOX_E_UNAVAILABLE;
	return VOX_E_INTERNAL;
}

/* ---- the first error of a connection ------------------------------------ */

static void record_error(vox_pg_error *e, const PGconn *c, const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	if (m == NULL)
		m = PQresultErrorMessage(r);
	e->status = vox_pg_status(c, r);
	if (e->status == VOX_OK)
		e->status = VOX_E_INTERNAL;
	snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", state ? state : "");
	snprintf(e->message, sizeof(e->message), "%.*s", (int)strcspn(m, "\n"), m);
}

static int error_event(PGEventId id, void *info, void *pass)
{
	VOX_UNUSED(pass);
	switch (id) {
	case PGEVT_REGISTER: {
		PGEventRegister *e = info;
		return PQsetInstanceData(e->conn, error_event,
					 vox_calloc(1, sizeof(vox_pg_error)));
	}
	case PGEVT_CONNDESTROY: {
		PGEventConnDestroy *e = info;
		free(PQinstanceData(e->conn, error_event));
		return 1;
	}
	case PGEVT_RESULTCREATE: {
		PGEventResultCreate *e = info;
		vox_pg_error *err = PQinstanceData(e->conn, error_event);
		ExecStatusType rs = PQresultStatus(e->result);
		if (err && err->status == VOX_OK &&
		    (rs == PGRES_FATAL_ERROR || rs == PGRES_BAD_RESPONSE))
			record_error(err, e->conn, e->result);
		return 1;
	}
	default:
		return 1;
	}
}

vox_status vox_pg_track_errors(PGconn *c)
{
	return PQregisterEventProc(c, error_event, "vox_pg_error", NULL)
		? VOX_OK : VOX_E_INTERNAL;
}

void vox_pg_first_error(vox_pg_error *out, const PGconn *c)
{
	const vox_pg_error *e = PQinstanceData(c, error_event);
	if (e)
		*out = *e;
	else
		memset(out, 0, sizeof(*out));
}

void vox_pg_reset_error(PGconn *c)
{
	vox_pg_error *e = PQinstanceData(c, error_event);
	if (e)
		memset(e, 0, sizeof(*e));
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

void vox_pg_array_init(vox_pg_array *a)
{
	vox_buf_init(&a->b);
	vox_buf_putc(&a->b, '{');
	a->n = 0;
}

static void array_sep(vox_pg_array *a)
{
	if (a->n++)
		vox_buf_putc(&a->b, ',');
}

/* One double-quoted element: inside the quotes only '"' and '\' are
 * special, so any bytes are safe. */
static void quote_into(vox_buf *out, const char *s, size_t len)
{
	size_t run = 0;
	vox_buf_reserve(out, len + 2);
	vox_buf_putc(out, '"');
	for (size_t j = 0; j < len; j++) {
		if (s[j] != '"' && s[j] != '\\')
			continue;
		vox_buf_append(out, s + run, j - run);
		vox_buf_putc(out, '\\');
		run = j;
	}
	vox_buf_append(out, s + run, len - run);
	vox_buf_putc(out, '"');
}

void vox_pg_array_str(vox_pg_array *a, const char *s, size_t len)
{
	array_sep(a);
	quote_into(&a->b, s, len);
}

void vox_pg_text_array(vox_buf *out, const vox_str *vals, size_t n)
{
	vox_buf_putc(out, '{');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			vox_buf_putc(out, ',');
		if (vals[i].ptr == NULL)
			vox_buf_puts(out, "NULL");
		else
			quote_into(out, vals[i].ptr, vals[i].len);
	}
	vox_buf_putc(out, '}');
}

void vox_pg_array_null(vox_pg_array *a)
{
	array_sep(a);
	vox_buf_puts(&a->b, "NULL");
}

void vox_pg_array_int(vox_pg_array *a, int64_t v)
{
	array_sep(a);
	vox_buf_printf(&a->b, "%" PRId64, v);
}

void vox_pg_array_bool(vox_pg_array *a, bool v)
{
	array_sep(a);
	vox_buf_putc(&a->b, v ? 't' : 'f');
}

const char *vox_pg_array_text(vox_pg_array *a)
{
	vox_buf_putc(&a->b, '}');
	a->b.len--; /* keep appendable: the brace is re-added on demand */
	return a->b.data;
}

void vox_pg_array_release(vox_pg_array *a)
{
	vox_buf_release(&a->b);
}
