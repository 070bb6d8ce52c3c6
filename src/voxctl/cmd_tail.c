/*
 * cmd_tail.c - `voxctl tail`: follow alerts, dead letters or events as
 * JSON lines through an ephemeral pull consumer on the stream (ALERTS,
 * DLQ or EVENTS), from new messages on or, with --since-start, from the
 * start of the stream. Every wait is a fetch of at most a second, so
 * SIGINT/SIGTERM, --count and --timeout end it promptly. Also the
 * rendering of a JetStream message as JSON that `voxctl dlq` shares.
 */
#include "voxctl/voxctl.h"

#include <signal.h>
#include <time.h>

#include "core/codec.h"
#include "core/jsack.h"
#include "io/pull.h"
#include "vox/subjects.h"
#include "voxctl/stream.h"

#define FETCH_WAIT_MS 1000
#define FETCH_BATCH 64

/* ---- a message as JSON ---------------------------------------------------- */

static void pack_headers(msgpack_packer *pk, natsMsg *m)
{
	const char **keys = NULL;
	int n = 0;
	if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK || !keys)
		n = 0;
	msgpack_pack_map(pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		const char *v = NULL;
		vox_mp_pack_cstr(pk, keys[i]);
		if (natsMsgHeader_Get(m, keys[i], &v) == NATS_OK && v)
			vox_mp_pack_cstr(pk, v);
		else
			msgpack_pack_nil(pk);
	}
	free((void *)keys);
}

/* Whether data is exactly one msgpack value. */
static bool one_mp_value(const char *data, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	if (len == 0)
		return false;
	msgpack_unpacked_init(&u);
	msgpack_unpack_return r = msgpack_unpack_next(&u, data, len, &off);
	msgpack_unpacked_destroy(&u);
	return r == MSGPACK_UNPACK_SUCCESS && off == len;
}

void voxctl_pack_msg(msgpack_packer *pk, natsMsg *m, const char *subject,
		     uint64_t seq, int64_t time_ns)
{
	const char *data = natsMsg_GetData(m);
	size_t len = (size_t)natsMsg_GetDataLength(m);
	msgpack_pack_map(pk, 3 + (seq ? 1 : 0) + (time_ns ? 1 : 0));
	vox_mp_pack_cstr(pk, "subject");
	vox_mp_pack_cstr(pk, subject ? subject : natsMsg_GetSubject(m));
	if (seq) {
		vox_mp_pack_cstr(pk, "seq");
		msgpack_pack_uint64(pk, seq);
	}
	if (time_ns) {
		vox_time t = {.sec = time_ns / 1000000000LL,
			      .nsec = (int32_t)(time_ns % 1000000000LL),
			      .set = true};
		vox_mp_pack_cstr(pk, "time");
		vox_time_pack(pk, &t);
	}
	vox_mp_pack_cstr(pk, "headers");
	pack_headers(pk, m);
	vox_mp_pack_cstr(pk, "payload");
	if (data && one_mp_value(data, len)) {
		/* the body is one value: append it as it is */
		int w = pk->callback(pk->data, data, len);
		VOX_UNUSED(w);
	} else {
		msgpack_pack_map(pk, 1);
		vox_mp_pack_cstr(pk, "base64");
		msgpack_pack_bin_with_body(pk, data ? data : "", len);
	}
}

void voxctl_msg_json(vox_buf *out, natsMsg *m, const char *subject,
		     uint64_t seq, int64_t time_ns, bool pretty)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	voxctl_pack_msg(&pk, m, subject, seq, time_ns);
	if (!voxctl_mp_to_json(out, sb.data, sb.size, pretty))
		vox_buf_puts(out, "{}"); /* cannot happen: we packed one map */
	msgpack_sbuffer_destroy(&sb);
}

bool voxctl_subject_match(const char *pattern, const char *subject)
{
	const char *p = pattern, *s = subject;
	for (;;) {
		const char *pe = strchr(p, '.'), *se = strchr(s, '.');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		size_t sl = se ? (size_t)(se - s) : strlen(s);
		if (pl == 1 && p[0] == '>' && !pe)
			return sl > 0;
		if (!(pl == 1 && p[0] == '*') && (pl != sl || memcmp(p, s, pl) != 0))
			return false;
		if (!(pl == 1 && p[0] == '*') && sl == 0)
			return false;
		if (!pe || !se)
			return !pe && !se && sl > 0;
		p = pe + 1;
		s = se + 1;
	}
}

/* ---- tail ------------------------------------------------------------------ */

static volatile sig_atomic_t tail_stop;

