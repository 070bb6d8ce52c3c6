/*
 * cmd_dlq.c - `voxctl dlq list|show|replay`: the dead letters in stream
 * DLQ (subjects dlq.<original subject>), read by sequence with
 * js_GetMsg, shown with the reasons the actors gave (Vox-Error,
 * Vox-Error-Code, Vox-Error-Reason, Vox-Stream-Seq, Vox-Actor), and
 * re-published to their original subject: unchanged, or fixed from a
 * JSON file validated like `voxctl publish`.
 *
 * A replay's Nats-Msg-Id is "replay:<dlq seq>:<event_id>:<hash>" (hash: 8
 * bytes of BLAKE2b of the body, hex): the original event_id is already in
 * EVENTS' duplicate window when a replay comes soon after the failure, so
 * reusing it would have JetStream drop the replay; with this id running
 * the same replay twice is a duplicate, while a different fix is not. The
 * actors are idempotent by event_id, so replaying an event that was
 * applied in the meantime changes nothing. Dead letters stay in the DLQ
 * (it has its own max age); the header Vox-Replay-Of links a replay to
 * its dead letter.
 */
#include "voxctl/voxctl.h"

#include <sodium.h>

#include "core/codec.h"
#include "vox/client.h"
#include "vox/subjects.h"
#include "voxctl/stream.h"

#define PUB_TIMEOUT_MS 5000
#define DEFAULT_LIMIT 1000

typedef struct dlq_opts {
	const char *subject; /* original subject pattern */
	const char *file;
	uint64_t seq;
	long long limit;
	vox_uuid org;
	bool all; /* replay --all: every dead letter (subject ">") */
} dlq_opts;

