/*
 * cmd_services.c - `voxctl services [ls|info|stats|ping] [name]`: what
 * `nats micro` shows, from the ADR-32 discovery subjects $SRV.PING|INFO|
 * STATS (subjects/services.md). One request goes out with a reply inbox;
 * every instance that hears it answers, so replies are collected until
 * --wait milliseconds pass. `ls` prints a table built from STATS; the other
 * verbs print each reply as JSON, one per line (pretty on a terminal).
 */
#include "voxctl/voxctl.h"

#define DEFAULT_WAIT_MS 500
#define MAX_REPLIES 1000

typedef struct reply {
	vox_json *doc;
	const char *name, *id; /* inside doc */
	char *text;            /* the reply as received */
	size_t len;
} reply;

static const char *str_member(const vox_json *o, const char *key)
{
	const vox_json *v = vox_json_get(o, key);
	const char *s = vox_json_type_of(v) == VOX_JSON_STRING ? vox_json_str(v) : NULL;
	return s ? s : "";
}

static int cmp_reply(const void *a, const void *b)
{
	const reply *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->id, y->id);
}

/* Send $SRV.<verb>[.<name>] and collect the replies (sorted by name and
 * id) until wait_ms pass. EXIT_OK, or EXIT_UNREACHABLE (printed). */
static int collect(const char *verb, const char *name, long long wait_ms,
		   reply **out, size_t *nout)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	char inbox[160];
	char subject[160];
	reply *r = NULL;
	size_t n = 0;
	int rc = voxctl_connect(&nc);
	if (rc != EXIT_OK)
		return rc;
	if (name)
		snprintf(subject, sizeof(subject), "$SRV.%s.%s", verb, name);
	else
		snprintf(subject, sizeof(subject), "$SRV.%s", verb);
	/* under this user's prefix: the only inbox the server lets it read */
	natsStatus s = voxctl_new_inbox(inbox, sizeof(inbox)) ? NATS_OK
							      : NATS_INVALID_ARG;
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&sub, nc, inbox);
	if (s == NATS_OK)
		s = natsConnection_PublishRequest(nc, subject, inbox, "", 0);
	if (s == NATS_OK)
		s = natsConnection_Flush(nc);
	if (s != NATS_OK) {
		voxctl_err("%s: %s", subject, natsStatus_GetText(s));
		rc = EXIT_UNREACHABLE;
		goto out;
	}
	int64_t deadline = nats_Now() + wait_ms;
	while (n < MAX_REPLIES) {
		int64_t left = deadline - nats_Now();
		natsMsg *m = NULL;
		if (left <= 0)
			break;
		s = natsSubscription_NextMsg(&m, sub, left);
		/* no subscriber at all: the server says so at once */
		if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS)
			break;
		if (s != NATS_OK) {
			voxctl_err("%s: %s", subject, natsStatus_GetText(s));
			rc = EXIT_UNREACHABLE;
			break;
		}
		const char *data = natsMsg_GetData(m);
		size_t len = (size_t)natsMsg_GetDataLength(m);
		size_t at = 0;
		vox_json *doc = vox_json_parse(data ? data : "", len, &at);
		if (!doc || vox_json_type_of(doc) != VOX_JSON_OBJECT) {
			/* not an ADR-32 service: say so and go on */
			voxctl_err("%s: a reply that is not a JSON object was ignored",
				   subject);
			vox_json_free(doc);
			natsMsg_Destroy(m);
			continue;
		}
		r = vox_realloc(r, (n + 1) * sizeof(*r));
		r[n].doc = doc;
		r[n].name = str_member(doc, "name");
		r[n].id = str_member(doc, "id");
		r[n].text = vox_strndup(data ? data : "", len);
		r[n].len = len;
		n++;
		natsMsg_Destroy(m);
	}
	if (rc == EXIT_OK && n == 0) {
		voxctl_err("%s: no service answered in %lld ms (are the actors running?"
			   " try --wait)", subject, wait_ms);
		rc = EXIT_UNREACHABLE;
	}
	if (n)
		qsort(r, n, sizeof(*r), cmp_reply);
out:
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
	*out = r;
	*nout = n;
	return rc;
}

static void free_replies(reply *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		vox_json_free(r[i].doc);
		free(r[i].text);
	}
	free(r);
}

