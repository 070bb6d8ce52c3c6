/*
 * streams.c - EVENTS, ALERTS and DLQ: the table of what they should be,
 * creating or updating them for the operator, checking them for the actors
 * (see streams.h). What "would drop data" is decided by core/stream_check.c.
 */
#include "io/streams.h"

#include "io/natsconn.h"
#include "vox/event.h"
#include "vox/subjects.h"

#define NS_PER_S 1000000000LL

/* ---- the table ------------------------------------------------------------ */

static const char *const events_subjects[] = {"call.*.*", "payment.*.*",
					      "lead.*.*"};
static const char *const alerts_subjects[] = {"alert.>"};
static const char *const dlq_subjects[] = {"dlq.>"};

static const struct {
	const char *name;
	const char *const *subjects;
	size_t nsubjects;
	bool dlq; /* its retention is VOX_DLQ_MAX_AGE_H */
} streams[VOX_STREAMS_COUNT] = {
	{VOX_STREAM_EVENTS, events_subjects, VOX_NELEM(events_subjects), false},
	{VOX_STREAM_ALERTS, alerts_subjects, VOX_NELEM(alerts_subjects), false},
	{VOX_STREAM_DLQ, dlq_subjects, VOX_NELEM(dlq_subjects), true},
};

/* The variables of vox_runtime_vars that describe the streams: the table
 * stays where the actors parse it, this picks from it. */
static const char *const stream_var_names[] = {
	"VOX_STREAM_REPLICAS", "VOX_STREAM_MAX_AGE_H", "VOX_DLQ_MAX_AGE_H",
	"VOX_STREAM_MAX_MB", "VOX_DUPLICATE_WINDOW_S",
};

static size_t stream_vars(vox_cfg_var out[VOX_NELEM(stream_var_names)])
{
	size_t n = 0;
	for (size_t i = 0; i < vox_runtime_nvars; i++)
		for (size_t j = 0; j < VOX_NELEM(stream_var_names); j++)
			if (strcmp(vox_runtime_vars[i].name, stream_var_names[j]) == 0)
				out[n++] = vox_runtime_vars[i];
	return n;
}

vox_status vox_streams_config_parse(vox_runtime_config *out,
				    vox_cfg_getenv getenv_fn, void *ctx,
				    vox_buf *errors)
{
	vox_cfg_var vars[VOX_NELEM(stream_var_names)];
	size_t n = stream_vars(vars);
	return vox_cfg_parse(out, vars, n, getenv_fn, ctx, errors);
}

void vox_streams_config_help(FILE *f)
{
	vox_cfg_var vars[VOX_NELEM(stream_var_names)];
	size_t n = stream_vars(vars);
	vox_cfg_help(f, vars, n);
}

void vox_streams_wanted(vox_stream_spec *out, size_t i,
			const vox_runtime_config *c)
{
	memset(out, 0, sizeof(*out));
	out->name = streams[i].name;
	out->subjects = streams[i].subjects;
	out->nsubjects = streams[i].nsubjects;
	out->storage = VOX_STREAM_FILE;
	out->retention = VOX_RETAIN_LIMITS;
	out->replicas = c->replicas;
	out->max_age_ns = (streams[i].dlq ? c->dlq_max_age_h : c->max_age_h) *
			  3600LL * NS_PER_S;
	out->max_bytes = c->max_bytes_mb < 0 ? -1 : c->max_bytes_mb * 1024 * 1024;
	out->max_msgs = -1;
	out->max_msgs_per_subject = -1;
	out->max_msg_size = VOX_MAX_MESSAGE;
	out->discard_new = false;
	out->duplicates_ns = c->dup_window_s * NS_PER_S;
}

void vox_streams_from_js(vox_stream_spec *out, const jsStreamConfig *c)
{
	memset(out, 0, sizeof(*out));
	out->name = c->Name;
	out->subjects = (const char *const *)c->Subjects;
	out->nsubjects = c->SubjectsLen > 0 ? (size_t)c->SubjectsLen : 0;
	out->storage = c->Storage == js_MemoryStorage ? VOX_STREAM_MEMORY
						      : VOX_STREAM_FILE;
	out->retention = c->Retention == js_InterestPolicy    ? VOX_RETAIN_INTEREST
			 : c->Retention == js_WorkQueuePolicy ? VOX_RETAIN_WORKQUEUE
							      : VOX_RETAIN_LIMITS;
	out->replicas = c->Replicas;
	out->max_age_ns = c->MaxAge;
	out->max_bytes = c->MaxBytes;
	out->max_msgs = c->MaxMsgs;
	out->max_msgs_per_subject = c->MaxMsgsPerSubject;
	out->max_msg_size = c->MaxMsgSize;
	out->discard_new = c->Discard == js_DiscardNew;
	out->duplicates_ns = c->Duplicates;
	out->sealed = c->Sealed;
	out->no_ack = c->NoAck;
}

