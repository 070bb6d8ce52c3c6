/*
 * util.c - voxctl's shared pieces: errors, the NATS connection,
 * request-reply with ADR-32 errors, and reading input.
 */
#include "voxctl/voxctl.h"

#include <errno.h>
#include <unistd.h>

#include "core/config.h"
#include "io/natsconn.h"

const char *voxctl_server;
bool voxctl_compact;

int voxctl_exit_for(vox_status st)
{
	if (st == VOX_OK)
		return EXIT_OK;
	if (vox_status_is_transient(st))
		return EXIT_UNREACHABLE;
	return EXIT_SERVER;
}

void voxctl_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("voxctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* The VOX_NATS_* settings, --server overriding VOX_NATS_URL. */
static void connect_opts(vox_nats_opts *o)
{
	vox_nats_opts_from_env(o, "voxctl");
	if (voxctl_server)
		o->url = voxctl_server;
	o->timeout_ms = 2000;
}

vox_status voxctl_connect_status(natsConnection **nc, char *err, size_t errlen)
{
	vox_nats_opts o;
	connect_opts(&o);
	return vox_nats_connect(nc, &o, err, errlen);
}

int voxctl_connect(natsConnection **nc)
{
	char err[256] = "";
	vox_status st = voxctl_connect_status(nc, err, sizeof(err));
	if (st == VOX_OK)
		return EXIT_OK;
	vox_nats_opts o;
	connect_opts(&o);
	voxctl_err("cannot reach NATS at %s: %s (set --server or VOX_NATS_URL)",
		   o.url, err);
	return st == VOX_E_CONFIG || st == VOX_E_INVALID ? EXIT_USAGE
							 : EXIT_UNREACHABLE;
}

bool voxctl_inbox_prefix(char *out, size_t outlen)
{
	vox_nats_opts o;
	connect_opts(&o);
	return vox_nats_inbox_prefix(out, outlen, o.user, o.inbox_prefix);
}

bool voxctl_new_inbox(char *out, size_t outlen)
{
	char prefix[128];
	return voxctl_inbox_prefix(prefix, sizeof(prefix)) &&
	       vox_nats_new_inbox(out, outlen, prefix) == NATS_OK;
}

int voxctl_jetstream(natsConnection **nc, jsCtx **js)
{
	int code = voxctl_connect(nc);
	if (code != EXIT_OK)
		return code;
	char err[384];
	/* Anonymous, the likely mistake is the server (Debian's, without
	 * JetStream, on the default port): ask. A NATS user of
	 * deploy/nats/accounts.conf may not (a bridge's can publish its
	 * events and nothing else), and was pointed at a server on purpose. */
	vox_nats_opts o;
	connect_opts(&o);
	bool anonymous = !(o.user && *o.user) && !(o.creds && *o.creds);
	if (anonymous && vox_nats_require_js(*nc, err, sizeof(err)) != VOX_OK) {
		voxctl_err("%s", err);
		natsConnection_Destroy(*nc);
		*nc = NULL;
		return EXIT_UNREACHABLE;
	}
	natsStatus s = natsConnection_JetStream(js, *nc, NULL);
	if (s != NATS_OK) {
		voxctl_err("JetStream: %s", natsStatus_GetText(s));
		natsConnection_Destroy(*nc);
		*nc = NULL;
		return EXIT_UNREACHABLE;
	}
	return EXIT_OK;
}

int voxctl_request(natsConnection *nc, const char *subject, const void *body,
		   size_t len, int64_t timeout_ms, natsMsg **reply, int *code,
		   char *text, size_t textlen)
{
	natsMsg *m = NULL;
	const char *v = NULL;
	*reply = NULL;
	*code = 0;
	if (textlen)
		text[0] = '\0';
	natsStatus s = natsConnection_Request(&m, nc, subject, body, (int)len,
					      timeout_ms);
	if (s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT) {
		voxctl_err("%s: %s", subject,
			   s == NATS_NO_RESPONDERS
				   ? "no service answers this subject (is the actor running?)"
				   : "no answer in time");
		return EXIT_UNREACHABLE;
	}
	if (s != NATS_OK) {
		voxctl_err("%s: %s", subject, natsStatus_GetText(s));
		return EXIT_UNREACHABLE;
	}
	*reply = m;
	if (natsMsgHeader_Get(m, "Nats-Service-Error-Code", &v) == NATS_OK && v) {
		*code = (int)strtol(v, NULL, 10);
		v = NULL;
		if (natsMsgHeader_Get(m, "Nats-Service-Error", &v) == NATS_OK && v)
			snprintf(text, textlen, "%s", v);
		return EXIT_SERVER;
	}
	return EXIT_OK;
}

int voxctl_request_print(natsConnection *nc, const char *subject,
			 const void *body, size_t len, int64_t timeout_ms)
{
	natsMsg *m = NULL;
	int code = 0;
	char text[256];
	int rc = voxctl_request(nc, subject, body, len, timeout_ms, &m, &code, text,
				sizeof(text));
	if (rc == EXIT_SERVER) {
		voxctl_err("%s: %d %s", subject, code, text);
		/* a request refused as invalid is the caller's input */
		rc = code == 400 || code == 413 ? EXIT_USAGE : EXIT_SERVER;
	} else if (rc == EXIT_OK &&
		   !voxctl_print_mp(natsMsg_GetData(m),
				    (size_t)natsMsg_GetDataLength(m))) {
		voxctl_err("%s: the reply is not msgpack", subject);
		rc = EXIT_SERVER;
	}
	natsMsg_Destroy(m);
	return rc;
}

bool voxctl_read_file(vox_buf *out, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[8192];
	size_t n;
	if (!f) {
		voxctl_err("%s: %s", path, strerror(errno));
		return false;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		vox_buf_append(out, chunk, n);
	bool ok = !ferror(f);
	if (!ok)
		voxctl_err("%s: read error", path);
	if (f != stdin)
		fclose(f);
	return ok;
}

vox_json *voxctl_parse_json(const char *what, const char *text, size_t len)
{
	size_t at = 0;
	vox_json *v = vox_json_parse(text, len, &at);
	if (!v)
		voxctl_err("%s: invalid JSON at byte %zu", what, at);
	return v;
}

bool voxctl_int_opt(long long *out, const char *cmd, const char *opt,
		    const char *v, long long lo, long long hi)
{
	int64_t n;
	if (!vox_parse_i64(&n, v, lo, hi)) {
		voxctl_err("%s: %s: '%s' is not an integer from %lld to %lld", cmd,
			   opt, v, lo, hi);
		return false;
	}
	*out = n;
	return true;
}

int voxctl_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
		  const struct option *longopts)
{
	char spec[32];
	/* ':' first (after a '+'): a missing value is told apart from an
	 * unknown option */
	const char *so = shortopts ? shortopts : "";
	bool plus = so[0] == '+';
	snprintf(spec, sizeof(spec), "%s:%s", plus ? "+" : "", so + plus);
	opterr = 0;
	int c = getopt_long(argc, argv, spec, longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	char name[64];
	if (optopt && !(word[0] == '-' && word[1] == '-')) {
		snprintf(name, sizeof(name), "-%c", optopt);
	} else {
		size_t n = strcspn(word, "=");
		snprintf(name, sizeof(name), "%.*s", (int)n, word);
	}
	if (c == ':')
		voxctl_usage_err(cmd, "option '%s' needs a value", name);
	else if (optopt && strchr(word, '=') && word[1] == '-')
		voxctl_usage_err(cmd, "option '%s' takes no value", name);
	else
		voxctl_usage_err(cmd, "unknown option '%s'", name);
	return VOXCTL_OPT_BAD;
}

void voxctl_getopt_reset(void)
{
	optind = 0; /* glibc: start over, forgetting the last scan's state */
}

void voxctl_usage_err(const char *cmd, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* the help of the command, not of its verb: "dlq replay" -> "dlq";
	 * voxctl's own options ("") -> voxctl --help */
	size_t n = strcspn(cmd, " ");
	if (!*cmd)
		fprintf(stderr, "voxctl: %s (see voxctl --help)\n", what);
	else
		fprintf(stderr, "voxctl %s: %s (see voxctl help %.*s)\n", cmd, what,
			(int)n, cmd);
}

bool voxctl_print_json(const char *json, size_t len)
{
	vox_json *j = vox_json_parse(json, len, NULL);
	if (!j)
		return false;
	vox_buf mp;
	vox_buf_init(&mp);
	voxctl_json_to_mp(&mp, j, NULL, NULL);
	bool ok = voxctl_print_mp(mp.data, mp.len);
	vox_buf_release(&mp);
	vox_json_free(j);
	return ok;
}

bool voxctl_progress_on(void)
{
	return isatty(STDERR_FILENO) == 1;
}

void voxctl_progress(const char *what, uint64_t done, uint64_t total)
{
	if (!voxctl_progress_on())
		return;
	if (total == 0) {
		fprintf(stderr, "\r%s %" PRIu64, what, done);
	} else {
		enum { WIDTH = 40 };
		char bar[WIDTH + 1];
		uint64_t fill = done >= total ? WIDTH : done * WIDTH / total;
		for (int i = 0; i < WIDTH; i++)
			bar[i] = (uint64_t)i < fill ? '#' : '-';
		bar[WIDTH] = '\0';
		fprintf(stderr, "\r%s [%s] %3d%% %" PRIu64 "/%" PRIu64, what, bar,
			(int)(done >= total ? 100 : done * 100 / total), done, total);
	}
	fflush(stderr);
}

void voxctl_progress_end(void)
{
	if (voxctl_progress_on())
		fputc('\n', stderr);
}
