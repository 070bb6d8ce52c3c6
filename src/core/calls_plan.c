/*
 * calls_plan.c - folds a batch of call events into one record per call (see
 * calls_plan.h for the rules), whose columns the handler sends as binary array
 * parameters. Pure: no libpq, no I/O, no globals; everything it returns
 * points into the caller's events.
 */
#include "core/common.h"

#include "core/calls_plan.h"

/* One event to fold, remembered by its position in the batch. */
typedef struct entry {
	const char *call_id;
	size_t pos;
} entry;

/* By call_id, then stream position: each call's events end up adjacent
 * and in stream order, and records come out sorted by call_id. */
static int entry_cmp(const void *a, const void *b)
{
	const entry *x = a;
	const entry *y = b;
	int c = strcmp(x->call_id, y->call_id);
	if (c != 0)
		return c;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

static const vox_uuid *event_call_id(const vox_event *ev)
{
	if (ev->kind == VOX_CALL_STARTED)
		return &ev->u.call_started.call_id;
	return &ev->u.call_ended.call_id;
}

static void fill_str(vox_str *dst, vox_str src)
{
	if (dst->ptr == NULL && src.ptr != NULL)
		*dst = src;
}

static void fill_dir(vox_direction *dst, vox_direction src)
{
	if (*dst == VOX_DIR_NONE)
		*dst = src;
}

/* When the event suggests the call began: the start it reports, else (a
 * call.ended without started_at) its end minus its duration. */
static vox_time proposed_start(const vox_event *ev)
{
	if (ev->kind == VOX_CALL_STARTED)
		return ev->u.call_started.started_at;
	const vox_call_ended *e = &ev->u.call_ended;
	if (e->started_at.set)
		return e->started_at;
	vox_time t = e->ended_at;
	t.sec -= e->duration_seconds;
	return t;
}

static void fold(vox_calls_rec *rec, const vox_event *ev)
{
	vox_direction dir_before = rec->direction;
	if (ev->kind == VOX_CALL_STARTED) {
		const vox_call_started *s = &ev->u.call_started;
		fill_dir(&rec->direction, s->direction);
		fill_str(&rec->from_number, s->from_number);
		fill_str(&rec->to_number, s->to_number);
		fill_str(&rec->vapi_call_id, s->vapi_call_id);
		fill_str(&rec->caller_name, s->caller_name);
		if (rec->contact_id.s[0] == '\0' && s->contact_id.s[0] != '\0')
			rec->contact_id = s->contact_id;
	} else {
		const vox_call_ended *e = &ev->u.call_ended;
		if (rec->ended == NULL)
			rec->ended = e; /* terminal: later ones change nothing */
		fill_dir(&rec->direction, e->direction);
		fill_str(&rec->from_number, e->from_number);
		fill_str(&rec->to_number, e->to_number);
	}
	if (rec->nevents == 0 ||
	    (dir_before == VOX_DIR_NONE && rec->direction != VOX_DIR_NONE))
		rec->created_at = proposed_start(ev);
	rec->nevents++;
}

static void derive_contact(vox_calls_rec *rec)
{
	rec->contact_phone = (vox_str){NULL, 0};
	rec->create_contact = false;
	if (rec->direction == VOX_DIR_INBOUND)
		rec->contact_phone = rec->from_number;
	else if (rec->direction == VOX_DIR_OUTBOUND)
		rec->contact_phone = rec->to_number;
	rec->create_contact = rec->direction == VOX_DIR_INBOUND &&
			      rec->contact_phone.ptr != NULL;
}

void vox_calls_plan_build(vox_calls_plan *out, const vox_event *const *evs,
			  size_t n, vox_status *verdict)
{
	entry *ents = vox_malloc((n ? n : 1) * sizeof(*ents));
	size_t nents = 0;

	out->recs = vox_calloc(n ? n : 1, sizeof(*out->recs));
	out->n = 0;
	for (size_t i = 0; i < n; i++) {
		verdict[i] = VOX_OK;
		if (evs[i] == NULL)
			continue;
		if (evs[i]->kind != VOX_CALL_STARTED &&
		    evs[i]->kind != VOX_CALL_ENDED) {
			verdict[i] = VOX_E_INVALID;
			continue;
		}
		ents[nents].call_id = event_call_id(evs[i])->s;
		ents[nents].pos = i;
		nents++;
	}
	qsort(ents, nents, sizeof(*ents), entry_cmp);

	vox_calls_rec *rec = NULL;
	for (size_t k = 0; k < nents; k++) {
		const vox_event *ev = evs[ents[k].pos];
		const vox_uuid *org = vox_event_org(ev);
		if (rec == NULL || strcmp(rec->call_id.s, ents[k].call_id) != 0) {
			if (rec != NULL)
				derive_contact(rec);
			rec = &out->recs[out->n++];
			memcpy(rec->call_id.s, ents[k].call_id,
			       sizeof(rec->call_id.s));
			rec->org_id = *org;
		} else if (strcmp(rec->org_id.s, org->s) != 0) {
			/* one call cannot belong to two tenants */
			verdict[ents[k].pos] = VOX_E_CONFLICT;
			continue;
		}
		fold(rec, ev);
	}
	if (rec != NULL)
		derive_contact(rec);
	free(ents);
}

void vox_calls_plan_release(vox_calls_plan *p)
{
	free(p->recs);
	p->recs = NULL;
	p->n = 0;
}

const vox_calls_rec *vox_calls_plan_find(const vox_calls_plan *p,
					 const char *call_id)
{
	const vox_calls_rec *found = NULL;
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->recs[mid].call_id.s, call_id);
		if (c == 0) {
			found = &p->recs[mid];
			break;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return found;
}

