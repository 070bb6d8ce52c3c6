/*
 * cmd_request.c - `voxctl request <subject> [json]`, and the query
 * shorthands wallet, calls, call and hot-leads: a msgpack request built
 * from JSON or from options, the reply printed as JSON, ADR-32 errors
 * shown with their code (see subjects/query.md).
 */
#include "voxctl/voxctl.h"

#include "core/codec.h"

#define DEFAULT_TIMEOUT_MS 5000

static bool is_uuid(const char *s)
{
	vox_uuid u;
	return vox_uuid_parse(&u, s, strlen(s));
}

/* A NATS subject voxctl may request: tokens of printable characters
 * without spaces or wildcards, none empty. */
static bool subject_ok(const char *s)
{
	if (!*s || *s == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '*' || *p == '>' ||
		    (unsigned char)*p == 0x7f)
			return false;
	return true;
}

/* Connect and request subject with body, printing the reply. */
static int send_print(const char *subject, const vox_buf *body, long long timeout)
{
	natsConnection *nc = NULL;
	int rc = voxctl_connect(&nc);
	if (rc != EXIT_OK)
		return rc;
	rc = voxctl_request_print(nc, subject, body->data, body->len, timeout);
	natsConnection_Destroy(nc);
	return rc;
}

/* ---- voxctl request ------------------------------------------------------- */

