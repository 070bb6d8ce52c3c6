/*
 * workload.c - what every pipeline scenario publishes and reads: a run's
 * ids, its call.started / call.ended events, its organizations, and small
 * Postgres helpers (bench.h). e2e, limit and baseline publish the very
 * same events, so their figures compare.
 */
#include "bench/bench.h"

#include <sodium.h>

#include "io/pg.h"

#define XSTR(x) #x
#define STR(x) XSTR(x)

void bench_run_init(bench_run *r)
{
	randombytes_buf(&r->id, sizeof(r->id));
}

void bench_uuid(char out[37], const bench_run *r, unsigned tag, long i)
{
	char t[48];
	snprintf(t, sizeof(t), "%08" PRIx32 "-%04x-4000-8000-%012lx", r->id,
		 tag & 0xffffu, (unsigned long)i & 0xffffffffffffUL);
	memcpy(out, t, 36);
	out[36] = '\0';
}

long bench_uuid_index(const char *s)
{
	if (strlen(s) != 36)
		return -1;
	char *end;
	errno = 0;
	long v = strtol(s + 24, &end, 16);
	return errno || *end ? -1 : v;
}

int bench_call_duration(long i)
{
	uint32_t h = (uint32_t)i * 2654435761u;
	return (int)((h >> 8) % 901u);
}

const char bench_transcript[] =
	"Agent: Good morning, Riverside Dental, how can I help?\n"
	"Caller: Hi, I'd like to book a check-up for next week, ideally"
	" Tuesday afternoon. I'm a new patient.\n"
	"Agent: Of course. Can I take your name and date of birth?\n"
	"Caller: It's Priya Shah, 14th of March 1988.\n"
	"Agent: Thank you. We have 2:30pm or 4:15pm on Tuesday.\n"
	"Caller: 2:30 works. Also, do you do whitening?\n"
	"Agent: We do; the dentist can discuss options at your visit.\n";

#define LIT(s) ((vox_str){s, sizeof(s) - 1})

void bench_call_ids(bench_call *c, const bench_run *r, long i, long orgs)
{
	bench_uuid(c->org, r, BENCH_TAG_ORG, i % orgs);
	bench_uuid(c->call, r, BENCH_TAG_CALL, i);
	snprintf(c->sid, sizeof(c->sid), "bench-%08" PRIx32 "-s-%ld", r->id, i);
	snprintf(c->eid, sizeof(c->eid), "bench-%08" PRIx32 "-e-%ld", r->id, i);
}

void bench_build_started(vox_event *ev, const bench_call *c, int64_t now_s)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_CALL_STARTED;
	vox_call_started *s = &ev->u.call_started;
	s->event_id = (vox_str){c->sid, strlen(c->sid)};
	memcpy(s->org_id.s, c->org, 37);
	memcpy(s->call_id.s, c->call, 37);
	s->vapi_call_id = LIT("call_7f3a9c1e2b4d");
	s->direction = VOX_DIR_INBOUND;
	s->from_number = LIT("+447700900123");
	s->to_number = LIT("+442071838750");
	s->caller_name = LIT("Priya Shah");
	s->started_at = (vox_time){now_s - 900, 0, true};
}

void bench_build_ended(vox_event *ev, const bench_call *c, long i, int64_t now_s)
{
	int d = bench_call_duration(i);
	memset(ev, 0, sizeof(*ev));
	ev->kind = VOX_CALL_ENDED;
	vox_call_ended *e = &ev->u.call_ended;
	e->event_id = (vox_str){c->eid, strlen(c->eid)};
	memcpy(e->org_id.s, c->org, 37);
	memcpy(e->call_id.s, c->call, 37);
	e->started_at = (vox_time){now_s - 900, 0, true};
	e->ended_at = (vox_time){now_s - 900 + d, 0, true};
	e->duration_seconds = d;
	e->status = VOX_CALL_COMPLETED;
	e->direction = VOX_DIR_INBOUND;
	e->from_number = LIT("+447700900123");
	e->to_number = LIT("+442071838750");
	e->transcript = (vox_str){bench_transcript, sizeof(bench_transcript) - 1};
	e->summary = LIT("New patient booked a check-up Tuesday 2:30pm;"
			 " asked about whitening.");
	e->recording_url = LIT("https://recordings.example/7f3a9c1e2b4d.wav");
	e->sentiment_label = VOX_SENTIMENT_POSITIVE;
	e->has_sentiment_score = true;
	e->sentiment_score = 0.82;
	e->sentiment_urgency = VOX_URGENCY_LOW;
}

