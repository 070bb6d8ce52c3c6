/*
 * subjects.c - the one table of subject names (see vox/subjects.h).
 */
#include "vox/subjects.h"

#include "core/common.h"

static const struct {
	const char *name;
	const char *stream;
} subject_table[VOX_EVENT_KIND_COUNT] = {
	[VOX_CALL_STARTED] = {"call.started", VOX_STREAM_EVENTS},
	[VOX_CALL_ENDED] = {"call.ended", VOX_STREAM_EVENTS},
	[VOX_PAYMENT_SUCCEEDED] = {"payment.succeeded", VOX_STREAM_EVENTS},
	[VOX_PAYMENT_REFUNDED] = {"payment.refunded", VOX_STREAM_EVENTS},
	[VOX_LEAD_SCORED] = {"lead.scored", VOX_STREAM_EVENTS},
	[VOX_ALERT_HOT_LEAD] = {"alert.hot_lead", VOX_STREAM_ALERTS},
	[VOX_ALERT_LOW_BALANCE] = {"alert.low_balance", VOX_STREAM_ALERTS},
	[VOX_ALERT_DEBT_LIMIT] = {"alert.debt_limit", VOX_STREAM_ALERTS},
};

const char *const vox_request_subjects[] = {
	"query.wallet", "query.transactions", "query.calls", "query.call",
	"query.contact", "query.hot_leads", "query.holds", "billing.authorize",
	"credentials.put", "credentials.get", "credentials.list",
	"credentials.delete", NULL,
};

const char *vox_event_kind_name(vox_event_kind kind)
{
	if ((unsigned)kind >= VOX_EVENT_KIND_COUNT)
		return NULL;
	return subject_table[kind].name;
}

const char *vox_event_kind_stream(vox_event_kind kind)
{
	if ((unsigned)kind >= VOX_EVENT_KIND_COUNT)
		return NULL;
	return subject_table[kind].stream;
}

bool vox_event_kind_from_name(vox_event_kind *kind, const char *name,
			      size_t len)
{
	for (int i = 0; i < VOX_EVENT_KIND_COUNT; i++) {
		const char *n = subject_table[i].name;
		if (strlen(n) == len && memcmp(n, name, len) == 0) {
			*kind = (vox_event_kind)i;
			return true;
		}
	}
	return false;
}

bool vox_subject_parse(vox_event_kind *kind, const char **org,
		       size_t *orglen, const char *subject)
{
	const char *dot = strrchr(subject, '.');
	if (dot == NULL || dot[1] == '\0')
		return false;
	if (!vox_event_kind_from_name(kind, subject, (size_t)(dot - subject)))
		return false;
	*org = dot + 1;
	*orglen = strlen(dot + 1);
	return true;
}

bool vox_subject_format(char *buf, size_t n, vox_event_kind kind,
			const char *org)
{
	const char *name = vox_event_kind_name(kind);
	if (name == NULL)
		return false;
	int w = snprintf(buf, n, "%s.%s", name, org);
	return w > 0 && (size_t)w < n;
}
