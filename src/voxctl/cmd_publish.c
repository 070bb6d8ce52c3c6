/*
 * cmd_publish.c - `voxctl publish`: events written as JSON for people,
 * converted to the contract's msgpack (RFC 3339 text becomes a timestamp
 * in the fields that are timestamps), validated by the same decoder the
 * actors use, and published to JetStream with Nats-Msg-Id = event_id
 * through the public client (vox_publish). Every input is validated
 * before anything is sent: a bad line means nothing is published.
 */
#include "voxctl/voxctl.h"

#include <unistd.h>

#include "core/codec.h"
#include "vox/client.h"
#include "vox/subjects.h"
#include "voxctl/stream.h"

#define PUB_TIMEOUT_MS 5000
#define MAX_LINES 100000

static bool kind_time_key(const char *key, size_t n, void *ctx)
{
	const vox_event_kind *kind = ctx;
	return key && vox_event_key_is_time(*kind, key, n);
}

static void kinds_hint(char *buf, size_t n)
{
	size_t at = 0;
	buf[0] = '\0';
	for (int k = 0; k < VOX_EVENT_KIND_COUNT && at < n; k++) {
		int w = snprintf(buf + at, n - at, "%s%s", k ? ", " : "",
				 vox_event_kind_name((vox_event_kind)k));
		if (w < 0)
			break;
		at += (size_t)w;
	}
}

bool voxctl_event_from_json(const char *what, const char *subject,
			    const vox_json *v, vox_buf *mp, vox_event *ev)
{
	vox_event_kind kind;
	const char *org;
	size_t orglen;
	vox_error err;
	char kinds[256];

	if (!vox_subject_parse(&kind, &org, &orglen, subject)) {
		kinds_hint(kinds, sizeof(kinds));
		voxctl_err("%s%s'%s' is not an event subject: use <kind>.<org_id>"
			   " with kind one of %s",
			   what ? what : "", what ? ": " : "", subject, kinds);
		return false;
	}
	vox_buf_reset(mp);
	voxctl_json_to_mp(mp, v, kind_time_key, &kind);
	memset(&err, 0, sizeof(err));
	vox_status st = vox_event_decode_subject(ev, subject, mp->data, mp->len,
						 &err);
	if (st != VOX_OK) {
		voxctl_err("%s%s%s: %s (%s)", what ? what : "", what ? ": " : "",
			   subject, err.message[0] ? err.message : vox_status_str(st),
			   err.code ? err.code : vox_status_str(st));
		return false;
	}
	return true;
}

/* One message to publish: its subject and validated msgpack. */
typedef struct pub_item {
	char *subject;
	vox_buf mp;
} pub_item;

typedef struct pub_list {
	pub_item *items;
	size_t n, cap;
} pub_list;

static void list_free(pub_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].subject);
		vox_buf_release(&l->items[i].mp);
	}
	free(l->items);
}

/*
 * Validate one JSON document. subject NULL: the document is
 * {"subject": ..., "payload": {...}}.
 */
static bool add_doc(pub_list *l, const char *what, const char *subject,
		    const vox_json *doc)
{
	const vox_json *payload = doc;
	vox_event ev;
	if (!subject) {
		const vox_json *s = vox_json_get(doc, "subject");
		payload = vox_json_get(doc, "payload");
		if (!s || vox_json_type_of(s) != VOX_JSON_STRING || !payload) {
			voxctl_err("%s: with subject '-' each line is"
				   " {\"subject\": \"<kind>.<org_id>\", \"payload\": {...}}",
				   what ? what : "input");
			return false;
		}
		subject = vox_json_str(s);
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		pub_item *grown = vox_calloc(l->cap, sizeof(*grown));
		if (l->n)
			memcpy(grown, l->items, l->n * sizeof(*grown));
		free(l->items);
		l->items = grown;
	}
	pub_item *it = &l->items[l->n];
	vox_buf_init(&it->mp);
	if (!voxctl_event_from_json(what, subject, payload, &it->mp, &ev)) {
		vox_buf_release(&it->mp);
		return false;
	}
	it->subject = vox_strndup(subject, strlen(subject));
	l->n++;
	return true;
}

