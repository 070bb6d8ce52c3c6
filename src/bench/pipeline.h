/*
 * pipeline.h - the pipeline scenarios of vox-bench: e2e-calls (and
 * hot-org), limit and baseline-seed (pipeline.c), and the measuring
 * helpers every scenario shares (main.c).
 */
#ifndef VOX_BENCH_PIPELINE_H
#define VOX_BENCH_PIPELINE_H

#include "core/common.h"

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/* Sort n samples in place, ascending. */
void bench_sort(int64_t *v, size_t n);

/* Nearest rank over sorted v: the smallest sample with at least p of them
 * at or below it; 0 when n is 0. */
int64_t bench_percentile(const int64_t *v, size_t n, double p);

/* A whole decimal number in [lo, hi] (vox_parse_i64), or false. */
bool bench_parse_long(const char *s, long lo, long hi, long *out);

/* argv[1] is the scenario ("e2e-calls", "hot-org", "limit",
 * "baseline-seed"). One JSON line on stdout; exit 0 when it ran, 1 when it
 * failed, 2 on usage errors, 3 when a server is unreachable. */
int bench_pipeline_main(int argc, char **argv);

/* true when name is one of the scenarios above */
int bench_pipeline_is(const char *name);

#endif
