/*
 * limit.c - the fair ceiling of the write path: vox's own consume loop
 * (src/io/runtime*.c, configured from the same VOX_* variables as the
 * actors: batch, fetch-ahead, dispositions, commit before ack) with a
 * trivial handler that writes one narrow row per event, fed the very
 * calls e2e-calls publishes on EVENTS.
 *
 *   vox-bench limit --url U --dsn D [--events N] [--pending P]
 *       Three lines, N calls (2N events) each:
 *       limit          the loop running while the calls are published:
 *                      first publish to the last commit;
 *       limit-publish  the publisher alone (no consumer running): first
 *                      publish to the last ack, the publishing side's
 *                      own ceiling;
 *       limit-consume  the loop started on the 2N events published
 *                      meanwhile: its start to the last commit, the
 *                      consuming side's own ceiling.
 *       The runtime's durable consumer (vox-bench-limit, call.*.*) and the
 *       table bench_limit are removed at the end. The streams must exist
 *       (voxctl streams apply).
 */
#include "bench/bench.h"

#include <sodium.h>

#include "core/config.h"
#include "io/log.h"
#include "io/natsconn.h"
#include "io/pg.h"
#include "io/runtime.h"
#include "vox/subjects.h"

#define LIMIT_DURABLE "vox-bench-limit"
#define P_WAIT_NS (300 * NS_PER_S)

static const char usage_text[] =
	"usage: vox-bench limit --url U --dsn D [--events N] [--pending P]\n"
	"  see src/bench/limit.c.\n";

static const char SQL_INSERT[] =
	"INSERT INTO bench_limit (seq) SELECT unnest($1::bigint[])"
	" ON CONFLICT DO NOTHING";

static const vox_pg_stmt limit_stmts[] = {{"bench_limit_insert", SQL_INSERT}};

/* Prepared as the actors prepare theirs (vox_pg_prepare_all). */
static vox_status limit_prepare(void *ctx, PGconn *c)
{
	VOX_UNUSED(ctx);
	return vox_pg_prepare_all(c, limit_stmts, VOX_NELEM(limit_stmts));
}

/* One narrow row per event: its stream sequence, in one binary int8[]
 * parameter built as the actors build theirs. */
static vox_status limit_apply(void *ctx, vox_tx *tx, vox_item *items, size_t n)
{
	VOX_UNUSED(ctx);
	vox_pg_params p;
	vox_pg_params_init(&p);
	vox_pg_array *seqs = vox_pg_params_array(&p, VOX_PG_INT8);
	for (size_t i = 0; i < n; i++)
		vox_pg_array_int(seqs, (int64_t)items[i].stream_seq);
	vox_status st = vox_pg_run(vox_tx_pg(tx), "bench_limit_insert", &p, NULL);
	vox_pg_params_release(&p);
	return st;
}

static const char *env_get(const char *name, void *ctx)
{
	VOX_UNUSED(ctx);
	return getenv(name);
}

typedef struct limit {
	const bench_opts *o;
	natsConnection *nc; /* the runtime's */
	vox_runtime_config cfg;
	vox_runtime *rt;
	PGconn *db;
	bench_pub pub;
} limit;

static bool loop_start(limit *L)
{
	char err[512];
	static const vox_input inputs[] = {{LIMIT_DURABLE, "call.*.*"}};
	vox_handler h = {limit_prepare, limit_apply, NULL, NULL};
	if (vox_runtime_new(&L->rt, L->nc, "vox-bench-limit", L->o->dsn, &L->cfg,
			    inputs, 1, &h, err, sizeof(err)) != VOX_OK ||
	    vox_runtime_start(L->rt) != VOX_OK) {
		fprintf(stderr, "vox-bench: limit: runtime: %s\n", err);
		vox_runtime_free(L->rt);
		L->rt = NULL;
		return false;
	}
	return true;
}

static void loop_stop(limit *L)
{
	vox_runtime_free(L->rt);
	L->rt = NULL;
}

/* Wait for want rows; the commit-side time of the last one (wall us), or
 * -1 after P_WAIT_NS. */
static long long wait_rows(limit *L, long long want)
{
	int64_t t0 = bench_now_ns();
	for (;;) {
		long long have = bench_pg_int(L->db, "SELECT count(*) FROM bench_limit", 0, NULL);
		if (have >= want)
			break;
		if (have < 0 || bench_now_ns() - t0 > P_WAIT_NS) {
			fprintf(stderr, "vox-bench: limit gave up: %lld of %lld rows\n",
				have, want);
			return -1;
		}
		bench_sleep_until(bench_now_ns() + 20 * 1000000);
	}
	return bench_pg_int(L->db, "SELECT (extract(epoch FROM max(at)) * 1000000)::bigint"
			    " FROM bench_limit", 0, NULL);
}

