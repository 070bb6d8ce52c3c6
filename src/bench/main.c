/*
 * vox-bench - measured figures of vox, one JSON object per line per run.
 * Timing lives here, never in a test. Each scenario is a file of its own
 * (bench.h); this file is the table that names them.
 */
#include "bench/bench.h"

#include "core/config.h"
#include "io/log.h"
#include "io/natsconn.h"
#include "io/streams.h"

/* vox-bench reset-streams: delete EVENTS, ALERTS and DLQ (their messages
 * and consumers) and create them again from the VOX_STREAM_* settings,
 * so that each scenario starts on empty streams. */
static const char *env_get(const char *name, void *ctx)
{
	VOX_UNUSED(ctx);
	return getenv(name);
}

static void applied(const char *stream, vox_stream_action action,
		    const vox_stream_diff *diffs, size_t n, void *ctx)
{
	VOX_UNUSED(stream);
	VOX_UNUSED(action);
	VOX_UNUSED(diffs);
	VOX_UNUSED(n);
	VOX_UNUSED(ctx);
}

int bench_reset_main(int argc, char **argv)
{
	const char *url = getenv("VOX_NATS_URL");
	if (argc == 4 && strcmp(argv[2], "--url") == 0)
		url = argv[3];
	else if (argc != 2) {
		fprintf(stderr, "usage: vox-bench reset-streams [--url U]\n");
		return 2;
	}
	if (!url || !*url) {
		fprintf(stderr, "vox-bench: reset-streams needs --url (or VOX_NATS_URL)\n");
		return 2;
	}
	vox_runtime_config cfg;
	vox_buf errors;
	vox_buf_init(&errors);
	vox_status st = vox_streams_config_parse(&cfg, env_get, NULL, &errors);
	if (st != VOX_OK)
		fprintf(stderr, "vox-bench: %s", errors.data);
	vox_buf_release(&errors);
	if (st != VOX_OK)
		return 2;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	char err[256] = "";
	vox_nats_opts no = {.url = url, .name = "vox-bench-reset", .timeout_ms = 5000};
	if (vox_nats_connect(&nc, &no, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "vox-bench: nats: %s\n", err);
		return 3;
	}
	int code = 1;
	if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
		goto out;
	for (size_t i = 0; i < VOX_STREAMS_COUNT; i++) {
		vox_stream_spec spec;
		jsErrCode jerr = 0;
		vox_streams_wanted(&spec, i, &cfg);
		natsStatus s = js_DeleteStream(js, spec.name, NULL, &jerr);
		VOX_UNUSED(s); /* a missing one is what we want */
	}
	st = vox_streams_apply(js, &cfg, false, applied, NULL, err, sizeof(err));
	if (st != VOX_OK) {
		fprintf(stderr, "vox-bench: streams: %s\n", err);
		goto out;
	}
	code = 0;
out:
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsStatus cs = nats_CloseAndWait(2000);
	VOX_UNUSED(cs);
	return code;
}

static const struct scenario {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
} scenarios[] = {
	{"codec", bench_codec_main, "decode and encode cost per message kind"},
	{"query", bench_query_main, "request-reply latency of vox-query (query.wallet)"},
	{"echo", bench_echo_main, "a responder without a database: the NATS round trip"},
	{"e2e-calls", bench_e2e_main, "calls through vox-calls and vox-billing, to the last commit"},
	{"hot-org", bench_e2e_main, "e2e-calls for one organization"},
	{"limit", bench_limit_main, "vox's own consume loop with a trivial handler:"
				    " concurrent, publish-only, consume-only"},
	{"baseline-seed", bench_baseline_main, "the replaced design: one event per"
					       " transaction through JetStream"},
	{"preload", bench_preload_main, "fill calls, charges and ledger with N calls"},
	{"reset-streams", bench_reset_main, "empty EVENTS, ALERTS and DLQ for the next scenario"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vox-bench SCENARIO [options]  (vox-bench SCENARIO --help)\n\n");
	for (size_t i = 0; i < VOX_NELEM(scenarios); i++)
		fprintf(f, "  %-14s %s\n", scenarios[i].name, scenarios[i].summary);
	fprintf(f, "\nOne JSON line per run on stdout; progress on stderr. Exit 0"
		   " ran, 1 failed,\n2 usage, 3 a server is unreachable.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < VOX_NELEM(scenarios); i++)
		if (strcmp(argv[1], scenarios[i].name) == 0)
			return scenarios[i].main(argc, argv);
	usage(stderr);
	return 2;
}
