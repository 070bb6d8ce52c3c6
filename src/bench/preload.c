/*
 * preload.c - tables as a deployment has them after months: N completed
 * calls with their charges and ledger rows, spread over N_ORGS
 * organizations and the last 90 days, so that e2e-calls can be measured
 * against big tables and indexes as well as empty ones.
 *
 *   vox-bench preload --dsn D --events N [--orgs N_ORGS]
 *       Inserts N calls (with a realistic transcript), N call_charges rows
 *       and N deduction ledger rows, 100,000 per transaction (set-based,
 *       generate_series), then VACUUM ANALYZE. One JSON line: rows, seconds.
 *       Idempotent per database: a database that already holds N or more
 *       preloaded calls is left as it is.
 */
#include "bench/bench.h"

#include <sodium.h>

#include "io/log.h"

#define CHUNK 100000L

static const char usage_text[] =
	"usage: vox-bench preload --dsn D --events N [--orgs N_ORGS]\n"
	"  see src/bench/preload.c.\n";

/* One chunk: calls [$2, $3) of the preload, org = i % $4, ids from the
 * run tag $1; every table the write path touches, as its statements
 * would leave it. */
static const char SQL_CHUNK[] =
	"WITH s AS (SELECT i,"
	"  (lpad(to_hex($1::int), 8, '0') || '-0003-4000-8000-' ||"
	"   lpad(to_hex(i), 12, '0'))::uuid AS call,"
	"  (lpad(to_hex($1::int), 8, '0') || '-0001-4000-8000-' ||"
	"   lpad(to_hex(i % $4::bigint), 12, '0'))::uuid AS org,"
	"  (i * 2654435761 >> 8) % 901 AS d,"
	"  now() - (i % 7776000) * interval '1 second' AS at"
	"  FROM generate_series($2::bigint, $3::bigint - 1) AS i),"
	" c AS (INSERT INTO calls (id, org_id, call_direction, from_number,"
	"  to_number, phone_number, caller_name, vapi_call_id, status,"
	"  duration_seconds, transcript, summary, recording_url, sentiment_label,"
	"  sentiment_score, sentiment_urgency, ended_at, created_at, updated_at)"
	"  SELECT call, org, 'inbound', '+447700900123', '+442071838750',"
	"  '+447700900123', 'Priya Shah', 'call_' || i, 'completed', d,"
	"  repeat('Agent: Good morning, Riverside Dental, how can I help? ', 10),"
	"  'Booked a check-up.', 'https://recordings.example/' || i || '.wav',"
	"  'positive', 0.8, 'low', at + d * interval '1 second', at, at FROM s),"
	" g AS (INSERT INTO call_charges (call_id, org_id, duration_seconds,"
	"  rate_per_minute, charge_pence, deducted_pence, shortfall_pence,"
	"  event_id, created_at)"
	"  SELECT call, org, d, 70, (d * 70 + 59) / 60, (d * 70 + 59) / 60, 0,"
	"  'preload-e-' || i, at FROM s)"
	" INSERT INTO credit_transactions (org_id, amount_pence, type,"
	"  balance_before_pence, balance_after_pence, shortfall_pence, event_id,"
	"  description, call_id, created_at)"
	" SELECT org, -((d * 70 + 59) / 60), 'deduction', 0, 0, 0,"
	"  'preload-e-' || i, 'call of ' || d || ' s', call, at FROM s WHERE d > 0";

static int run_preload(const bench_opts *o)
{
	PGconn *db = bench_pg_open(o->dsn);
	if (!db)
		return 3;
	int code = 1;
	long long have = bench_pg_int(db, "SELECT count(*) FROM call_charges"
				      " WHERE event_id LIKE 'preload-e-%'", 0, NULL);
	if (have < 0)
		goto out;
	if (have >= o->events) {
		fprintf(stderr, "vox-bench: preload: %lld calls already there\n", have);
		printf("{\"scenario\":\"preload\",\"calls\":%lld,\"seconds\":0,"
		       "\"reused\":true}\n", have);
		code = 0;
		goto out;
	}
	if (have > 0) {
		fprintf(stderr, "vox-bench: preload: a partial preload (%lld calls)"
			" is there; use a fresh database\n", have);
		goto out;
	}
	bench_run run;
	bench_run_init(&run);
	run.id &= 0x7fffffffu; /* the SQL takes it as an int */
	char *orgs = bench_org_array(&run, o->orgs);
	bool ok = bench_create_orgs(db, &run, orgs);
	free(orgs);
	/* a bulk load: the bench measures after it, so it may skip the
	 * per-commit flush */
	if (!ok || !bench_pg_run(db, "SET synchronous_commit = off", "set"))
		goto out;
	int64_t t0 = bench_now_ns();
	char tag[16], from[24], to[24], norgs[24];
	snprintf(tag, sizeof(tag), "%" PRIu32, run.id);
	snprintf(norgs, sizeof(norgs), "%ld", o->orgs);
	for (long i = 0; i < o->events; i += CHUNK) {
		long end = i + CHUNK < o->events ? i + CHUNK : o->events;
		snprintf(from, sizeof(from), "%ld", i);
		snprintf(to, sizeof(to), "%ld", end);
		const char *p[4] = {tag, from, to, norgs};
		PGresult *r = PQexecParams(db, SQL_CHUNK, 4, NULL, p, NULL, NULL, 0);
		if (!bench_pg_ok(db, r, "preload")) {
			PQclear(r);
			goto out;
		}
		PQclear(r);
		if ((end / CHUNK) % 10 == 0 || end == o->events)
			fprintf(stderr, "vox-bench: preload: %ld of %ld calls, %.0f s\n",
				end, o->events, (double)(bench_now_ns() - t0) / 1e9);
	}
	if (!bench_pg_run(db, "VACUUM ANALYZE calls", "vacuum") ||
	    !bench_pg_run(db, "VACUUM ANALYZE call_charges", "vacuum") ||
	    !bench_pg_run(db, "VACUUM ANALYZE credit_transactions", "vacuum"))
		goto out;
	printf("{\"scenario\":\"preload\",\"calls\":%ld,\"seconds\":%.1f,"
	       "\"reused\":false}\n", o->events, (double)(bench_now_ns() - t0) / 1e9);
	fflush(stdout);
	code = 0;
out:
	PQfinish(db);
	return code;
}

int bench_preload_main(int argc, char **argv)
{
	bench_opts o = {.orgs = 1000, .events = 1000000, .sample = 1, .pending = 1,
			.conns = 1};
	if (!bench_opts_parse(&o, argc, argv, false, usage_text))
		return 2;
	vox_log_setup("vox-bench", "warn", NULL);
	if (sodium_init() < 0)
		return 1;
	return run_preload(&o);
}