static void line(const char *scenario, long events, double secs, const char *what)
{
	if (secs <= 0)
		secs = 1e-6;
	printf("{\"scenario\":\"%s\",\"events\":%ld,\"seconds\":%.3f,"
	       "\"events_per_s\":%.1f,\"measured\":\"%s\"}\n",
	       scenario, events, secs, (double)events / secs, what);
	fflush(stdout);
}

static int run_limit(limit *L)
{
	const bench_opts *o = L->o;
	long n = o->events;
	bench_run run;
	char err[256] = "";
	bench_run_init(&run);
	vox_buf errors;
	vox_buf_init(&errors);
	vox_status st = vox_cfg_parse(&L->cfg, vox_runtime_vars, vox_runtime_nvars,
				      env_get, NULL, &errors);
	if (st != VOX_OK)
		fprintf(stderr, "vox-bench: limit: %s", errors.data);
	vox_buf_release(&errors);
	if (st != VOX_OK)
		return 2;
	L->db = bench_pg_open(o->dsn);
	if (!L->db)
		return 3;
	if (!bench_pg_run(L->db, "DROP TABLE IF EXISTS bench_limit", "drop") ||
	    !bench_pg_run(L->db, "CREATE TABLE bench_limit (seq bigint PRIMARY KEY,"
			  " at timestamptz NOT NULL DEFAULT clock_timestamp())", "create"))
		return 1;
	vox_nats_opts no = {.url = o->url, .name = "vox-bench-limit", .timeout_ms = 5000};
	if (vox_nats_connect(&L->nc, &no, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "vox-bench: nats: %s\n", err);
		return 3;
	}
	int rc = bench_pub_open(&L->pub, o->url, o->pending, "vox-bench-limit-pub");
	if (rc != 0)
		return rc;
	fprintf(stderr, "vox-bench: limit: %ld calls (%ld events) per phase\n", n, 2 * n);

	/* 1. the loop while the calls are published */
	if (!loop_start(L))
		return 1;
	int64_t t0 = bench_now_ns();
	int64_t w0 = bench_wall_us();
	if (!bench_publish_calls(&L->pub, &run, 0, n, o->orgs, 0, t0, w0, NULL, 1) ||
	    !bench_pub_complete(&L->pub))
		return 1;
	long long last = wait_rows(L, 2 * n);
	if (last < 0)
		return 1;
	line("limit", 2 * n, (double)(last - w0) / 1e6, "first publish to last commit");
	loop_stop(L);

	/* 2. the publisher alone */
	t0 = bench_now_ns();
	if (!bench_publish_calls(&L->pub, &run, n, 2 * n, o->orgs, 0, t0, 0, NULL, 1) ||
	    !bench_pub_complete(&L->pub))
		return 1;
	line("limit-publish", 2 * n, (double)(bench_now_ns() - t0) / 1e9,
	     "first publish to last ack, no consumer running");

	/* 3. the loop alone, on what was just published */
	w0 = bench_wall_us();
	if (!loop_start(L))
		return 1;
	last = wait_rows(L, 4 * n);
	if (last < 0)
		return 1;
	line("limit-consume", 2 * n, (double)(last - w0) / 1e6,
	     "loop start to last commit, all published before");
	loop_stop(L);
	return 0;
}

int bench_limit_main(int argc, char **argv)
{
	bench_opts o = {.orgs = 1000, .events = 20000, .sample = 1, .pending = 4096,
			.conns = 1};
	if (!bench_opts_parse(&o, argc, argv, true, usage_text))
		return 2;
	vox_log_setup("vox-bench", "warn", NULL);
	if (sodium_init() < 0)
		return 1;
	limit L;
	memset(&L, 0, sizeof(L));
	L.o = &o;
	int rc = run_limit(&L);
	loop_stop(&L);
	if (L.nc) {
		/* the consumer and the table go; the streams are the operator's */
		jsCtx *js = NULL;
		if (natsConnection_JetStream(&js, L.nc, NULL) == NATS_OK) {
			jsErrCode jerr = 0;
			natsStatus s = js_DeleteConsumer(js, VOX_STREAM_EVENTS,
							 LIMIT_DURABLE, NULL, &jerr);
			VOX_UNUSED(s);
		}
		jsCtx_Destroy(js);
	}
	if (L.db) {
		bool d = bench_pg_run(L.db, "DROP TABLE IF EXISTS bench_limit", "drop");
		VOX_UNUSED(d);
	}
	PQfinish(L.db);
	bench_pub_close(&L.pub);
	if (L.nc)
		natsConnection_Destroy(L.nc);
	natsStatus cs = nats_CloseAndWait(2000);
	VOX_UNUSED(cs);
	return rc;
}
