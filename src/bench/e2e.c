/*
 * e2e.c - the end-to-end scenarios: calls published by vox-bench, applied
 * by the running vox-calls and vox-billing, measured with SQL.
 *
 *   vox-bench e2e-calls --url U --dsn D --orgs N_ORGS --events N
 *                       [--rate R] [--sample K] [--pending P] [--name S]
 *       Creates N_ORGS organizations (owner DSN) with a large opening
 *       balance, then publishes N call.started + N call.ended (call i: org
 *       i % N_ORGS, a varied duration; its call.ended right after its
 *       call.started) with async JetStream publishing (at most P acks
 *       pending, default 4096). --rate R > 0 paces calls (a call.started
 *       and a call.ended each) at R/s, open loop; 0 (default) is as fast
 *       as possible. Done when SQL shows N completed calls and N
 *       call_charges rows for these orgs (polled every 250 ms, at most
 *       300 s; while the last 64 calls published are not all done, only
 *       those are looked up, so the poll takes little from the database
 *       under test).
 *
 *       The run ends at its last commit, not at the poll that saw it:
 *       seconds (and events_per_s) run from the first publish to the
 *       latest commit-side time of its calls (the later of
 *       calls.updated_at, call_charges.created_at and the ledger row's
 *       created_at: times inside the committing transactions, a lower
 *       bound of each commit). Latency of every K-th call.ended (default
 *       10): that time minus its publish time (its due time under --rate,
 *       so a stalled publisher is charged too). hot-org is the same with
 *       one org (the default --name when N_ORGS is 1).
 */
#include "bench/bench.h"

#include <sodium.h>

#include "io/log.h"
#include "io/pg.h"

#define P_POLL_NS (250 * INT64_C(1000000))
#define P_WAIT_NS (300 * NS_PER_S)
#define P_TAIL 64

static const char usage_text[] =
	"usage: vox-bench e2e-calls|hot-org --url U --dsn D --orgs N --events N"
	" [--rate R]\n"
	"                 [--sample K] [--pending P] [--name S]\n"
	"  vox-calls and vox-billing must be running; see src/bench/e2e.c.\n";

static const char SQL_PROGRESS[] =
	"SELECT (SELECT count(*) FROM calls WHERE status = 'completed'"
	"         AND org_id = ANY($1::uuid[])),"
	"       (SELECT count(*) FROM call_charges WHERE org_id = ANY($1::uuid[]))";
/* The cheap poll while the run is in flight: how many of the last calls
 * published are completed and charged (point lookups). */
static const char SQL_TAIL[] =
	"SELECT count(*) FROM calls c JOIN call_charges cc ON cc.call_id = c.id"
	" WHERE c.id = ANY($1::uuid[]) AND c.status = 'completed'";

/* The commit-side time of a call, in us since the epoch. */
#define COMMIT_TS \
	"greatest(c.updated_at, cc.created_at, coalesce(t.created_at, cc.created_at))"
static const char SQL_COMMITS[] =
	"SELECT c.id::text, (extract(epoch FROM " COMMIT_TS ") * 1000000)::bigint"
	" FROM calls c JOIN call_charges cc ON cc.call_id = c.id"
	" LEFT JOIN credit_transactions t ON t.call_id = c.id AND t.type = 'deduction'"
	" WHERE c.id = ANY($1::uuid[])";
static const char SQL_LAST_COMMIT[] =
	"SELECT (extract(epoch FROM max(" COMMIT_TS ")) * 1000000)::bigint"
	" FROM calls c JOIN call_charges cc ON cc.call_id = c.id"
	" LEFT JOIN credit_transactions t ON t.call_id = c.id AND t.type = 'deduction'"
	" WHERE c.org_id = ANY($1::uuid[])";


/* Wait until both actors committed every call of the run; false after
 * P_WAIT_NS. */
static bool wait_done(PGconn *db, const bench_run *run, const char *orgs,
		      long n, int64_t t0)
{
	long ntail = n < P_TAIL ? n : P_TAIL;
	char *tail = bench_uuid_array(run, BENCH_TAG_CALL, n - ntail, n, 1);
	const char *pt[1] = {tail};
	const char *po[1] = {orgs};
	bool tail_done = false, done = false;
	long calls = 0, charges = 0;
	while (!done) {
		int64_t t = bench_now_ns();
		if (!tail_done) {
			tail_done = bench_pg_int(db, SQL_TAIL, 1, pt) >= ntail;
		} else {
			PGresult *r = PQexecParams(db, SQL_PROGRESS, 1, NULL, po, NULL, NULL, 0);
			if (!bench_pg_ok(db, r, "progress")) {
				PQclear(r);
				break;
			}
			calls = strtol(PQgetvalue(r, 0, 0), NULL, 10);
			charges = strtol(PQgetvalue(r, 0, 1), NULL, 10);
			PQclear(r);
			done = calls >= n && charges >= n;
		}
		if (done)
			break;
		if (t - t0 > P_WAIT_NS) {
			fprintf(stderr, "vox-bench: gave up after %d s: %ld of %ld calls"
				" completed, %ld charged\n", (int)(P_WAIT_NS / NS_PER_S),
				calls, n, charges);
			break;
		}
		bench_sleep_until(t + P_POLL_NS);
	}
	free(tail);
	return done;
}