static void on_signal(int sig)
{
	VOX_UNUSED(sig);
	tail_stop = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The org token of a subject: its last token. */
static bool org_matches(const char *subject, const char *org)
{
	const char *dot = strrchr(subject, '.');
	return dot && strcmp(dot + 1, org) == 0;
}

int voxctl_cmd_tail(int argc, char **argv)
{
	const char *what = NULL, *org_arg = NULL;
	long long count = 0, timeout_s = 0;
	bool since_start = false;
	vox_uuid org = {{0}};

	static const struct option opts[] = {
		{"org", required_argument, NULL, 'o'},
		{"count", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 't'},
		{"since-start", no_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	int c;
	voxctl_getopt_reset();
	while ((c = voxctl_getopt("tail", argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'o':
			org_arg = optarg;
			break;
		case 'c':
			if (!voxctl_int_opt(&count, "tail", "--count", optarg, 1,
					    1000000000LL))
				return EXIT_USAGE;
			break;
		case 't':
			if (!voxctl_int_opt(&timeout_s, "tail", "--timeout", optarg, 1,
					    31536000LL))
				return EXIT_USAGE;
			break;
		case 's':
			since_start = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		what = argv[optind++];
	if (optind < argc) {
		voxctl_usage_err("tail", "one of alert, dlq or events, not '%s'",
				 argv[optind]);
		return EXIT_USAGE;
	}
	if (!what)
		what = "alert";
	if (org_arg && !vox_uuid_parse(&org, org_arg, strlen(org_arg))) {
		voxctl_err("tail: --org must be an organization UUID, not '%s'", org_arg);
		return EXIT_USAGE;
	}

	const char *stream;
	char filter[128];
	bool client_filter = false;
	if (strcmp(what, "alert") == 0 || strcmp(what, "alerts") == 0) {
		stream = VOX_STREAM_ALERTS;
		snprintf(filter, sizeof(filter), "alert.%s", org.s[0] ? "*." : ">");
	} else if (strcmp(what, "dlq") == 0) {
		stream = VOX_STREAM_DLQ;
		snprintf(filter, sizeof(filter), "dlq.%s", org.s[0] ? "*.*." : ">");
	} else if (strcmp(what, "events") == 0) {
		/* three subject families in one stream: the whole stream, and
		 * the org picked here */
		stream = VOX_STREAM_EVENTS;
		snprintf(filter, sizeof(filter), ">");
		client_filter = org.s[0] != '\0';
	} else {
		voxctl_err("tail: what to follow is alert, dlq or events, not '%s'", what);
		return EXIT_USAGE;
	}
	if (org.s[0] && !client_filter)
		snprintf(filter + strlen(filter), sizeof(filter) - strlen(filter),
			 "%s", org.s);

	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int rc = voxctl_jetstream(&nc, &js);
	if (rc != EXIT_OK)
		return rc;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* an ephemeral consumer, pulled with vox's own requests (as the
	 * actors do: libnats 3.4.1's fetch can overrun its array) */
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.DeliverPolicy = since_start ? js_DeliverAll : js_DeliverNew;
	cc.AckPolicy = js_AckExplicit;
	cc.InactiveThreshold = 30LL * 1000000000LL;
	cc.Description = "voxctl tail";
	cc.FilterSubject = strcmp(filter, ">") == 0 ? NULL : filter;
	jsConsumerInfo *ci = NULL;
	vox_pull *pull = NULL;
	char prefix[128];
	char name[128] = "";
	jsErrCode jerr = 0;
	natsStatus s = js_AddConsumer(&ci, js, stream, &cc, NULL, &jerr);
	if (s == NATS_OK && ci && ci->Name)
		snprintf(name, sizeof(name), "%s", ci->Name);
	jsConsumerInfo_Destroy(ci);
	if (s == NATS_OK && !voxctl_inbox_prefix(prefix, sizeof(prefix)))
		s = NATS_INVALID_ARG;
	if (s == NATS_OK)
		s = vox_pull_open(&pull, nc, prefix, stream, name);
	if (s != NATS_OK) {
		if (jerr == JSStreamNotFoundErr)
			voxctl_err("tail: stream %s does not exist: the actors (e.g."
				   " vox-calls) create it at start", stream);
		else
			voxctl_err("tail: cannot follow %s on %s: %s", filter, stream,
				   jerr ? nats_GetLastError(NULL) : natsStatus_GetText(s));
		rc = EXIT_UNREACHABLE;
		goto out;
	}

	long long got = 0;
	int64_t deadline = timeout_s ? now_ms() + timeout_s * 1000 : 0;
	vox_buf line;
	vox_buf_init(&line);
	while (!tail_stop && (count == 0 || got < count) &&
	       (deadline == 0 || now_ms() < deadline)) {
		natsMsgList list = {0};
		int batch = FETCH_BATCH;
		if (count && count - got < batch)
			batch = (int)(count - got);
		s = vox_pull_fetch(pull, &list, (size_t)batch, 0, FETCH_WAIT_MS);
		if (s == NATS_TIMEOUT)
			continue;
		if (s == NATS_CONNECTION_CLOSED || s == NATS_INVALID_SUBSCRIPTION) {
			voxctl_err("tail: lost the connection to NATS: %s",
				   natsStatus_GetText(s));
			rc = EXIT_UNREACHABLE;
			break;
		}
		if (s != NATS_OK) {
			/* a reconnect in progress, or a request that failed: wait
			 * a little, bounded, and ask again */
			struct timespec ts = {0, 200 * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		for (int i = 0; i < list.Count; i++) {
			natsMsg *m = list.Msgs[i];
			vox_js_ack meta;
			uint64_t seq = 0;
			int64_t ts = 0;
			if (vox_js_ack_parse(&meta, natsMsg_GetReply(m))) {
				seq = meta.stream_seq;
				ts = meta.timestamp_ns;
			}
			natsStatus as = vox_pull_settle(nc, m, VOX_ACK, 0);
			VOX_UNUSED(as);
			if ((count && got >= count) ||
			    (client_filter && !org_matches(natsMsg_GetSubject(m), org.s)))
				continue;
			vox_buf_reset(&line);
			voxctl_msg_json(&line, m, NULL, seq, ts, false);
			fwrite(line.data, 1, line.len, stdout);
			fputc('\n', stdout);
			fflush(stdout);
			got++;
		}
		natsMsgList_Destroy(&list);
	}
	vox_buf_release(&line);
	vox_pull_close(pull);
	/* gone at once rather than after its InactiveThreshold */
	natsStatus ds = js_DeleteConsumer(js, stream, name, NULL, NULL);
	VOX_UNUSED(ds);
out:
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rc;
}
