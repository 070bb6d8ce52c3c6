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
