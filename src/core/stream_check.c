/*
 * stream_check.c - which stream differences lose messages (see
 * stream_check.h). Every rule is one small function of found and wanted,
 * so the list of what "drops data" reads as a table.
 */
#include "core/stream_check.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

const char *vox_stream_severity_name(vox_stream_severity s)
{
	return s == VOX_STREAM_DROPS ? "drops_data" : "warning";
}

void vox_stream_format_duration(char *out, size_t n, int64_t ns)
{
	if (ns <= 0)
		snprintf(out, n, "unlimited");
	else if (ns % NS_PER_S != 0)
		snprintf(out, n, "%" PRId64 "ms", ns / NS_PER_MS);
	else if (ns % (3600 * NS_PER_S) == 0)
		snprintf(out, n, "%" PRId64 "h", ns / (3600 * NS_PER_S));
	else
		snprintf(out, n, "%" PRId64 "s", ns / NS_PER_S);
}

static void format_limit(char *out, size_t n, int64_t v)
{
	if (v <= 0)
		snprintf(out, n, "unlimited");
	else
		snprintf(out, n, "%" PRId64, v);
}

/* The next token of a subject: its start and length; *p moves past it. */
static bool next_token(const char **p, const char **tok, size_t *len)
{
	if (!*p)
		return false;
	const char *dot = strchr(*p, '.');
	*tok = *p;
	*len = dot ? (size_t)(dot - *p) : strlen(*p);
	*p = dot ? dot + 1 : NULL;
	return true;
}

static bool token_is(const char *tok, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(tok, s, len) == 0;
}

bool vox_stream_subject_covers(const char *pattern, const char *sub)
{
	const char *p = pattern, *s = sub;
	for (;;) {
		const char *pt, *st;
		size_t pl, sl;
		bool have_p = next_token(&p, &pt, &pl);
		bool have_s = next_token(&s, &st, &sl);
		if (!have_p || !have_s)
			return !have_p && !have_s;
		/* ">" takes every remaining token, and there is at least one */
		if (token_is(pt, pl, ">"))
			return true;
		/* what sub leaves open, only ">" or "*" can take */
		if (token_is(st, sl, ">"))
			return false;
		if (token_is(pt, pl, "*"))
			continue;
		if (token_is(st, sl, "*") || pl != sl || memcmp(pt, st, pl) != 0)
			return false;
	}
}

/* ---- the rules ------------------------------------------------------------- */

typedef struct checker {
	vox_stream_diff *out;
	size_t n;
} checker;

static vox_stream_diff *add(checker *c, const char *setting,
			    vox_stream_severity sev, const char *why)
{
	vox_stream_diff *d = &c->out[c->n++];
	memset(d, 0, sizeof(*d));
	d->setting = setting;
	d->severity = sev;
	d->why = why;
	return d;
}

static void join_subjects(char *out, size_t n, const vox_stream_spec *s)
{
	size_t off = 0;
	out[0] = '\0';
	if (s->nsubjects == 0)
		snprintf(out, n, "(none)");
	for (size_t i = 0; i < s->nsubjects && off < n; i++)
		off += (size_t)snprintf(out + off, n - off, "%s%s", i ? "," : "",
					s->subjects[i]);
}

static bool covered(const char *sub, const vox_stream_spec *by)
{
	for (size_t i = 0; i < by->nsubjects; i++)
		if (vox_stream_subject_covers(by->subjects[i], sub))
			return true;
	return false;
}