/* A whole input: one JSON document, else JSON lines (blank lines skipped). */
static bool add_input(pub_list *l, const char *subject, const char *text,
		      size_t len)
{
	vox_json *v = vox_json_parse(text, len, NULL);
	if (v) {
		bool ok = add_doc(l, NULL, subject, v);
		vox_json_free(v);
		return ok;
	}
	size_t line = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		char what[48];
		line++;
		if (line > MAX_LINES) {
			voxctl_err("input: more than %d lines; split it", MAX_LINES);
			return false;
		}
		snprintf(what, sizeof(what), "line %zu", line);
		const char *q = p;
		while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		if (q < e) {
			vox_json *d = voxctl_parse_json(what, p, (size_t)(e - p));
			if (!d)
				return false;
			bool ok = add_doc(l, what, subject, d);
			vox_json_free(d);
			if (!ok)
				return false;
		}
		p = e + (nl ? 1 : 0);
	}
	if (l->n == 0) {
		voxctl_err("input: no JSON document to publish");
		return false;
	}
	return true;
}

static int publish_all(pub_list *l)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int rc = voxctl_jetstream(&nc, &js);
	if (rc != EXIT_OK)
		return rc;
	for (size_t i = 0; i < l->n && rc == EXIT_OK; i++) {
		pub_item *it = &l->items[i];
		vox_event ev;
		vox_error err;
		vox_pub_ack ack;
		memset(&err, 0, sizeof(err));
		memset(&ack, 0, sizeof(ack));
		vox_status st = vox_event_decode_subject(&ev, it->subject, it->mp.data,
							 it->mp.len, &err);
		if (st == VOX_OK)
			st = vox_publish(&ack, js, &ev, PUB_TIMEOUT_MS, &err);
		if (st == VOX_OK) {
			printf("{\"stream\":\"%s\",\"seq\":%" PRIu64 ",\"duplicate\":%s}\n",
			       ack.stream, ack.seq, ack.duplicate ? "true" : "false");
			fflush(stdout);
		} else if (st == VOX_E_INVALID || st == VOX_E_DECODE ||
			   st == VOX_E_ORG_MISMATCH || st == VOX_E_TOO_LARGE) {
			voxctl_err("%s: %s", it->subject, err.message);
			rc = EXIT_USAGE;
		} else {
			voxctl_err("%s: JetStream did not store it (%s): no stream"
				   " captures the subject or JetStream is down;"
				   " `voxctl streams apply` creates the streams",
				   it->subject, vox_status_str(st));
			rc = EXIT_UNREACHABLE;
		}
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rc;
}

int voxctl_cmd_publish(int argc, char **argv)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	const char *subject = NULL, *json = NULL, *file = NULL;
	int c;
	voxctl_getopt_reset();
	while ((c = voxctl_getopt("publish", argc, argv, "f:", opts)) != -1) {
		if (c == 'f')
			file = optarg;
		else
			return EXIT_USAGE;
	}
	if (optind < argc)
		subject = argv[optind++];
	if (optind < argc)
		json = argv[optind++];
	if (optind < argc) {
		voxctl_usage_err("publish", "too many arguments; quote the JSON"
				 " ('{\"event_id\": ...}')");
		return EXIT_USAGE;
	}
	if (!subject) {
		voxctl_err("publish: missing <subject>, e.g. voxctl publish"
			   " call.started.<org_id> '{...}'; see voxctl publish --help");
		return EXIT_USAGE;
	}
	if (json && file) {
		voxctl_err("publish: give the JSON or -f FILE, not both");
		return EXIT_USAGE;
	}
	if (!json && !file) {
		if (isatty(STDIN_FILENO)) {
			voxctl_err("publish: no JSON given: pass it as an argument,"
				   " with -f FILE, or as lines on standard input");
			return EXIT_USAGE;
		}
		file = "-";
	}
	if (json && strcmp(json, "-") == 0) {
		file = "-";
		json = NULL;
	}
	const char *subj = strcmp(subject, "-") == 0 ? NULL : subject;
	pub_list l = {0};
	int rc = EXIT_USAGE;
	bool ok;
	if (json) {
		vox_json *v = voxctl_parse_json("JSON argument", json, strlen(json));
		ok = v && add_doc(&l, NULL, subj, v);
		vox_json_free(v);
	} else {
		vox_buf in;
		vox_buf_init(&in);
		ok = voxctl_read_file(&in, file);
		if (ok)
			ok = add_input(&l, subj, in.data ? in.data : "", in.len);
		vox_buf_release(&in);
	}
	if (ok)
		rc = publish_all(&l);
	list_free(&l);
	return rc;
}