/* argv[0] is the verb: "dlq <verb> [options] [seq]". */
static int parse_opts(int argc, char **argv, dlq_opts *o)
{
	static const struct option opts[] = {
		{"subject", required_argument, NULL, 's'},
		{"file", required_argument, NULL, 'f'},
		{"seq", required_argument, NULL, 'q'},
		{"limit", required_argument, NULL, 'l'},
		{"org", required_argument, NULL, 'o'},
		{"all", no_argument, NULL, 'a'},
		{NULL, 0, NULL, 0},
	};
	char cmd[32];
	long long n;
	int c;
	bool limited = false;
	snprintf(cmd, sizeof(cmd), "dlq %s", argv[0]);
	memset(o, 0, sizeof(*o));
	o->limit = DEFAULT_LIMIT;
	voxctl_getopt_reset();
	while ((c = voxctl_getopt(cmd, argc, argv, "f:", opts)) != -1) {
		switch (c) {
		case 's':
			o->subject = optarg;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'q':
			if (!voxctl_int_opt(&n, cmd, "--seq", optarg, 1, INT64_MAX))
				return EXIT_USAGE;
			o->seq = (uint64_t)n;
			break;
		case 'l':
			if (!voxctl_int_opt(&o->limit, cmd, "--limit", optarg, 1,
					    1000000000LL))
				return EXIT_USAGE;
			limited = true;
			break;
		case 'o':
			if (!vox_uuid_parse(&o->org, optarg, strlen(optarg))) {
				voxctl_usage_err(cmd, "--org must be an organization"
						 " UUID, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'a':
			o->all = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	/* `voxctl dlq show 12` as well as --seq 12 */
	if (optind < argc && o->seq == 0) {
		if (!voxctl_int_opt(&n, cmd, "the sequence", argv[optind], 1, INT64_MAX))
			return EXIT_USAGE;
		o->seq = (uint64_t)n;
		optind++;
	}
	if (optind < argc) {
		voxctl_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (o->all && (o->subject || o->seq)) {
		voxctl_usage_err(cmd, "--all replays every dead letter: not with"
				 " --subject or --seq");
		return EXIT_USAGE;
	}
	if (o->all) {
		o->subject = ">";
		if (!limited)
			o->limit = INT64_MAX; /* all means all */
	}
	return EXIT_OK;
}

/* The DLQ stream's first and last sequence. */
static int dlq_range(jsCtx *js, uint64_t *first, uint64_t *last)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, js, VOX_STREAM_DLQ, NULL, &jerr);
	if (s != NATS_OK) {
		if (jerr == JSStreamNotFoundErr || s == NATS_NOT_FOUND)
			voxctl_err("dlq: stream %s does not exist: the actors (e.g."
				   " vox-calls) create it at start", VOX_STREAM_DLQ);
		else
			voxctl_err("dlq: cannot read stream %s: %s", VOX_STREAM_DLQ,
				   nats_GetLastError(NULL));
		jsStreamInfo_Destroy(si);
		return EXIT_UNREACHABLE;
	}
	*first = si->State.FirstSeq;
	*last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return EXIT_OK;
}

/* One dead letter: EXIT_OK, EXIT_SERVER when there is none at seq
 * (*m NULL), EXIT_UNREACHABLE (printed). */
static int dlq_get(jsCtx *js, uint64_t seq, natsMsg **m)
{
	jsErrCode jerr = 0;
	*m = NULL;
	natsStatus s = js_GetMsg(m, js, VOX_STREAM_DLQ, seq, NULL, &jerr);
	if (s == NATS_OK)
		return EXIT_OK;
	if (jerr == JSStreamNotFoundErr)
		voxctl_err("dlq: stream %s does not exist: the actors (e.g."
			   " vox-calls) create it at start", VOX_STREAM_DLQ);
	else if (jerr == JSNoMessageFoundErr || s == NATS_NOT_FOUND)
		return EXIT_SERVER;
	else
		voxctl_err("dlq: cannot read seq %" PRIu64 ": %s", seq,
			   nats_GetLastError(NULL));
	return EXIT_UNREACHABLE;
}

/* The original subject of a dead letter (its subject without "dlq."). */
static const char *original_subject(natsMsg *m)
{
	const char *s = natsMsg_GetSubject(m);
	size_t n = strlen(VOX_DLQ_PREFIX);
	return strncmp(s, VOX_DLQ_PREFIX, n) == 0 ? s + n : s;
}

static bool wanted(const dlq_opts *o, natsMsg *m)
{
	const char *orig = original_subject(m);
	if (o->subject && !voxctl_subject_match(o->subject, orig))
		return false;
	if (o->org.s[0]) {
		const char *dot = strrchr(orig, '.');
		if (!dot || strcmp(dot + 1, o->org.s) != 0)
			return false;
	}
	return true;
}

/* ---- list, show ------------------------------------------------------------ */

static int dlq_list(jsCtx *js, const dlq_opts *o)
{
	uint64_t first = 0, last = 0;
	int rc = dlq_range(js, &first, &last);
	if (rc != EXIT_OK)
		return rc;
	vox_buf line;
	vox_buf_init(&line);
	long long n = 0;
	for (uint64_t seq = first ? first : 1; seq <= last && n < o->limit; seq++) {
		natsMsg *m = NULL;
		rc = dlq_get(js, seq, &m);
		if (rc == EXIT_SERVER) { /* deleted or aged out meanwhile */
			rc = EXIT_OK;
			continue;
		}
		if (rc != EXIT_OK)
			break;
		if (wanted(o, m)) {
			vox_buf_reset(&line);
			voxctl_msg_json(&line, m, original_subject(m), seq,
					natsMsg_GetTime(m), false);
			fwrite(line.data, 1, line.len, stdout);
			fputc('\n', stdout);
			n++;
		}
		natsMsg_Destroy(m);
	}
	fflush(stdout);
	vox_buf_release(&line);
	return rc;
}

static int dlq_show(jsCtx *js, const dlq_opts *o)
{
	natsMsg *m = NULL;
	if (o->seq == 0) {
		voxctl_err("dlq show: which dead letter? give --seq N (see voxctl dlq list)");
		return EXIT_USAGE;
	}
	int rc = dlq_get(js, o->seq, &m);
	if (rc == EXIT_SERVER)
		voxctl_err("dlq show: no dead letter with seq %" PRIu64 " in %s",
			   o->seq, VOX_STREAM_DLQ);
	if (rc != EXIT_OK)
		return rc;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	voxctl_pack_msg(&pk, m, original_subject(m), o->seq, natsMsg_GetTime(m));
	bool ok = voxctl_print_mp(sb.data, sb.size);
	VOX_UNUSED(ok);
	msgpack_sbuffer_destroy(&sb);
	natsMsg_Destroy(m);
	return EXIT_OK;
}

/* ---- replay ------------------------------------------------------------- */

/* The message to publish for dead letter m: its bytes, or the fixed event
 * from fixed (already validated for the original subject). */
static int replay_msg(natsMsg *m, uint64_t dlq_seq, const vox_event *fixed,
		      natsMsg **out, char *msgid, size_t idlen)
{
	const char *orig = original_subject(m);
	vox_event ev;
	vox_error err;
	natsMsg *r = NULL;
	natsStatus s;
	memset(&err, 0, sizeof(err));
	*out = NULL;
	if (fixed) {
		vox_status st = vox_event_to_msg(&r, fixed, &err);
		if (st != VOX_OK) {
			voxctl_err("dlq replay: %s: %s", orig, err.message);
			return EXIT_USAGE;
		}
		ev = *fixed;
	} else {
		const char *schema = NULL;
		if (natsMsgHeader_Get(m, VOX_HDR_SCHEMA, &schema) != NATS_OK)
			schema = NULL;
		if (vox_schema_version_check(&err, schema) != VOX_OK) {
			voxctl_err("dlq replay: seq %" PRIu64 " is Vox-Schema %s, which"
				   " this voxctl does not read (" VOX_SCHEMA_VERSION "):"
				   " replay it with one that does", dlq_seq, schema);
			return EXIT_USAGE;
		}
		vox_status st = vox_event_decode_subject(&ev, orig, natsMsg_GetData(m),
							 (size_t)natsMsg_GetDataLength(m),
							 &err);
		if (st != VOX_OK) {
			voxctl_err("dlq replay: seq %" PRIu64 " (%s) still breaks the"
				   " contract: %s; replay a fixed version with --seq %"
				   PRIu64 " --file FIXED.json",
				   dlq_seq, orig, err.message[0] ? err.message
								 : vox_status_str(st),
				   dlq_seq);
			return EXIT_USAGE;
		}
		s = natsMsg_Create(&r, orig, NULL, natsMsg_GetData(m),
				   natsMsg_GetDataLength(m));
		if (s == NATS_OK)
			s = natsMsgHeader_Set(r, VOX_HDR_SCHEMA, "1");
		if (s != NATS_OK) {
			natsMsg_Destroy(r);
			voxctl_err("dlq replay: %s", natsStatus_GetText(s));
			return EXIT_UNREACHABLE;
		}
	}
	unsigned char h[8];
	char hex[17], seqtxt[32];
	const char *data = natsMsg_GetData(r);
	int dlen = natsMsg_GetDataLength(r);
	int hr = crypto_generichash(h, sizeof(h), (const unsigned char *)data,
				    (unsigned long long)dlen, NULL, 0);
	VOX_UNUSED(hr);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	vox_str id = vox_event_msg_id(&ev);
	snprintf(msgid, idlen, "replay:%" PRIu64 ":%.*s:%s", dlq_seq, (int)id.len,
		 id.ptr, hex);
	snprintf(seqtxt, sizeof(seqtxt), "%" PRIu64, dlq_seq);
	s = natsMsgHeader_Set(r, "Nats-Msg-Id", msgid);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(r, "Vox-Replay-Of", seqtxt);
	if (s != NATS_OK) {
		natsMsg_Destroy(r);
		voxctl_err("dlq replay: %s", natsStatus_GetText(s));
		return EXIT_UNREACHABLE;
	}
	*out = r;
	return EXIT_OK;
}

static int replay_one(jsCtx *js, natsMsg *m, uint64_t dlq_seq,
		      const vox_event *fixed)
{
	natsMsg *r = NULL;
	char msgid[256];
	int rc = replay_msg(m, dlq_seq, fixed, &r, msgid, sizeof(msgid));
	if (rc != EXIT_OK)
		return rc;
	jsPubOptions po;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	jsPubOptions_Init(&po);
	po.MaxWait = PUB_TIMEOUT_MS;
	natsStatus s = js_PublishMsg(&pa, js, r, &po, &jerr);
	if (s == NATS_OK) {
		vox_buf b;
		vox_buf_init(&b);
		vox_buf_printf(&b, "{\"dlq_seq\":%" PRIu64 ",\"subject\":", dlq_seq);
		vox_buf_json_str(&b, natsMsg_GetSubject(r), strlen(natsMsg_GetSubject(r)));
		vox_buf_puts(&b, ",\"msg_id\":");
		vox_buf_json_str(&b, msgid, strlen(msgid));
		vox_buf_printf(&b, ",\"fixed\":%s,\"stream\":", fixed ? "true" : "false");
		vox_buf_json_str(&b, pa->Stream, strlen(pa->Stream));
		vox_buf_printf(&b, ",\"seq\":%" PRIu64 ",\"duplicate\":%s}\n",
			       pa->Sequence, pa->Duplicate ? "true" : "false");
		fwrite(b.data, 1, b.len, stdout);
		fflush(stdout);
		vox_buf_release(&b);
	} else {
		voxctl_err("dlq replay: %s: not stored by JetStream (%s): is a"
			   " stream capturing it?", natsMsg_GetSubject(r),
			   s == NATS_NO_RESPONDERS ? "no stream" : nats_GetLastError(NULL));
		rc = EXIT_UNREACHABLE;
	}
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(r);
	return rc;
}

static int dlq_replay(jsCtx *js, const dlq_opts *o)
{
	if ((o->seq == 0) == (o->subject == NULL)) {
		voxctl_usage_err("dlq replay", "give --seq N (one dead letter),"
				 " --subject S (all on that original subject) or"
				 " --all, not %s", o->seq ? "both" : "neither");
		return EXIT_USAGE;
	}
	if (o->file && !o->seq) {
		voxctl_err("dlq replay: --file replaces one dead letter: use it with --seq N");
		return EXIT_USAGE;
	}
	if (o->seq) {
		natsMsg *m = NULL;
		int rc = dlq_get(js, o->seq, &m);
		if (rc == EXIT_SERVER)
			voxctl_err("dlq replay: no dead letter with seq %" PRIu64 " in %s",
				   o->seq, VOX_STREAM_DLQ);
		if (rc != EXIT_OK)
			return rc;
		if (!o->file) {
			rc = replay_one(js, m, o->seq, NULL);
			natsMsg_Destroy(m);
			return rc;
		}
		vox_buf text, mp;
		vox_event ev;
		vox_buf_init(&text);
		vox_buf_init(&mp);
		rc = EXIT_USAGE;
		if (voxctl_read_file(&text, o->file)) {
			vox_json *v = voxctl_parse_json(o->file, text.data ? text.data : "",
							text.len);
			if (v && voxctl_event_from_json(o->file, original_subject(m), v,
							&mp, &ev))
				rc = replay_one(js, m, o->seq, &ev);
			vox_json_free(v);
		}
		vox_buf_release(&mp);
		vox_buf_release(&text);
		natsMsg_Destroy(m);
		return rc;
	}
	/* every dead letter on the subject; ones that still break the
	 * contract are reported and skipped */
	uint64_t first = 0, last = 0;
	int rc = dlq_range(js, &first, &last), worst = EXIT_OK;
	if (rc != EXIT_OK)
		return rc;
	long long n = 0;
	uint64_t from = first ? first : 1;
	uint64_t total = last >= from ? last - from + 1 : 0;
	bool shown = false;
	for (uint64_t seq = from; seq <= last && n < o->limit; seq++) {
		natsMsg *m = NULL;
		/* on a terminal: how far through the stream (JSON lines go to
		 * stdout, the bar to stderr) */
		if (voxctl_progress_on() && total > 0) {
			voxctl_progress("dlq replay", seq - from, total);
			shown = true;
		}
		rc = dlq_get(js, seq, &m);
		if (rc == EXIT_SERVER)
			continue;
		if (rc != EXIT_OK)
			return rc;
		if (wanted(o, m)) {
			n++;
			rc = replay_one(js, m, seq, NULL);
			if (rc == EXIT_UNREACHABLE) {
				natsMsg_Destroy(m);
				return rc;
			}
			if (rc != EXIT_OK)
				worst = rc;
		}
		natsMsg_Destroy(m);
	}
	if (shown) {
		voxctl_progress("dlq replay", total, total);
		voxctl_progress_end();
	}
	if (n == 0)
		voxctl_err("dlq replay: no dead letter%s%s", o->all ? "" : " on ",
			   o->all ? "" : o->subject);
	return n == 0 ? EXIT_SERVER : worst;
}

int voxctl_cmd_dlq(int argc, char **argv)
{
	dlq_opts o;
	if (argc < 2) {
		voxctl_err("dlq: list, show or replay? see voxctl dlq --help");
		return EXIT_USAGE;
	}
	const char *verb = argv[1];
	bool list = strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0;
	bool show = strcmp(verb, "show") == 0;
	bool replay = strcmp(verb, "replay") == 0;
	if (!list && !show && !replay) {
		voxctl_err("dlq: unknown '%s': list, show or replay", verb);
		return EXIT_USAGE;
	}
	int rc = parse_opts(argc - 1, argv + 1, &o);
	if (rc != EXIT_OK)
		return rc;
	if (!replay && o.file) {
		voxctl_err("dlq %s: --file is for replay", verb);
		return EXIT_USAGE;
	}
	if (show && !o.seq) {
		voxctl_err("dlq show: which dead letter? give --seq N (see voxctl dlq list)");
		return EXIT_USAGE;
	}
	if (replay && (o.seq == 0) == (o.subject == NULL)) {
		voxctl_usage_err("dlq replay", "give --seq N (one dead letter),"
				 " --subject S (all on that original subject) or"
				 " --all");
		return EXIT_USAGE;
	}
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	rc = voxctl_jetstream(&nc, &js);
	if (rc != EXIT_OK)
		return rc;
	if (list)
		rc = dlq_list(js, &o);
	else if (show)
		rc = dlq_show(js, &o);
	else
		rc = dlq_replay(js, &o);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rc;
}