int voxctl_cmd_request(int argc, char **argv)
{
	static const struct option opts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"file", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	const char *subject = NULL, *json = NULL, *file = NULL;
	long long timeout = DEFAULT_TIMEOUT_MS;
	int c;
	voxctl_getopt_reset();
	while ((c = voxctl_getopt("request", argc, argv, "f:", opts)) != -1) {
		if (c == 't') {
			if (!voxctl_int_opt(&timeout, "request", "--timeout", optarg, 1,
					    3600000))
				return EXIT_USAGE;
		} else if (c == 'f') {
			file = optarg;
		} else {
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		subject = argv[optind++];
	if (optind < argc)
		json = argv[optind++];
	if (optind < argc) {
		voxctl_usage_err("request", "unexpected argument '%s' (quote the"
				 " JSON body)", argv[optind]);
		return EXIT_USAGE;
	}
	if (!subject) {
		voxctl_err("request: a subject is needed: voxctl request <subject>"
			   " ['<json>' | -f FILE]");
		return EXIT_USAGE;
	}
	if (!subject_ok(subject)) {
		voxctl_err("request: '%s' is not a subject to request (no spaces,"
			   " wildcards or empty tokens)", subject);
		return EXIT_USAGE;
	}
	if (json && file) {
		voxctl_err("request: give the body either as an argument or with -f,"
			   " not both");
		return EXIT_USAGE;
	}
	vox_buf text, body;
	vox_buf_init(&text);
	vox_buf_init(&body);
	int rc = EXIT_OK;
	if (file) {
		if (!voxctl_read_file(&text, file))
			rc = EXIT_USAGE;
	} else if (json) {
		vox_buf_append(&text, json, strlen(json));
	}
	if (rc == EXIT_OK && (json || file)) {
		vox_json *doc = voxctl_parse_json(file ? file : "request body",
						  text.data ? text.data : "", text.len);
		if (!doc) {
			rc = EXIT_USAGE;
		} else if (vox_json_type_of(doc) != VOX_JSON_OBJECT) {
			voxctl_err("request body: a request is a JSON object, not %s",
				   vox_json_type_name(vox_json_type_of(doc)));
			rc = EXIT_USAGE;
		} else {
			voxctl_json_to_mp(&body, doc, voxctl_request_time_key, NULL);
		}
		vox_json_free(doc);
	} else if (rc == EXIT_OK) {
		vox_buf_putc(&body, (char)0x80); /* {} */
	}
	if (rc == EXIT_OK)
		rc = send_print(subject, &body, timeout);
	vox_buf_release(&text);
	vox_buf_release(&body);
	return rc;
}

/* ---- the query shorthands --------------------------------------------------- */

/* The org argument: a UUID, or false (printed). */
static bool org_ok(const char *cmd, const char *org)
{
	if (!org) {
		voxctl_err("%s: the org id is needed (see voxctl %s --help)", cmd, cmd);
		return false;
	}
	if (!is_uuid(org)) {
		voxctl_err("%s: '%s' is not an org id (a UUID)", cmd, org);
		return false;
	}
	return true;
}

static bool one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

/* Options the shorthands take, in the request map's order. */
typedef struct query_opts {
	const char *org, *call_id;
	const char *before, *status, *direction, *since, *until;
	bool has_limit;
	long long limit, timeout;
	vox_time t_since, t_until;
} query_opts;

enum { Q_LIMIT = 1, Q_PAGING = 2 };

/* Parse "cmd <org> [<call_id>] [options]"; the allowed options by flags.
 * EXIT_OK or EXIT_USAGE (printed). */
static int parse_query(const char *cmd, int argc, char **argv, int flags,
		       bool want_call, query_opts *q)
{
	static const char *const statuses[] = {"pending", "in_progress", "completed",
					       "failed", NULL};
	static const char *const directions[] = {"inbound", "outbound", NULL};
	/* every query takes --timeout; the others only where flags allow,
	 * so that `voxctl wallet --limit 5` is an unknown option */
	static const struct option all[] = {
		{"timeout", required_argument, NULL, 't'},
		{"limit", required_argument, NULL, 'l'},
		{"before", required_argument, NULL, 'b'},
		{"status", required_argument, NULL, 's'},
		{"direction", required_argument, NULL, 'd'},
		{"since", required_argument, NULL, 'S'},
		{"until", required_argument, NULL, 'U'},
	};
	struct option opts[VOX_NELEM(all) + 1];
	size_t nopts = 0;
	for (size_t k = 0; k < VOX_NELEM(all); k++) {
		bool paging = strchr("bsdSU", all[k].val) != NULL;
		if (all[k].val == 't' || (all[k].val == 'l' && (flags & Q_LIMIT)) ||
		    (paging && (flags & Q_PAGING)))
			opts[nopts++] = all[k];
	}
	memset(&opts[nopts], 0, sizeof(opts[nopts]));
	memset(q, 0, sizeof(*q));
	q->timeout = DEFAULT_TIMEOUT_MS;
	int c;
	voxctl_getopt_reset();
	while ((c = voxctl_getopt(cmd, argc, argv, "", opts)) != -1) {
		const char *v = optarg;
		switch (c) {
		case 't':
			if (!voxctl_int_opt(&q->timeout, cmd, "--timeout", v, 1, 3600000))
				return EXIT_USAGE;
			break;
		case 'l':
			if (!voxctl_int_opt(&q->limit, cmd, "--limit", v, 1, 100))
				return EXIT_USAGE;
			q->has_limit = true;
			break;
		case 'b':
			q->before = v;
			break;
		case 's':
			if (!one_of(v, statuses)) {
				voxctl_usage_err(cmd, "--status: '%s' is not one of pending,"
						 " in_progress, completed, failed", v);
				return EXIT_USAGE;
			}
			q->status = v;
			break;
		case 'd':
			if (!one_of(v, directions)) {
				voxctl_usage_err(cmd, "--direction: '%s' is not inbound or"
						 " outbound", v);
				return EXIT_USAGE;
			}
			q->direction = v;
			break;
		case 'S':
		case 'U':
			if (!vox_time_parse_rfc3339(c == 'S' ? &q->t_since : &q->t_until,
						    v, strlen(v))) {
				voxctl_usage_err(cmd, "%s: '%s' is not an RFC 3339 time"
						 " (e.g. 2026-11-01T09:00:00Z)",
						 c == 'S' ? "--since" : "--until", v);
				return EXIT_USAGE;
			}
			if (c == 'S')
				q->since = v;
			else
				q->until = v;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		q->org = argv[optind++];
	if (want_call && optind < argc)
		q->call_id = argv[optind++];
	if (optind < argc) {
		voxctl_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!org_ok(cmd, q->org))
		return EXIT_USAGE;
	if (want_call) {
		if (!q->call_id) {
			voxctl_err("%s: the call id is needed: voxctl call <org> <call_id>",
				   cmd);
			return EXIT_USAGE;
		}
		if (!is_uuid(q->call_id)) {
			voxctl_err("%s: '%s' is not a call id (a UUID)", cmd, q->call_id);
			return EXIT_USAGE;
		}
	}
	if (q->since && q->until &&
	    (q->t_until.sec < q->t_since.sec ||
	     (q->t_until.sec == q->t_since.sec && q->t_until.nsec <= q->t_since.nsec))) {
		voxctl_err("%s: --until must be after --since", cmd);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Build the request map from q and send it to query.<endpoint>.<org>. */
static int run_query(const char *endpoint, const query_opts *q)
{
	vox_buf body;
	msgpack_packer pk;
	char subject[128];
	uint32_t n = (q->has_limit ? 1 : 0) + (q->before ? 1 : 0) +
		     (q->status ? 1 : 0) + (q->direction ? 1 : 0) +
		     (q->since ? 1 : 0) + (q->until ? 1 : 0) + (q->call_id ? 1 : 0);
	vox_buf_init(&body);
	msgpack_packer_init(&pk, &body, vox_mp_buf_write);
	msgpack_pack_map(&pk, n);
	if (q->call_id) {
		vox_mp_pack_cstr(&pk, "call_id");
		vox_mp_pack_cstr(&pk, q->call_id);
	}
	if (q->has_limit) {
		vox_mp_pack_cstr(&pk, "limit");
		msgpack_pack_int64(&pk, q->limit);
	}
	if (q->before) {
		vox_mp_pack_cstr(&pk, "before");
		vox_mp_pack_cstr(&pk, q->before);
	}
	if (q->status) {
		vox_mp_pack_cstr(&pk, "status");
		vox_mp_pack_cstr(&pk, q->status);
	}
	if (q->direction) {
		vox_mp_pack_cstr(&pk, "direction");
		vox_mp_pack_cstr(&pk, q->direction);
	}
	if (q->since) {
		vox_mp_pack_cstr(&pk, "since");
		vox_time_pack(&pk, &q->t_since);
	}
	if (q->until) {
		vox_mp_pack_cstr(&pk, "until");
		vox_time_pack(&pk, &q->t_until);
	}
	snprintf(subject, sizeof(subject), "query.%s.%s", endpoint, q->org);
	int rc = send_print(subject, &body, q->timeout);
	vox_buf_release(&body);
	return rc;
}

int voxctl_cmd_wallet(int argc, char **argv)
{
	query_opts q;
	int rc = parse_query("wallet", argc, argv, 0, false, &q);
	return rc != EXIT_OK ? rc : run_query("wallet", &q);
}

int voxctl_cmd_calls(int argc, char **argv)
{
	query_opts q;
	int rc = parse_query("calls", argc, argv, Q_LIMIT | Q_PAGING, false, &q);
	return rc != EXIT_OK ? rc : run_query("calls", &q);
}

int voxctl_cmd_call(int argc, char **argv)
{
	query_opts q;
	int rc = parse_query("call", argc, argv, 0, true, &q);
	return rc != EXIT_OK ? rc : run_query("call", &q);
}

int voxctl_cmd_hot_leads(int argc, char **argv)
{
	query_opts q;
	int rc = parse_query("hot-leads", argc, argv, Q_LIMIT, false, &q);
	return rc != EXIT_OK ? rc : run_query("hot_leads", &q);
}
