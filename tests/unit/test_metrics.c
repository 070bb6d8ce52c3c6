/*
 * Unit: the counters, histograms and the Prometheus text format
 * (src/core/metrics.c): label values escaped, buckets cumulative with
 * +Inf equal to _count, integer units scaled when rendered, a counter set
 * that stops growing at its limit and counts the rest under "other", and
 * concurrent updates that lose nothing.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>

#include "core/metrics.h"

static void test_label_values_are_escaped(void **state)
{
	(void)state;
	vox_buf l, out;
	vox_buf_init(&l);
	vox_buf_init(&out);
	vox_prom_label(&l, "reason", "a \"quoted\"\nline \\ end");
	vox_prom_label(&l, "input", "x");
	assert_string_equal(l.data,
			    "reason=\"a \\\"quoted\\\"\\nline \\\\ end\",input=\"x\"");
	vox_prom_sample(&out, "vox_t_total", l.data, 7);
	vox_prom_sample(&out, "vox_u", "", 0);
	vox_prom_sample_f(&out, "vox_v", NULL, 0.25);
	assert_string_equal(out.data,
			    "vox_t_total{reason=\"a \\\"quoted\\\"\\nline \\\\ end\","
			    "input=\"x\"} 7\nvox_u 0\nvox_v 0.25\n");
	vox_buf_release(&l);
	vox_buf_release(&out);
}

static void test_histogram_is_cumulative_and_scaled(void **state)
{
	(void)state;
	static const uint64_t bounds[] = {1000, 10000};
	vox_hist h;
	vox_hist_init(&h, bounds, 2, 1e-6);
	vox_hist_observe(&h, 500);    /* le 0.001 */
	vox_hist_observe(&h, 1000);   /* le 0.001: the bound is inclusive */
	vox_hist_observe(&h, 1001);   /* le 0.01 */
	vox_hist_observe(&h, 250000); /* +Inf */
	vox_buf out;
	vox_buf_init(&out);
	vox_prom_hist(&out, "vox_x_seconds", "endpoint=\"e\"", &h);
	assert_string_equal(out.data,
			    "vox_x_seconds_bucket{endpoint=\"e\",le=\"0.001\"} 2\n"
			    "vox_x_seconds_bucket{endpoint=\"e\",le=\"0.01\"} 3\n"
			    "vox_x_seconds_bucket{endpoint=\"e\",le=\"+Inf\"} 4\n"
			    "vox_x_seconds_sum{endpoint=\"e\"} 0.252501\n"
			    "vox_x_seconds_count{endpoint=\"e\"} 4\n");
	vox_buf_reset(&out);
	vox_hist_init(&h, bounds, 2, 1);
	vox_prom_hist(&out, "vox_n", "", &h);
	assert_string_equal(out.data, "vox_n_bucket{le=\"1000\"} 0\n"
				      "vox_n_bucket{le=\"10000\"} 0\n"
				      "vox_n_bucket{le=\"+Inf\"} 0\n"
				      "vox_n_sum 0\nvox_n_count 0\n");
	vox_buf_release(&out);
}

static void test_counter_set_is_bounded(void **state)
{
	(void)state;
	vox_counter_set s;
	vox_counter_set_init(&s);
	vox_buf out;
	vox_buf_init(&out);
	vox_prom_counter_set(&out, "vox_d_total", "", "reason", &s);
	assert_int_equal(out.len, 0); /* nothing counted: no series */
	vox_counter_set_add(&s, "unknown_org", 2);
	vox_counter_set_add(&s, "unknown_org", 1);
	vox_prom_counter_set(&out, "vox_d_total", "a=\"b\"", "reason", &s);
	assert_string_equal(out.data, "vox_d_total{a=\"b\",reason=\"unknown_org\"} 3\n");
	char v[32];
	for (int i = 0; i < VOX_COUNTER_SET_MAX + 10; i++) {
		snprintf(v, sizeof(v), "r%d", i);
		vox_counter_set_add(&s, v, 1);
	}
	vox_buf_reset(&out);
	vox_prom_counter_set(&out, "vox_d_total", "", "reason", &s);
	/* unknown_org and r0..r30 have their own lines, the other 11 share one */
	int lines = 0;
	for (size_t i = 0; i < out.len; i++)
		lines += out.data[i] == '\n';
	assert_int_equal(lines, VOX_COUNTER_SET_MAX + 1);
	assert_non_null(strstr(out.data, "vox_d_total{reason=\"r30\"} 1\n"));
	assert_null(strstr(out.data, "reason=\"r31\""));
	assert_non_null(strstr(out.data, "vox_d_total{reason=\"other\"} 11\n"));
	/* a value that is known keeps counting under its own name */
	vox_counter_set_add(&s, "r5", 4);
	vox_buf_reset(&out);
	vox_prom_counter_set(&out, "vox_d_total", "", "reason", &s);
	assert_non_null(strstr(out.data, "vox_d_total{reason=\"r5\"} 5\n"));
	vox_buf_release(&out);
	vox_counter_set_destroy(&s);
}

#define THREADS 4
#define ROUNDS 20000
static const uint64_t some[] = {10, 100};
static vox_hist shared_h;
static vox_counter_set shared_s;

static void *hammer(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < ROUNDS; i++) {
		vox_hist_observe(&shared_h, i % 200);
		vox_counter_set_add(&shared_s, i % 2 ? "odd" : "even", 1);
	}
	return NULL;
}

static void test_concurrent_updates_are_all_counted(void **state)
{
	(void)state;
	vox_hist_init(&shared_h, some, 2, 1);
	vox_counter_set_init(&shared_s);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	vox_buf out;
	vox_buf_init(&out);
	vox_prom_hist(&out, "h", "", &shared_h);
	char want[64];
	snprintf(want, sizeof(want), "h_count %d\n", THREADS * ROUNDS);
	assert_non_null(strstr(out.data, want));
	vox_buf_reset(&out);
	vox_prom_counter_set(&out, "c", "", "k", &shared_s);
	snprintf(want, sizeof(want), "c{k=\"odd\"} %d\n", THREADS * ROUNDS / 2);
	assert_non_null(strstr(out.data, want));
	vox_buf_release(&out);
	vox_counter_set_destroy(&shared_s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_values_are_escaped),
		cmocka_unit_test(test_histogram_is_cumulative_and_scaled),
		cmocka_unit_test(test_counter_set_is_bounded),
		cmocka_unit_test(test_concurrent_updates_are_all_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
