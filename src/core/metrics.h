/*
 * metrics.h - counters and histograms that threads update without a lock,
 * and their rendering in the Prometheus text exposition format (0.0.4).
 *
 * Values are integers in the metric's own unit (messages, microseconds);
 * a histogram's scale turns them into the unit it is exposed in (seconds),
 * so no thread ever adds doubles. Label values are escaped as the format
 * wants (backslash, double quote, newline); names are the caller's
 * constants.
 */
#ifndef VOX_CORE_METRICS_H
#define VOX_CORE_METRICS_H

#include "core/buf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define VOX_HIST_MAX_BUCKETS 16

/* A histogram: upper bounds ascending, in the unit observed; the bucket
 * past the last bound is +Inf. counts are per bucket, cumulated when
 * rendered. */
typedef struct vox_hist {
	const uint64_t *bounds;
	size_t nbounds; /* at most VOX_HIST_MAX_BUCKETS - 1 */
	double scale;   /* rendered value = observed x scale */
	atomic_uint_fast64_t counts[VOX_HIST_MAX_BUCKETS];
	atomic_uint_fast64_t sum;
} vox_hist;

void vox_hist_init(vox_hist *h, const uint64_t *bounds, size_t nbounds,
		   double scale);
void vox_hist_observe(vox_hist *h, uint64_t v);

/* Microsecond bounds for latencies, rendered in seconds (1 ms .. 10 s). */
extern const uint64_t vox_hist_latency_us[];
extern const size_t vox_hist_latency_n;

/*
 * Counters by one label whose values are not known in advance (a dead
 * letter's reason, a SQLSTATE class): the first VOX_COUNTER_SET_MAX
 * distinct values get their own series, later ones count under "other",
 * so a flood of odd values cannot grow a scrape without bound.
 */
#define VOX_COUNTER_SET_MAX 32
typedef struct vox_counter_set {
	pthread_mutex_t lock;
	size_t n;
	struct {
		char value[48];
		uint64_t count;
	} e[VOX_COUNTER_SET_MAX + 1]; /* the last is "other" */
} vox_counter_set;

void vox_counter_set_init(vox_counter_set *s);
void vox_counter_set_destroy(vox_counter_set *s);
void vox_counter_set_add(vox_counter_set *s, const char *value, uint64_t n);

/* ---- rendering -------------------------------------------------------- */

/* "# HELP name help\n# TYPE name type\n" */
void vox_prom_family(vox_buf *out, const char *name, const char *type,
		     const char *help);
/* name{labels} value: labels is "" or k="v" pairs from vox_prom_label. */
void vox_prom_sample(vox_buf *out, const char *name, const char *labels,
		     uint64_t value);
void vox_prom_sample_f(vox_buf *out, const char *name, const char *labels,
		       double value);
/* Appends k="v" (with a comma before it when out holds a pair already)
 * to a label string, v escaped. */
void vox_prom_label(vox_buf *labels, const char *key, const char *value);
/* name_bucket{labels,le=...}, name_sum, name_count of one histogram. */
void vox_prom_hist(vox_buf *out, const char *name, const char *labels,
		   const vox_hist *h);
/* One family of a counter set: name{labels,key="value"} for each value. */
void vox_prom_counter_set(vox_buf *out, const char *name, const char *labels,
			  const char *key, vox_counter_set *s);

#endif
