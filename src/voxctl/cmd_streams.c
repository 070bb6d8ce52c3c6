/*
 * cmd_streams.c - `voxctl streams apply|status`: the operator's side of the
 * streams EVENTS, ALERTS and DLQ (io/streams.h). The actors never create
 * or change them; they check them at start and wait for a missing one.
 * Both subcommands read the stream settings from the same VOX_STREAM_*,
 * VOX_DLQ_MAX_AGE_H and VOX_DUPLICATE_WINDOW_S variables as the actors, so
 * one environment file serves both. Output: one JSON line per stream.
 */
#include "voxctl/voxctl.h"

#include <time.h>

#include "io/natsconn.h"
#include "io/streams.h"

static const char *env_get(const char *name, void *ctx)
{
	VOX_UNUSED(ctx);
	return getenv(name);
}

static int parse_config(vox_runtime_config *c)
{
	vox_buf errors;
	vox_buf_init(&errors);
	memset(c, 0, sizeof(*c));
	vox_status st = vox_streams_config_parse(c, env_get, NULL, &errors);
	if (st != VOX_OK)
		fprintf(stderr, "voxctl streams: bad configuration:\n%s",
			errors.data ? errors.data : "");
	vox_buf_release(&errors);
	return st == VOX_OK ? EXIT_OK : EXIT_USAGE;
}

static void put_line(vox_buf *b)
{
	vox_buf_putc(b, '\n');
	fwrite(b->data, 1, b->len, stdout);
	fflush(stdout);
	vox_buf_reset(b);
}

static void put_str(vox_buf *b, const char *key, const char *v)
{
	vox_buf_json_str(b, key, strlen(key));
	vox_buf_putc(b, ':');
	vox_buf_json_str(b, v, strlen(v));
}

/* ---- apply ------------------------------------------------------------- */