/* libnats wants the subjects as a mutable array: subjects (room for
 * MAX_SUBJECTS) holds the pointers and must outlive cfg. */
#define MAX_SUBJECTS 8

static void to_js(jsStreamConfig *cfg, const char *subjects[MAX_SUBJECTS],
		  const vox_stream_spec *s)
{
	jsStreamConfig_Init(cfg);
	for (size_t i = 0; i < s->nsubjects && i < MAX_SUBJECTS; i++)
		subjects[i] = s->subjects[i];
	cfg->Name = s->name;
	cfg->Subjects = subjects;
	cfg->SubjectsLen = (int)(s->nsubjects < MAX_SUBJECTS ? s->nsubjects
							      : MAX_SUBJECTS);
	cfg->Storage = js_FileStorage;
	cfg->Retention = js_LimitsPolicy;
	cfg->Replicas = s->replicas;
	cfg->MaxAge = s->max_age_ns;
	cfg->MaxBytes = s->max_bytes;
	cfg->MaxMsgs = s->max_msgs;
	cfg->MaxMsgsPerSubject = s->max_msgs_per_subject;
	cfg->MaxMsgSize = (int32_t)s->max_msg_size;
	cfg->Duplicates = s->duplicates_ns;
	cfg->Discard = js_DiscardOld;
}

/* ---- talking to JetStream ------------------------------------------------ */

/* A failed JetStream API call as a vox status, with err filled. The
 * cluster's "temporarily unavailable" (no meta leader yet, during a start
 * or a failover) and "no suitable peers for placement" (a forming cluster
 * whose leader does not know all its peers yet) pass like a timeout: a
 * fault of the world, waited for with --wait. A single server asked for
 * replicas answers another code, which stays an error. */
static vox_status js_fail(natsStatus s, jsErrCode jerr, const char *stream,
			  const char *what, char *err, size_t errlen)
{
	const char *text = nats_GetLastError(NULL);
	snprintf(err, errlen, "stream %s: %s: %s (%d)", stream, what,
		 text && *text ? text : natsStatus_GetText(s), (int)jerr);
	if (jerr == JSClusterNotAvailErr || jerr == JSClusterNotLeaderErr ||
	    jerr == JSClusterNoPeersErr)
		return VOX_E_UNAVAILABLE;
	vox_status st = vox_nats_status(s);
	return st == VOX_E_INTERNAL ? VOX_E_CONFIG : st;
}

static bool is_missing(natsStatus s, jsErrCode jerr)
{
	return jerr == JSStreamNotFoundErr || (s == NATS_NOT_FOUND && jerr == 0);
}

/* The stream's info: VOX_OK, VOX_E_NOT_FOUND, or a failure with err. */
static vox_status stream_info(jsStreamInfo **si, jsCtx *js, const char *name,
			      char *err, size_t errlen)
{
	jsErrCode jerr = 0;
	*si = NULL;
	natsStatus s = js_GetStreamInfo(si, js, name, NULL, &jerr);
	if (s == NATS_OK)
		return VOX_OK;
	jsStreamInfo_Destroy(*si);
	*si = NULL;
	if (is_missing(s, jerr)) {
		snprintf(err, errlen, "stream %s does not exist", name);
		return VOX_E_NOT_FOUND;
	}
	return js_fail(s, jerr, name, "info", err, errlen);
}

/* Would going from the stream as it is (was) to wanted drop what it keeps
 * today? Then name the first such change in err. */
static bool update_drops(const vox_stream_spec *was,
			 const vox_stream_spec *wanted, char *err,
			 size_t errlen)
{
	vox_stream_diff back[VOX_STREAM_SETTINGS];
	/* the same rules, the other way round: wanted as what is found */
	size_t n = vox_stream_compare(back, wanted, was);
	for (size_t i = 0; i < n; i++) {
		if (back[i].severity != VOX_STREAM_DROPS)
			continue;
		snprintf(err, errlen,
			 "stream %s: changing %s from %s to %s would drop what"
			 " the stream keeps today; run again with --force to"
			 " change it anyway",
			 was->name, back[i].setting, back[i].wanted,
			 back[i].found);
		return true;
	}
	return false;
}

