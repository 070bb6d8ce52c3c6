/*
 * bench.h - what the scenarios of vox-bench share: clocks and percentiles,
 * the pipeline options, a run's ids and events, Postgres helpers and the
 * async publisher. Each scenario lives in a file of its own (codec.c,
 * query.c, e2e.c, limit.c, baseline.c, preload.c) behind the dispatch
 * table of main.c, and prints one JSON line per measured run on stdout;
 * progress goes to stderr. Timing lives here, never in a test.
 */
#ifndef VOX_BENCH_H
#define VOX_BENCH_H

#include "core/common.h"

#include <stdatomic.h>

#include <libpq-fe.h>
#include <nats/nats.h>

#include "vox/event.h"

#define NS_PER_S INT64_C(1000000000)

/* ---- clocks and figures (measure.c) -------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/* The wall clock in microseconds since the epoch: comparable with the
 * database's timestamps on the same machine. */
int64_t bench_wall_us(void);

/* Sleep until the monotonic time t (ns); bounded retries on signals. */
void bench_sleep_until(int64_t t);

/* Sort n samples in place, ascending. */
void bench_sort(int64_t *v, size_t n);

/* Nearest rank over sorted v: the smallest sample with at least p of them
 * at or below it; 0 when n is 0. */
int64_t bench_percentile(const int64_t *v, size_t n, double p);

/* A whole decimal number in [lo, hi] (vox_parse_i64), or false. */
bool bench_parse_long(long *out, const char *s, long lo, long hi);

/* s as a JSON string on stdout. */
void bench_print_json_str(const char *s);

/* ---- pipeline options (options.c) ---------------------------------------- */

typedef struct bench_opts {
	const char *scenario; /* argv[1] */
	const char *url;      /* --url, default $VOX_NATS_URL */
	const char *dsn;      /* --dsn, default $VOX_PG_DSN (the owner) */
	const char *name;     /* --name: the scenario name in the JSON line */
	long orgs;            /* --orgs */
	long events;          /* --events: calls (or rows for preload) */
	long rate;            /* --rate: calls/s offered, 0 = at once */
	long sample;          /* --sample: every K-th call's latency */
	long pending;         /* --pending: async publish acks in flight */
	long conns;           /* --conns: workers */
} bench_opts;

#define BENCH_MAX_EVENTS 100000000L
#define BENCH_MAX_ORGS 100000L

/* Parse argv[2..] over the defaults already in *o; on a bad option print
 * usage_text and return false. need_url: the scenario talks to NATS. */
bool bench_opts_parse(bench_opts *o, int argc, char **argv, bool need_url,
		      const char *usage_text);

/* ---- a run's ids and events (workload.c) --------------------------------- */

/* A run's ids: <run>-<tag>-4000-8000-<index>, UUIDs unique per run. */
typedef struct bench_run {
	uint32_t id;
} bench_run;

#define BENCH_TAG_ORG 0x0001u
#define BENCH_TAG_CALL 0x0002u
#define BENCH_RATE_PER_MINUTE 70 /* VOX_RATE_PER_MINUTE's default */
#define BENCH_OPENING_BALANCE 1000000000 /* far from any limit */

void bench_run_init(bench_run *r);
void bench_uuid(char out[37], const bench_run *r, unsigned tag, long i);
/* The index in a run uuid (its last 12 hex digits), or -1. */
long bench_uuid_index(const char *s);
/* Call i's duration: varied, 0..900 s (a few are 0), the same everywhere. */
int bench_call_duration(long i);

typedef struct bench_call {
	char org[37];
	char call[37];
	char sid[64]; /* call.started's event_id */
	char eid[64]; /* call.ended's event_id */
} bench_call;

/* Call i of a run: org i % orgs. */
void bench_call_ids(bench_call *c, const bench_run *r, long i, long orgs);
/* Its call.started, and its call.ended with a realistic transcript; the
 * strings of ev point into c (and static text). */
void bench_build_started(vox_event *ev, const bench_call *c, int64_t now_s);
void bench_build_ended(vox_event *ev, const bench_call *c, long i, int64_t now_s);

/* ---- Postgres (workload.c) ----------------------------------------------- */

PGconn *bench_pg_open(const char *dsn);
/* r succeeded, or the error is printed with what. */
bool bench_pg_ok(PGconn *c, PGresult *r, const char *what);
bool bench_pg_run(PGconn *c, const char *sql, const char *what);
/* End the transaction r's statement ran in: COMMIT when it succeeded, else
 * ROLLBACK. Clears r. */
bool bench_pg_end_tx(PGconn *c, PGresult *r, const char *what);
/* A realistic call transcript (~500 bytes), shared by every scenario. */
extern const char bench_transcript[];
/* The ids of kind tag [from, to) of a run, every step-th, as a uuid[]
 * literal; caller frees. */
char *bench_uuid_array(const bench_run *r, unsigned tag, long from, long to, long step);
/* The org ids of a run as a uuid[] literal; caller frees. */
char *bench_org_array(const bench_run *r, long orgs);
/* Open o->dsn and create the run's orgs (*orgs: their uuid[]): 0, or the
 * exit code (3 when the database cannot be reached). */
int bench_open_with_orgs(const bench_opts *o, const bench_run *r, PGconn **db,
			 char **orgs);
/* orgs organizations with a large opening balance (and its ledger row,
 * as `voxctl org create` writes it), in one transaction. */
bool bench_create_orgs(PGconn *c, const bench_run *r, const char *arr);
/* An integer query's first value, or -1 on error (printed). */
long long bench_pg_int(PGconn *c, const char *sql, int n,
		       const char *const *params);

/* ---- publishing (publish.c) -------------------------------------------- */

typedef struct bench_pub {
	natsConnection *nc;
	jsCtx *js;
	atomic_long failed; /* acks that came back as errors */
	atomic_long resent; /* of those, published again */
} bench_pub;

/* 0, or the exit code: 2 bad options, 3 unreachable. */
int bench_pub_open(bench_pub *p, const char *url, long pending, const char *name);
void bench_pub_close(bench_pub *p);
/* Publish *m (taken), waiting while MaxPending acks are outstanding. */
bool bench_pub_msg(bench_pub *p, natsMsg **m);
bool bench_pub_event(bench_pub *p, const vox_event *ev);
/* Wait (up to a minute) for every ack. */
bool bench_pub_complete(bench_pub *p);

/*
 * Publish calls [from, to) of a run, each a call.started then its
 * call.ended, at rate calls/s from t0 (open loop; 0: at once). When
 * pub_us is not NULL, pub_us[i / sample] gets the publish time (wall us)
 * of every sample-th call.ended (its due time when paced, so a stalled
 * publisher is charged too).
 */
bool bench_publish_calls(bench_pub *p, const bench_run *run, long from,
			 long to, long orgs, long rate, int64_t t0_ns,
			 int64_t w0_us, int64_t *pub_us, long sample);

/* ---- scenarios (one file each) ------------------------------------------- */

int bench_codec_main(int argc, char **argv);
int bench_query_main(int argc, char **argv);
int bench_echo_main(int argc, char **argv);
int bench_e2e_main(int argc, char **argv);
int bench_limit_main(int argc, char **argv);
int bench_baseline_main(int argc, char **argv);
int bench_preload_main(int argc, char **argv);
int bench_reset_main(int argc, char **argv);

#endif