static void check_subjects(checker *c, const vox_stream_spec *f,
			   const vox_stream_spec *w)
{
	bool missing = false, extra = false;
	for (size_t i = 0; i < w->nsubjects; i++)
		missing |= !covered(w->subjects[i], f);
	/* the same set, in any order, is no difference */
	for (size_t i = 0; i < f->nsubjects && !missing; i++) {
		bool same = false;
		for (size_t j = 0; j < w->nsubjects; j++)
			same |= strcmp(f->subjects[i], w->subjects[j]) == 0;
		extra |= !same;
	}
	if (!missing && !extra)
		return;
	vox_stream_diff *d =
		missing ? add(c, "subjects", VOX_STREAM_DROPS,
			      "a subject vox publishes is not stored by this"
			      " stream: its messages are refused")
			: add(c, "subjects", VOX_STREAM_WARN,
			      "the stream also stores other subjects, or ours"
			      " under a wider pattern");
	join_subjects(d->found, sizeof(d->found), f);
	join_subjects(d->wanted, sizeof(d->wanted), w);
}

static const char *storage_name(vox_stream_storage s)
{
	return s == VOX_STREAM_MEMORY ? "memory" : "file";
}

static const char *retention_name(vox_stream_retention r)
{
	return r == VOX_RETAIN_INTEREST    ? "interest"
	       : r == VOX_RETAIN_WORKQUEUE ? "workqueue"
					   : "limits";
}

static void check_storage(checker *c, const vox_stream_spec *f,
			  const vox_stream_spec *w)
{
	if (f->storage == w->storage)
		return;
	vox_stream_diff *d =
		f->storage == VOX_STREAM_MEMORY
			? add(c, "storage", VOX_STREAM_DROPS,
			      "memory storage loses every message when the"
			      " server restarts")
			: add(c, "storage", VOX_STREAM_WARN,
			      "file storage keeps more than asked for");
	snprintf(d->found, sizeof(d->found), "%s", storage_name(f->storage));
	snprintf(d->wanted, sizeof(d->wanted), "%s", storage_name(w->storage));
}

static void check_retention(checker *c, const vox_stream_spec *f,
			    const vox_stream_spec *w)
{
	if (f->retention == w->retention)
		return;
	/* vox's consumers overlap (vox-calls and vox-billing both read
	 * call.ended) and come and go (a new actor, a replay): a message must
	 * stay until its limits expire, whoever acknowledged it */
	vox_stream_diff *d =
		f->retention != VOX_RETAIN_LIMITS
			? add(c, "retention", VOX_STREAM_DROPS,
			      "messages are deleted once acknowledged, before"
			      " every actor (or a replay) has read them")
			: add(c, "retention", VOX_STREAM_WARN,
			      "limits retention keeps more than asked for");
	snprintf(d->found, sizeof(d->found), "%s", retention_name(f->retention));
	snprintf(d->wanted, sizeof(d->wanted), "%s", retention_name(w->retention));
}

static void check_replicas(checker *c, const vox_stream_spec *f,
			   const vox_stream_spec *w)
{
	int64_t fr = f->replicas > 0 ? f->replicas : 1;
	int64_t wr = w->replicas > 0 ? w->replicas : 1;
	if (fr == wr)
		return;
	vox_stream_diff *d =
		fr < wr ? add(c, "replicas", VOX_STREAM_DROPS,
			      "fewer copies than configured: losing a server"
			      " can lose acknowledged messages")
			: add(c, "replicas", VOX_STREAM_WARN,
			      "more copies than configured");
	snprintf(d->found, sizeof(d->found), "%" PRId64, fr);
	snprintf(d->wanted, sizeof(d->wanted), "%" PRId64, wr);
}

/* A limit (<= 0: none): a smaller one than wanted, or one where none is
 * wanted, deletes messages vox still counts on. */
static void check_limit(checker *c, const char *setting, int64_t f, int64_t w,
			bool duration, const char *drops_why)
{
	bool f_none = f <= 0, w_none = w <= 0;
	if ((f_none && w_none) || f == w)
		return;
	bool drops = !f_none && (w_none || f < w);
	vox_stream_diff *d =
		drops ? add(c, setting, VOX_STREAM_DROPS, drops_why)
		      : add(c, setting, VOX_STREAM_WARN,
			    "a larger limit than configured keeps more");
	if (duration) {
		vox_stream_format_duration(d->found, sizeof(d->found), f);
		vox_stream_format_duration(d->wanted, sizeof(d->wanted), w);
	} else {
		format_limit(d->found, sizeof(d->found), f);
		format_limit(d->wanted, sizeof(d->wanted), w);
	}
}