static vox_status apply_one(jsCtx *js, size_t i, const vox_runtime_config *c,
			    bool force, vox_streams_applied_fn report,
			    void *ctx, char *err, size_t errlen)
{
	vox_stream_spec want, found;
	vox_stream_diff diffs[VOX_STREAM_SETTINGS];
	jsStreamConfig cfg;
	const char *subjects[MAX_SUBJECTS];
	jsStreamInfo *si = NULL, *done = NULL;
	jsErrCode jerr = 0;
	vox_streams_wanted(&want, i, c);
	to_js(&cfg, subjects, &want);

	vox_status st = stream_info(&si, js, want.name, err, errlen);
	if (st == VOX_E_NOT_FOUND) {
		natsStatus s = js_AddStream(&done, js, &cfg, NULL, &jerr);
		if (s == NATS_OK) {
			st = VOX_OK;
			report(want.name, VOX_STREAM_CREATED, NULL, 0, ctx);
			goto out;
		}
		if (jerr != JSStreamNameExistErr) {
			st = js_fail(s, jerr, want.name, "create", err, errlen);
			goto out;
		}
		/* created by another apply meanwhile: compare with it */
		st = stream_info(&si, js, want.name, err, errlen);
	}
	if (st != VOX_OK)
		goto out;
	vox_streams_from_js(&found, si->Config);
	size_t n = vox_stream_compare(diffs, &found, &want);
	if (n == 0) {
		report(want.name, VOX_STREAM_UNCHANGED, NULL, 0, ctx);
		goto out;
	}
	if (!force && update_drops(&found, &want, err, errlen)) {
		st = VOX_E_CONFLICT;
		goto out;
	}
	natsStatus s = js_UpdateStream(&done, js, &cfg, NULL, &jerr);
	if (s != NATS_OK) {
		st = js_fail(s, jerr, want.name, "update", err, errlen);
		goto out;
	}
	report(want.name, VOX_STREAM_UPDATED, diffs, n, ctx);
out:
	jsStreamInfo_Destroy(done);
	jsStreamInfo_Destroy(si);
	return st;
}

vox_status vox_streams_apply(jsCtx *js, const vox_runtime_config *c,
			     bool force, vox_streams_applied_fn report,
			     void *ctx, char *err, size_t errlen)
{
	for (size_t i = 0; i < VOX_STREAMS_COUNT; i++) {
		vox_status st = apply_one(js, i, c, force, report, ctx, err,
					  errlen);
		if (st != VOX_OK)
			return st;
	}
	return VOX_OK;
}

vox_status vox_streams_verify(jsCtx *js, const vox_runtime_config *c,
			      vox_streams_diff_fn fn, void *ctx, char *err,
			      size_t errlen)
{
	jsStreamInfo *si[VOX_STREAMS_COUNT] = {NULL};
	vox_status st = VOX_OK;
	size_t i;
	/* all three first: differences are told only once none is missing */
	for (i = 0; i < VOX_STREAMS_COUNT && st == VOX_OK; i++)
		st = stream_info(&si[i], js, streams[i].name, err, errlen);
	if (st != VOX_OK)
		goto out;
	bool first = true;
	for (i = 0; i < VOX_STREAMS_COUNT; i++) {
		vox_stream_spec want, found;
		vox_stream_diff diffs[VOX_STREAM_SETTINGS];
		vox_streams_wanted(&want, i, c);
		vox_streams_from_js(&found, si[i]->Config);
		size_t n = vox_stream_compare(diffs, &found, &want);
		for (size_t k = 0; k < n; k++) {
			if (fn)
				fn(want.name, &diffs[k], ctx);
			if (diffs[k].severity != VOX_STREAM_DROPS || !first)
				continue;
			snprintf(err, errlen,
				 "stream %s would drop data: %s is %s, wanted %s",
				 want.name, diffs[k].setting, diffs[k].found,
				 diffs[k].wanted);
			st = VOX_E_CONFIG;
			first = false;
		}
	}
out:
	for (i = 0; i < VOX_STREAMS_COUNT; i++)
		jsStreamInfo_Destroy(si[i]);
	return st;
}
