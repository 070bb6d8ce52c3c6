/*
 * pipeline.h - the pipeline scenarios of vox-bench (issue #10): e2e-calls
 * (and hot-org), limit and baseline-seed. See pipeline.c.
 */
#ifndef VOX_BENCH_PIPELINE_H
#define VOX_BENCH_PIPELINE_H

/* argv[1] is the scenario ("e2e-calls", "hot-org", "limit",
 * "baseline-seed"). One JSON line on stdout; exit 0 when it ran, 1 when it
 * failed, 2 on usage errors, 3 when a server is unreachable. */
int bench_pipeline_main(int argc, char **argv);

/* true when name is one of the scenarios above */
int bench_pipeline_is(const char *name);

#endif
