/*
 * options.c - the options of the pipeline scenarios of vox-bench (e2e,
 * limit, baseline, preload, reset), parsed in one place (bench.h).
 */
#include "bench/bench.h"

bool bench_opts_parse(bench_opts *o, int argc, char **argv, bool need_url,
		      const char *usage_text)
{
	o->scenario = argv[1];
	if (!o->url)
		o->url = getenv("VOX_NATS_URL");
	if (!o->dsn)
		o->dsn = getenv("VOX_PG_DSN");
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = v != NULL;
		if (!ok)
			;
		else if (strcmp(a, "--url") == 0)
			o->url = v;
		else if (strcmp(a, "--dsn") == 0)
			o->dsn = v;
		else if (strcmp(a, "--name") == 0)
			o->name = v;
		else if (strcmp(a, "--orgs") == 0)
			ok = bench_parse_long(&o->orgs, v, 1, BENCH_MAX_ORGS);
		else if (strcmp(a, "--events") == 0)
			ok = bench_parse_long(&o->events, v, 1, BENCH_MAX_EVENTS);
		else if (strcmp(a, "--rate") == 0)
			ok = bench_parse_long(&o->rate, v, 0, 1000000);
		else if (strcmp(a, "--sample") == 0)
			ok = bench_parse_long(&o->sample, v, 1, 1000000);
		else if (strcmp(a, "--pending") == 0)
			ok = bench_parse_long(&o->pending, v, 1, 1000000);
		else if (strcmp(a, "--conns") == 0)
			ok = bench_parse_long(&o->conns, v, 1, 256);
		else {
			fprintf(stderr, "vox-bench: unknown option %s\n%s", a, usage_text);
			return false;
		}
		if (!ok) {
			fprintf(stderr, "vox-bench: bad or missing value for %s\n%s", a,
				usage_text);
			return false;
		}
		i++;
	}
	if (!o->dsn || !*o->dsn || (need_url && (!o->url || !*o->url))) {
		fprintf(stderr, "vox-bench: %s needs --dsn%s\n%s", o->scenario,
			need_url ? " and --url" : "", usage_text);
		return false;
	}
	if (!o->name || !*o->name)
		o->name = o->scenario;
	for (const char *p = o->name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_')) {
			fprintf(stderr, "vox-bench: --name: [a-z0-9_-] only\n");
			return false;
		}
	}
	return true;
}