/* ---- Postgres ------------------------------------------------------------ */

PGconn *bench_pg_open(const char *dsn)
{
	PGconn *c = NULL;
	char err[256] = "";
	if (vox_pg_connect(&c, dsn, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "vox-bench: postgres: %s\n", err);
		return NULL;
	}
	return c;
}

bool bench_pg_ok(PGconn *c, PGresult *r, const char *what)
{
	if (vox_pg_status(c, r) == VOX_OK)
		return true;
	fprintf(stderr, "vox-bench: %s: %s", what,
		r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	return false;
}

bool bench_pg_run(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	bool ok = bench_pg_ok(c, r, what);
	PQclear(r);
	return ok;
}

bool bench_pg_end_tx(PGconn *c, PGresult *r, const char *what)
{
	bool ok = bench_pg_ok(c, r, what);
	PQclear(r);
	if (ok)
		return bench_pg_run(c, "COMMIT", "commit");
	bool rb = bench_pg_run(c, "ROLLBACK", "rollback");
	VOX_UNUSED(rb);
	return false;
}

long long bench_pg_int(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	long long v = -1;
	if (bench_pg_ok(c, r, "query") && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

char *bench_uuid_array(const bench_run *r, unsigned tag, long from, long to, long step)
{
	/* a text literal: a UUID needs no quoting */
	vox_buf a;
	char id[37];
	vox_buf_init(&a);
	vox_buf_putc(&a, '{');
	for (long i = from; i < to; i += step) {
		bench_uuid(id, r, tag, i);
		if (i > from)
			vox_buf_putc(&a, ',');
		vox_buf_append(&a, id, 36);
	}
	vox_buf_putc(&a, '}');
	return a.data; /* the caller frees it */
}

char *bench_org_array(const bench_run *r, long orgs)
{
	return bench_uuid_array(r, BENCH_TAG_ORG, 0, orgs, 1);
}

int bench_open_with_orgs(const bench_opts *o, const bench_run *r, PGconn **db,
			 char **orgs)
{
	*orgs = NULL;
	*db = bench_pg_open(o->dsn);
	if (!*db)
		return 3;
	*orgs = bench_org_array(r, o->orgs);
	return bench_create_orgs(*db, r, *orgs) ? 0 : 1;
}

bool bench_create_orgs(PGconn *c, const bench_run *r, const char *arr)
{
	char tag[32];
	snprintf(tag, sizeof(tag), "bench %08" PRIx32, r->id);
	const char *p[2] = {arr, tag};
	if (!bench_pg_run(c, "BEGIN", "begin"))
		return false;
	PGresult *res = PQexecParams(
		c,
		"WITH o AS (INSERT INTO organizations (id, name, email,"
		"  wallet_balance_pence, debt_limit_pence)"
		" SELECT id, $2, 'bench@example.invalid', "
		STR(BENCH_OPENING_BALANCE) ", 500"
		" FROM unnest($1::uuid[]) AS id RETURNING id)"
		" INSERT INTO credit_transactions (org_id, amount_pence, type,"
		"  description, balance_before_pence, balance_after_pence)"
		" SELECT id, " STR(BENCH_OPENING_BALANCE) ", 'topup',"
		" 'opening balance', 0, " STR(BENCH_OPENING_BALANCE) " FROM o",
		2, NULL, p, NULL, NULL, 0);
	return bench_pg_end_tx(c, res, "create orgs");
}