/* Nanoseconds in a readable unit. */
static void human_ns(double ns, char *s, size_t n)
{
	if (ns < 1e3)
		snprintf(s, n, "%.0fns", ns);
	else if (ns < 1e6)
		snprintf(s, n, "%.1fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(s, n, "%.1fms", ns / 1e6);
	else
		snprintf(s, n, "%.2fs", ns / 1e9);
}

static long long int_member(const vox_json *o, const char *key)
{
	const vox_json *v = vox_json_get(o, key);
	return vox_json_type_of(v) == VOX_JSON_INT ? vox_json_int(v) : 0;
}

/* The table of `ls`, from STATS replies. */
/* One instance's line of `services ls`: its endpoints summed. */
typedef struct ls_row {
	long long reqs, errs, ptime_ns;
	const char *lag; /* consume.lag, NULL for a request-only actor */
} ls_row;

static ls_row ls_row_of(const reply *r)
{
	ls_row row = {0};
	const vox_json *eps = vox_json_get(r->doc, "endpoints");
	for (size_t e = 0; e < vox_json_len(eps); e++) {
		const vox_json *ep = vox_json_at(eps, e);
		row.reqs += int_member(ep, "num_requests");
		row.errs += int_member(ep, "num_errors");
		row.ptime_ns += int_member(ep, "processing_time");
	}
	const vox_json *lag = vox_json_get(vox_json_get(r->doc, "metadata"),
					   "consume.lag");
	row.lag = vox_json_type_of(lag) == VOX_JSON_STRING ? vox_json_str(lag) : NULL;
	return row;
}

/* services ls --text: a table for people. */
static void print_table(const reply *r, size_t n)
{
	printf("%-16s %-22s %-10s %10s %8s %10s %10s\n", "NAME", "ID", "VERSION",
	       "REQUESTS", "ERRORS", "AVG TIME", "LAG");
	for (size_t i = 0; i < n; i++) {
		ls_row row = ls_row_of(&r[i]);
		char avg[32] = "-";
		if (row.reqs > 0)
			human_ns((double)row.ptime_ns / (double)row.reqs, avg, sizeof(avg));
		printf("%-16s %-22s %-10s %10lld %8lld %10s %10s\n", r[i].name,
		       r[i].id, str_member(r[i].doc, "version"), row.reqs, row.errs,
		       avg, row.lag ? row.lag : "-");
	}
	fflush(stdout);
}

/* services ls: the same as one JSON array, lag null where there is none. */
static void print_ls_json(const reply *r, size_t n)
{
	vox_buf j;
	vox_buf_init(&j);
	vox_buf_putc(&j, '[');
	for (size_t i = 0; i < n; i++) {
		ls_row row = ls_row_of(&r[i]);
		const char *version = str_member(r[i].doc, "version");
		if (i)
			vox_buf_putc(&j, ',');
		vox_buf_puts(&j, "{\"name\":");
		vox_buf_json_str(&j, r[i].name, strlen(r[i].name));
		vox_buf_puts(&j, ",\"id\":");
		vox_buf_json_str(&j, r[i].id, strlen(r[i].id));
		vox_buf_puts(&j, ",\"version\":");
		vox_buf_json_str(&j, version, strlen(version));
		vox_buf_printf(&j, ",\"requests\":%lld,\"errors\":%lld,"
			       "\"average_processing_ns\":%lld,\"lag\":",
			       row.reqs, row.errs,
			       row.reqs ? row.ptime_ns / row.reqs : 0);
		if (!row.lag)
			vox_buf_puts(&j, "null");
		else if (*row.lag && strspn(row.lag, "0123456789") == strlen(row.lag))
			vox_buf_puts(&j, row.lag);
		else
			vox_buf_json_str(&j, row.lag, strlen(row.lag));
		vox_buf_putc(&j, '}');
	}
	vox_buf_putc(&j, ']');
	bool ok = voxctl_print_json(j.data, j.len);
	VOX_UNUSED(ok); /* built here: it parses */
	vox_buf_release(&j);
	fflush(stdout);
}

/* Each reply as JSON (through msgpack, so pretty printing is shared). */
static void print_json(const reply *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		vox_buf mp;
		vox_buf_init(&mp);
		voxctl_json_to_mp(&mp, r[i].doc, NULL, NULL);
		if (!voxctl_print_mp(mp.data, mp.len)) {
			fwrite(r[i].text, 1, r[i].len, stdout);
			fputc('\n', stdout);
		}
		vox_buf_release(&mp);
	}
	fflush(stdout);
}

static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

int voxctl_cmd_services(int argc, char **argv)
{
	static const struct option opts[] = {
		{"wait", required_argument, NULL, 'w'},
		{"text", no_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	const char *verb = NULL, *name = NULL;
	long long wait_ms = DEFAULT_WAIT_MS;
	bool text = false;
	int c;
	voxctl_getopt_reset();
	while ((c = voxctl_getopt("services", argc, argv, "", opts)) != -1) {
		if (c == 'w') {
			if (!voxctl_int_opt(&wait_ms, "services", "--wait", optarg, 1,
					    60000))
				return EXIT_USAGE;
		} else if (c == 't') {
			text = true;
		} else {
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		verb = argv[optind++];
	if (optind < argc)
		name = argv[optind++];
	if (optind < argc) {
		voxctl_usage_err("services", "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	const char *subj_verb;
	bool table = false;
	if (!verb || strcmp(verb, "ls") == 0) {
		subj_verb = "STATS";
		table = true;
	} else if (strcmp(verb, "info") == 0) {
		subj_verb = "INFO";
	} else if (strcmp(verb, "stats") == 0) {
		subj_verb = "STATS";
	} else if (strcmp(verb, "ping") == 0) {
		subj_verb = "PING";
	} else {
		voxctl_err("services: unknown verb '%s' (ls, info, stats or ping)", verb);
		return EXIT_USAGE;
	}
	if (name && !name_ok(name)) {
		voxctl_err("services: '%s' is not a service name ([A-Za-z0-9_-]+,"
			   " e.g. vox-query)", name);
		return EXIT_USAGE;
	}
	reply *r = NULL;
	size_t n = 0;
	int rc = collect(subj_verb, name, wait_ms, &r, &n);
	if (table && text)
		print_table(r, n);
	else if (table)
		print_ls_json(r, n); /* [] when none answered */
	else if (n)
		print_json(r, n);
	free_replies(r, n);
	return rc;
}
