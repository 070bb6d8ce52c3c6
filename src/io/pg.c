/*
 * pg.c - Postgres connection and error classification.
 */
#include "io/pg.h"

#include "io/log.h"

#include <libpq-events.h>
#include <sodium.h>

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

/* ---- binary arrays --------------------------------------------------------- */

static void put_be32(vox_buf *b, uint32_t v)
{
	unsigned char x[4];
	vox_be_put(x, v, 4);
	vox_buf_append(b, x, 4);
}

static void put_be64(vox_buf *b, uint64_t v)
{
	unsigned char x[8];
	vox_be_put(x, v, 8);
	vox_buf_append(b, x, 8);
}

static void set_be32(char *at, uint32_t v)
{
	vox_be_put(at, v, 4);
}

static void wrong_type(const vox_pg_array *a, const char *what)
{
	fprintf(stderr, "level=fatal msg=\"%s into an array of type %d\"\n",
		what, (int)a->type);
	abort();
}

void vox_pg_array_init(vox_pg_array *a, vox_pg_type type)
{
	vox_buf_init(&a->b);
	vox_buf_reserve(&a->b, VOX_PG_ARRAY_HEADER + 64);
	a->b.len = VOX_PG_ARRAY_HEADER; /* written by vox_pg_array_bytes */
	a->type = type;
	a->n = 0;
	a->nulls = false;
}

void vox_pg_array_release(vox_pg_array *a)
{
	vox_buf_release(&a->b);
}

/* An element: its length, then len bytes. */
static void element(vox_pg_array *a, const void *p, size_t len)
{
	if (len > INT32_MAX)
		wrong_type(a, "an element over 2 GB");
	put_be32(&a->b, (uint32_t)len);
	vox_buf_append(&a->b, p, len);
	a->n++;
}

void vox_pg_array_null(vox_pg_array *a)
{
	put_be32(&a->b, UINT32_MAX); /* length -1 */
	a->n++;
	a->nulls = true;
}

void vox_pg_array_str(vox_pg_array *a, const char *s, size_t len)
{
	if (a->type == VOX_PG_JSONB) {
		/* jsonb's binary form: version 1, then the JSON text */
		put_be32(&a->b, (uint32_t)len + 1);
		vox_buf_putc(&a->b, 1);
		vox_buf_append(&a->b, s, len);
		a->n++;
		return;
	}
	if (a->type != VOX_PG_TEXT)
		wrong_type(a, "a string");
	element(a, s, len);
}

void vox_pg_array_view(vox_pg_array *a, vox_str s)
{
	if (s.ptr == NULL)
		vox_pg_array_null(a);
	else
		vox_pg_array_str(a, s.ptr, s.len);
}

void vox_pg_array_uuid(vox_pg_array *a, const vox_uuid *u)
{
	if (a->type != VOX_PG_UUID)
		wrong_type(a, "a uuid");
	if (u->s[0] == '\0') {
		vox_pg_array_null(a);
		return;
	}
	/* u is canonical (vox_uuid_parse): 32 hex digits and four hyphens */
	unsigned char raw[16];
	size_t k = 0;
	if (sodium_hex2bin(raw, sizeof(raw), u->s, 36, "-", &k, NULL) != 0 ||
	    k != sizeof(raw))
		wrong_type(a, "a uuid that is not canonical");
	element(a, raw, sizeof(raw));
}

void vox_pg_array_int(vox_pg_array *a, int64_t v)
{
	if (a->type == VOX_PG_INT8) {
		put_be32(&a->b, 8);
		put_be64(&a->b, (uint64_t)v);
	} else if (a->type == VOX_PG_INT4 && v >= INT32_MIN && v <= INT32_MAX) {
		put_be32(&a->b, 4);
		put_be32(&a->b, (uint32_t)(int32_t)v);
	} else {
		wrong_type(a, "an integer (or one outside int4)");
	}
	a->n++;
}

void vox_pg_array_bool(vox_pg_array *a, bool v)
{
	if (a->type != VOX_PG_BOOL)
		wrong_type(a, "a bool");
	char c = v ? 1 : 0;
	element(a, &c, 1);
}

/* Seconds from the Unix epoch to PostgreSQL's, 2000-01-01. */
#define PG_EPOCH_OFFSET INT64_C(946684800)