static void on_applied(const char *stream, vox_stream_action action,
		       const vox_stream_diff *d, size_t n, void *ctx)
{
	VOX_UNUSED(ctx);
	static const char *const names[] = {"created", "updated", "unchanged"};
	vox_buf b;
	vox_buf_init(&b);
	vox_buf_putc(&b, '{');
	put_str(&b, "stream", stream);
	vox_buf_putc(&b, ',');
	put_str(&b, "action", names[action]);
	if (action == VOX_STREAM_UPDATED) {
		vox_buf_puts(&b, ",\"changes\":[");
		for (size_t i = 0; i < n; i++) {
			vox_buf_puts(&b, i ? ",{" : "{");
			put_str(&b, "setting", d[i].setting);
			vox_buf_putc(&b, ',');
			put_str(&b, "from", d[i].found);
			vox_buf_putc(&b, ',');
			put_str(&b, "to", d[i].wanted);
			vox_buf_putc(&b, '}');
		}
		vox_buf_putc(&b, ']');
	}
	vox_buf_putc(&b, '}');
	put_line(&b);
	vox_buf_release(&b);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Apply, retrying for up to wait_s seconds while NATS or JetStream is not
 * there yet (a cluster without a meta leader, a server still starting):
 * what a unit run at boot needs. A refusal by the server is not retried.
 */
static int streams_apply(const vox_runtime_config *c, bool force,
			 long long wait_s)
{
	char err[512] = "";
	int64_t deadline = now_ms() + wait_s * 1000;
	vox_status st = VOX_E_UNAVAILABLE;
	for (int attempt = 0;; attempt++) {
		natsConnection *nc = NULL;
		jsCtx *js = NULL;
		st = voxctl_connect_status(&nc, err, sizeof(err));
		if (st == VOX_OK && natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
			snprintf(err, sizeof(err), "JetStream: %s",
				 nats_GetLastError(NULL));
			st = VOX_E_UNAVAILABLE;
		}
		if (st == VOX_OK)
			st = vox_streams_apply(js, c, force, on_applied, NULL, err,
					       sizeof(err));
		jsCtx_Destroy(js);
		natsConnection_Destroy(nc);
		if (!vox_status_is_transient(st) || now_ms() >= deadline)
			break;
		if (attempt == 0)
			voxctl_err("streams: %s; retrying for up to %lld s", err,
				   wait_s);
		struct timespec ts = {0, 500 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (st == VOX_OK)
		return EXIT_OK;
	voxctl_err("streams: %s", err);
	return st == VOX_E_CONFIG || st == VOX_E_CONFLICT ? EXIT_SERVER
							  : voxctl_exit_for(st);
}

/* ---- status ------------------------------------------------------------- */

static void put_settings(vox_buf *b, const vox_stream_spec *s)
{
	vox_buf_puts(b, "{\"subjects\":[");
	for (size_t i = 0; i < s->nsubjects; i++) {
		if (i)
			vox_buf_putc(b, ',');
		vox_buf_json_str(b, s->subjects[i], strlen(s->subjects[i]));
	}
	vox_buf_puts(b, "],");
	put_str(b, "storage", s->storage == VOX_STREAM_MEMORY ? "memory" : "file");
	vox_buf_putc(b, ',');
	put_str(b, "retention",
		s->retention == VOX_RETAIN_INTEREST    ? "interest"
		: s->retention == VOX_RETAIN_WORKQUEUE ? "workqueue"
						       : "limits");
	/* JetStream's own conventions: -1 for no limit, 0 s for no max age */
	vox_buf_printf(b,
		       ",\"replicas\":%" PRId64 ",\"max_age_s\":%" PRId64
		       ",\"max_bytes\":%" PRId64 ",\"max_msgs\":%" PRId64
		       ",\"max_msgs_per_subject\":%" PRId64
		       ",\"max_msg_size\":%" PRId64 ",",
		       s->replicas > 0 ? s->replicas : 1,
		       s->max_age_ns > 0 ? s->max_age_ns / 1000000000 : 0,
		       s->max_bytes > 0 ? s->max_bytes : -1,
		       s->max_msgs > 0 ? s->max_msgs : -1,
		       s->max_msgs_per_subject > 0 ? s->max_msgs_per_subject : -1,
		       s->max_msg_size > 0 ? s->max_msg_size : -1);
	put_str(b, "discard", s->discard_new ? "new" : "old");
	vox_buf_printf(b,
		       ",\"duplicate_window_s\":%" PRId64
		       ",\"sealed\":%s,\"no_ack\":%s}",
		       s->duplicates_ns / 1000000000, s->sealed ? "true" : "false",
		       s->no_ack ? "true" : "false");
}

static int streams_status(const vox_runtime_config *c)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	vox_buf b;
	int code = voxctl_jetstream(&nc, &js);
	if (code != EXIT_OK)
		return code;
	vox_buf_init(&b);
	for (size_t i = 0; i < VOX_STREAMS_COUNT && code != EXIT_UNREACHABLE; i++) {
		vox_stream_spec want, found;
		vox_stream_diff d[VOX_STREAM_SETTINGS];
		jsStreamInfo *si = NULL;
		jsErrCode jerr = 0;
		vox_streams_wanted(&want, i, c);
		natsStatus s = js_GetStreamInfo(&si, js, want.name, NULL, &jerr);
		vox_buf_putc(&b, '{');
		put_str(&b, "stream", want.name);
		if (s != NATS_OK && (jerr == JSStreamNotFoundErr || s == NATS_NOT_FOUND)) {
			vox_buf_puts(&b, ",\"exists\":false,\"matches\":false,"
					 "\"drops_data\":false,\"wanted\":");
			put_settings(&b, &want);
			vox_buf_puts(&b, ",\"fix\":\"voxctl streams apply\"}");
			put_line(&b);
			code = EXIT_SERVER;
		} else if (s != NATS_OK) {
			voxctl_err("streams: %s: %s", want.name,
				   nats_GetLastError(NULL));
			vox_buf_reset(&b);
			code = EXIT_UNREACHABLE;
		} else {
			vox_streams_from_js(&found, si->Config);
			size_t n = vox_stream_compare(d, &found, &want);
			bool drops = vox_stream_diffs_drop(d, n);
			vox_buf_printf(&b,
				       ",\"exists\":true,\"matches\":%s,"
				       "\"drops_data\":%s,\"messages\":%" PRIu64
				       ",\"bytes\":%" PRIu64 ",\"settings\":",
				       n == 0 ? "true" : "false",
				       drops ? "true" : "false", si->State.Msgs,
				       si->State.Bytes);
			put_settings(&b, &found);
			vox_buf_puts(&b, ",\"differences\":[");
			for (size_t k = 0; k < n; k++) {
				vox_buf_puts(&b, k ? ",{" : "{");
				put_str(&b, "setting", d[k].setting);
				vox_buf_putc(&b, ',');
				put_str(&b, "found", d[k].found);
				vox_buf_putc(&b, ',');
				put_str(&b, "wanted", d[k].wanted);
				vox_buf_putc(&b, ',');
				put_str(&b, "severity",
					vox_stream_severity_name(d[k].severity));
				vox_buf_putc(&b, ',');
				put_str(&b, "why", d[k].why);
				vox_buf_putc(&b, '}');
			}
			vox_buf_puts(&b, "]}");
			put_line(&b);
			if (drops)
				code = EXIT_SERVER;
		}
		jsStreamInfo_Destroy(si);
	}
	vox_buf_release(&b);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return code;
}

int voxctl_cmd_streams(int argc, char **argv)
{
	vox_runtime_config c;
	bool force = false;
	long long wait_s = 0;
	if (argc < 2 || (strcmp(argv[1], "apply") != 0 &&
			 strcmp(argv[1], "status") != 0)) {
		fprintf(stderr, "usage: voxctl streams apply [--force] [--wait SECONDS]"
				" | status\n");
		return EXIT_USAGE;
	}
	bool apply = strcmp(argv[1], "apply") == 0;
	static const struct option apply_opts[] = {
		{"force", no_argument, NULL, 'f'},
		{"wait", required_argument, NULL, 'w'},
		{NULL, 0, NULL, 0},
	};
	static const struct option no_opts[] = {{NULL, 0, NULL, 0}};
	const char *cmd = apply ? "streams apply" : "streams status";
	int o;
	/* argv[1] is the verb */
	voxctl_getopt_reset();
	while ((o = voxctl_getopt(cmd, argc - 1, argv + 1, "",
				  apply ? apply_opts : no_opts)) != -1) {
		if (o == 'f') {
			force = true;
		} else if (o == 'w') {
			if (!voxctl_int_opt(&wait_s, cmd, "--wait", optarg, 0, 86400))
				return EXIT_USAGE;
		} else {
			return EXIT_USAGE;
		}
	}
	if (optind < argc - 1) {
		voxctl_usage_err(cmd, "unexpected argument '%s'", argv[1 + optind]);
		return EXIT_USAGE;
	}
	int code = parse_config(&c);
	if (code != EXIT_OK)
		return code;
	return apply ? streams_apply(&c, force, wait_s) : streams_status(&c);
}