static void check_discard(checker *c, const vox_stream_spec *f,
			  const vox_stream_spec *w)
{
	if (f->discard_new == w->discard_new)
		return;
	vox_stream_diff *d = add(
		c, "discard", VOX_STREAM_WARN,
		f->discard_new
			? "a full stream refuses new messages (the publisher"
			  " sees an error and retries) instead of deleting"
			  " the oldest"
			: "a full stream deletes its oldest messages instead"
			  " of refusing new ones");
	snprintf(d->found, sizeof(d->found), "%s", f->discard_new ? "new" : "old");
	snprintf(d->wanted, sizeof(d->wanted), "%s", w->discard_new ? "new" : "old");
}

static void check_duplicates(checker *c, const vox_stream_spec *f,
			     const vox_stream_spec *w)
{
	if (f->duplicates_ns == w->duplicates_ns)
		return;
	vox_stream_diff *d = add(
		c, "duplicate_window", VOX_STREAM_WARN,
		f->duplicates_ns < w->duplicates_ns
			? "a repeat outside the shorter window is stored again;"
			  " the database's idempotency records drop it"
			: "a longer window than configured");
	vox_stream_format_duration(d->found, sizeof(d->found), f->duplicates_ns);
	vox_stream_format_duration(d->wanted, sizeof(d->wanted), w->duplicates_ns);
}

static void check_flag(checker *c, const char *setting, bool f, bool w,
		       const char *why)
{
	if (f == w)
		return;
	vox_stream_diff *d = add(c, setting, VOX_STREAM_WARN, why);
	snprintf(d->found, sizeof(d->found), "%s", f ? "true" : "false");
	snprintf(d->wanted, sizeof(d->wanted), "%s", w ? "true" : "false");
}

size_t vox_stream_compare(vox_stream_diff out[VOX_STREAM_SETTINGS],
			  const vox_stream_spec *f, const vox_stream_spec *w)
{
	checker c = {out, 0};
	check_subjects(&c, f, w);
	check_storage(&c, f, w);
	check_retention(&c, f, w);
	check_replicas(&c, f, w);
	check_limit(&c, "max_age", f->max_age_ns, w->max_age_ns, true,
		    "messages are deleted sooner than the configured"
		    " retention");
	check_limit(&c, "max_bytes", f->max_bytes, w->max_bytes, false,
		    "a smaller size limit deletes (or refuses) messages"
		    " sooner than configured");
	check_limit(&c, "max_msgs", f->max_msgs, w->max_msgs, false,
		    "a message count limit deletes (or refuses) messages"
		    " sooner than configured");
	check_limit(&c, "max_msgs_per_subject", f->max_msgs_per_subject,
		    w->max_msgs_per_subject, false,
		    "a per-subject limit deletes an organization's older"
		    " events (every org has its own subject)");
	check_limit(&c, "max_msg_size", f->max_msg_size, w->max_msg_size,
		    false,
		    "messages up to the contract's size (and dead letters"
		    " of them) are refused");
	check_discard(&c, f, w);
	check_duplicates(&c, f, w);
	check_flag(&c, "sealed", f->sealed, w->sealed,
		   "a sealed stream takes no new message (publishers see an"
		   " error)");
	check_flag(&c, "no_ack", f->no_ack, w->no_ack,
		   "publishers get no acknowledgement and cannot tell a"
		   " stored message from a lost one");
	return c.n;
}

bool vox_stream_diffs_drop(const vox_stream_diff *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (d[i].severity == VOX_STREAM_DROPS)
			return true;
	return false;
}
