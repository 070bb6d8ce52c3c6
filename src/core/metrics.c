/*
 * metrics.c - lock-free counters, histograms and the Prometheus text
 * format (see metrics.h).
 */
#include "core/metrics.h"

#include "core/common.h"

#include <inttypes.h>
#include <string.h>

const uint64_t vox_hist_latency_us[] = {
	1000,   2500,   5000,    10000,   25000,   50000,
	100000, 250000, 500000,  1000000, 2500000, 10000000,
};
const size_t vox_hist_latency_n = VOX_NELEM(vox_hist_latency_us);

void vox_hist_init(vox_hist *h, const uint64_t *bounds, size_t nbounds,
		   double scale)
{
	if (nbounds > VOX_HIST_MAX_BUCKETS - 1)
		nbounds = VOX_HIST_MAX_BUCKETS - 1;
	h->bounds = bounds;
	h->nbounds = nbounds;
	h->scale = scale;
	for (size_t i = 0; i < VOX_HIST_MAX_BUCKETS; i++)
		atomic_init(&h->counts[i], 0);
	atomic_init(&h->sum, 0);
}

void vox_hist_observe(vox_hist *h, uint64_t v)
{
	size_t i = 0;
	while (i < h->nbounds && v > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void vox_counter_set_init(vox_counter_set *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	snprintf(s->e[VOX_COUNTER_SET_MAX].value,
		 sizeof(s->e[VOX_COUNTER_SET_MAX].value), "other");
}

void vox_counter_set_destroy(vox_counter_set *s)
{
	pthread_mutex_destroy(&s->lock);
}

void vox_counter_set_add(vox_counter_set *s, const char *value, uint64_t n)
{
	pthread_mutex_lock(&s->lock);
	size_t i = 0;
	for (; i < s->n; i++)
		if (strncmp(s->e[i].value, value, sizeof(s->e[i].value) - 1) == 0)
			break;
	if (i == s->n) {
		if (s->n < VOX_COUNTER_SET_MAX) {
			snprintf(s->e[i].value, sizeof(s->e[i].value), "%s", value);
			s->n++;
		} else {
			i = VOX_COUNTER_SET_MAX;
		}
	}
	s->e[i].count += n;
	pthread_mutex_unlock(&s->lock);
}

void vox_prom_family(vox_buf *out, const char *name, const char *type,
		     const char *help)
{
	vox_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		       type);
}

static void braces(vox_buf *out, const char *labels)
{
	if (labels && *labels)
		vox_buf_printf(out, "{%s}", labels);
}

void vox_prom_sample(vox_buf *out, const char *name, const char *labels,
		     uint64_t value)
{
	vox_buf_printf(out, "%s", name);
	braces(out, labels);
	vox_buf_printf(out, " %" PRIu64 "\n", value);
}

void vox_prom_sample_f(vox_buf *out, const char *name, const char *labels,
		       double value)
{
	vox_buf_printf(out, "%s", name);
	braces(out, labels);
	vox_buf_printf(out, " %.12g\n", value);
}

void vox_prom_label(vox_buf *labels, const char *key, const char *value)
{
	if (labels->len)
		vox_buf_putc(labels, ',');
	vox_buf_printf(labels, "%s=\"", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			vox_buf_append(labels, "\\\\", 2);
		else if (*p == '"')
			vox_buf_append(labels, "\\\"", 2);
		else if (*p == '\n')
			vox_buf_append(labels, "\\n", 2);
		else
			vox_buf_putc(labels, *p);
	}
	vox_buf_putc(labels, '"');
}

void vox_prom_hist(vox_buf *out, const char *name, const char *labels,
		   const vox_hist *h)
{
	uint64_t cum = 0;
	for (size_t i = 0; i <= h->nbounds; i++) {
		cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
		vox_buf_printf(out, "%s_bucket{", name);
		if (labels && *labels)
			vox_buf_printf(out, "%s,", labels);
		if (i < h->nbounds)
			vox_buf_printf(out, "le=\"%.12g\"} %" PRIu64 "\n",
				       (double)h->bounds[i] * h->scale, cum);
		else
			vox_buf_printf(out, "le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	char n[128];
	snprintf(n, sizeof(n), "%s_sum", name);
	vox_prom_sample_f(out, n, labels,
			  (double)atomic_load_explicit(&h->sum,
						       memory_order_relaxed) *
				  h->scale);
	snprintf(n, sizeof(n), "%s_count", name);
	vox_prom_sample(out, n, labels, cum);
}

void vox_prom_counter_set(vox_buf *out, const char *name, const char *labels,
			  const char *key, vox_counter_set *s)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i <= VOX_COUNTER_SET_MAX; i++) {
		if (i >= s->n && i < VOX_COUNTER_SET_MAX)
			continue;
		if (i == VOX_COUNTER_SET_MAX && s->e[i].count == 0)
			break;
		vox_buf l;
		vox_buf_init(&l);
		if (labels && *labels)
			vox_buf_printf(&l, "%s", labels);
		vox_prom_label(&l, key, s->e[i].value);
		vox_prom_sample(out, name, l.data, s->e[i].count);
		vox_buf_release(&l);
	}
	pthread_mutex_unlock(&s->lock);
}
