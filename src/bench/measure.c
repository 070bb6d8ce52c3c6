/*
 * measure.c - clocks, percentiles and number parsing for every scenario of
 * vox-bench (bench.h).
 */
#include "bench/bench.h"

#include <time.h>

#include "core/config.h"

int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

int64_t bench_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void bench_sleep_until(int64_t t)
{
	/* bounded: a signal could cut a sleep short, nothing else */
	for (int tries = 0; tries < 8; tries++) {
		if (bench_now_ns() >= t)
			return;
		struct timespec ts = {(time_t)(t / NS_PER_S), (long)(t % NS_PER_S)};
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (rc != 0 && rc != EINTR)
			return;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

void bench_sort(int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
}

int64_t bench_percentile(const int64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	double x = p * (double)n;
	size_t rank = (size_t)x;
	if ((double)rank < x)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

bool bench_parse_long(long *out, const char *s, long lo, long hi)
{
	int64_t v;
	if (!vox_parse_i64(&v, s, lo, hi))
		return false;
	*out = (long)v;
	return true;
}

void bench_print_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}