void vox_pg_array_time(vox_pg_array *a, const vox_time *t)
{
	if (a->type != VOX_PG_TIMESTAMPTZ)
		wrong_type(a, "a time");
	if (!t->set) {
		vox_pg_array_null(a);
		return;
	}
	int64_t us = t->nsec / 1000, rest = t->nsec % 1000;
	if (rest > 500 || (rest == 500 && (us & 1)))
		us++;
	us += (t->sec - PG_EPOCH_OFFSET) * INT64_C(1000000);
	put_be32(&a->b, 8);
	put_be64(&a->b, (uint64_t)us);
	a->n++;
}

const char *vox_pg_array_bytes(vox_pg_array *a, int *len)
{
	char *h = a->b.data;
	if (a->n == 0) {
		/* no dimensions: ndim 0, no nulls, the element type */
		set_be32(h + 8, 0);
		set_be32(h + 12, 0);
		set_be32(h + 16, (uint32_t)a->type);
		*len = 12;
		return h + 8;
	}
	if (a->b.len > INT32_MAX || a->n > INT32_MAX)
		wrong_type(a, "more than 2 GB");
	set_be32(h, 1);
	set_be32(h + 4, a->nulls ? 1 : 0);
	set_be32(h + 8, (uint32_t)a->type);
	set_be32(h + 12, (uint32_t)a->n);
	set_be32(h + 16, 1);
	*len = (int)a->b.len;
	return h;
}

/* ---- parameter sets -------------------------------------------------------- */

void vox_pg_params_init(vox_pg_params *p)
{
	memset(p, 0, sizeof(*p));
}

void vox_pg_params_release(vox_pg_params *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->arrays & (1u << i))
			vox_pg_array_release(&p->col[i]);
	p->arrays = 0;
	p->n = 0;
}

static int next_param(vox_pg_params *p)
{
	if (p->n >= VOX_PG_MAX_PARAMS) {
		fprintf(stderr, "level=fatal msg=\"more than %d parameters\"\n",
			VOX_PG_MAX_PARAMS);
		abort();
	}
	return p->n++;
}

vox_pg_array *vox_pg_params_array(vox_pg_params *p, vox_pg_type type)
{
	int i = next_param(p);
	p->fmt[i] = 1;
	p->arrays |= 1u << i;
	vox_pg_array_init(&p->col[i], type);
	return &p->col[i];
}

void vox_pg_params_columns(vox_pg_params *p, vox_pg_array **cols,
			   const vox_pg_type *types, size_t n)
{
	vox_pg_params_init(p);
	for (size_t i = 0; i < n; i++)
		cols[i] = vox_pg_params_array(p, types[i]);
}

void vox_pg_params_text(vox_pg_params *p, const char *s)
{
	int i = next_param(p);
	p->fmt[i] = 0;
	p->len[i] = 0;
	p->val[i] = s;
}

void vox_pg_params_bytes(vox_pg_params *p, const void *data, size_t len)
{
	int i = next_param(p);
	if (len > INT32_MAX) {
		fprintf(stderr, "level=fatal msg=\"a parameter over 2 GB\"\n");
		abort();
	}
	p->fmt[i] = 1;
	p->len[i] = (int)len;
	p->val[i] = data;
}

static void params_ready(vox_pg_params *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->arrays & (1u << i))
			p->val[i] = vox_pg_array_bytes(&p->col[i], &p->len[i]);
}

static vox_status keep_result(PGconn *c, PGresult *r, PGresult **res)
{
	vox_status st = vox_pg_status(c, r);
	if (st == VOX_OK && res) {
		*res = r;
		r = NULL;
	}
	PQclear(r);
	return st;
}

vox_status vox_pg_run(PGconn *c, const char *stmt, vox_pg_params *p,
		      PGresult **res)
{
	params_ready(p);
	return keep_result(c, PQexecPrepared(c, stmt, p->n, p->val, p->len,
					     p->fmt, p->result_format), res);
}

vox_status vox_pg_run_sql(PGconn *c, const char *sql, vox_pg_params *p,
			  PGresult **res)
{
	params_ready(p);
	return keep_result(c, PQexecParams(c, sql, p->n, NULL, p->val, p->len,
					   p->fmt, p->result_format), res);
}