static int run_e2e(const bench_opts *o)
{
	int code = 1;
	bench_run run;
	bench_pub pub;
	long n = o->events;
	long nsamples = (n + o->sample - 1) / o->sample;
	int64_t *pub_us = vox_calloc((size_t)nsamples, sizeof(int64_t));
	int64_t *lat = vox_calloc((size_t)nsamples, sizeof(int64_t));
	char *orgs = NULL, *sampled = NULL;
	PGresult *r = NULL;
	memset(&pub, 0, sizeof(pub));
	bench_run_init(&run);

	PGconn *db = NULL;
	int oc = bench_open_with_orgs(o, &run, &db, &orgs);
	if (oc != 0) {
		code = oc;
		goto out;
	}
	int rc = bench_pub_open(&pub, o->url, o->pending, "vox-bench-e2e");
	if (rc != 0) {
		code = rc;
		goto out;
	}
	fprintf(stderr, "vox-bench: %s: %ld orgs, %ld calls, rate %ld/s\n",
		o->name, o->orgs, n, o->rate);

	int64_t t0 = bench_now_ns();
	int64_t w0 = bench_wall_us();
	if (!bench_publish_calls(&pub, &run, 0, n, o->orgs, o->rate, t0, w0,
				 pub_us, o->sample) ||
	    !bench_pub_complete(&pub))
		goto out;
	int64_t t_pub = bench_now_ns();
	fprintf(stderr, "vox-bench: published %ld events in %.2f s (%ld acks"
		" failed, %ld resent)\n", 2 * n, (double)(t_pub - t0) / 1e9,
		atomic_load(&pub.failed), atomic_load(&pub.resent));
	if (!wait_done(db, &run, orgs, n, t0))
		goto out;
	int64_t t_poll = bench_now_ns();

	/* latency of the sampled call.ended events */
	sampled = bench_uuid_array(&run, BENCH_TAG_CALL, 0, n, o->sample);
	const char *p2[1] = {sampled};
	r = PQexecParams(db, SQL_COMMITS, 1, NULL, p2, NULL, NULL, 0);
	if (!bench_pg_ok(db, r, "commit times"))
		goto out;
	size_t ns = 0;
	for (int row = 0; row < PQntuples(r); row++) {
		long idx = bench_uuid_index(PQgetvalue(r, row, 0));
		if (idx < 0 || idx % o->sample != 0 || idx / o->sample >= nsamples)
			continue;
		int64_t l = strtoll(PQgetvalue(r, row, 1), NULL, 10) - pub_us[idx / o->sample];
		lat[ns++] = l < 0 ? 0 : l;
	}
	PQclear(r);
	r = NULL;
	const char *p1[1] = {orgs};
	long long last_commit_us = bench_pg_int(db, SQL_LAST_COMMIT, 1, p1);
	if (last_commit_us < 0)
		goto out;
	bench_sort(lat, ns);

	double secs = (double)(last_commit_us - w0) / 1e6;
	if (secs <= 0)
		secs = 1e-6;
	printf("{\"scenario\":\"%s\",\"orgs\":%ld,\"events\":%ld,\"call_ended\":%ld,"
	       "\"offered_rps\":%ld,\"offered_events_per_s\":%ld,"
	       "\"seconds\":%.3f,\"events_per_s\":%.1f,\"call_ended_per_s\":%.1f,"
	       "\"publish_seconds\":%.3f,\"last_commit_seconds\":%.3f,"
	       "\"poll_seconds\":%.3f,"
	       "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"samples\":%zu,"
	       "\"sample_every\":%ld,\"pub_acks_failed\":%ld,"
	       "\"latency_to\":\"greatest(calls.updated_at,call_charges.created_at,"
	       "credit_transactions.created_at)\"}\n",
	       o->name, o->orgs, 2 * n, n, o->rate, 2 * o->rate, secs,
	       (double)(2 * n) / secs, (double)n / secs,
	       (double)(t_pub - t0) / 1e9, secs, (double)(t_poll - t0) / 1e9,
	       (double)bench_percentile(lat, ns, 0.50) / 1000.0,
	       (double)bench_percentile(lat, ns, 0.99) / 1000.0,
	       ns ? (double)lat[ns - 1] / 1000.0 : 0.0, ns, o->sample,
	       atomic_load(&pub.failed));
	fflush(stdout);
	code = 0;
out:
	PQclear(r);
	bench_pub_close(&pub);
	PQfinish(db);
	free(orgs);
	free(sampled);
	free(lat);
	free(pub_us);
	return code;
}

int bench_e2e_main(int argc, char **argv)
{
	bench_opts o = {.orgs = 1000, .events = 20000, .sample = 10,
			.pending = 4096, .conns = 1};
	if (strcmp(argv[1], "hot-org") == 0)
		o.orgs = 1;
	if (!bench_opts_parse(&o, argc, argv, true, usage_text))
		return 2;
	if (strcmp(o.name, "e2e-calls") == 0 && o.orgs == 1)
		o.name = "hot-org";
	vox_log_setup("vox-bench", "warn", NULL);
	if (sodium_init() < 0)
		return 1;
	int rc = run_e2e(&o);
	natsStatus cs = nats_CloseAndWait(2000);
	VOX_UNUSED(cs);
	return rc;
}
